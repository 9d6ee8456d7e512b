#!/usr/bin/python3
"""Build the ringzero book from book/*.md and the step tree.

    build.py              check every reference, then write build/book/ringzero.html
                          and build/book/ringzero.epub
    build.py --check      the reference checks only
    build.py --root DIR   read chapters and steps from DIR instead of this repository
    build.py --student --root DIR --out OUT
                          the student edition, from a tree whose lab items are stubs
                          (`make book EDITION=student` makes that tree): quotes from
                          inside a lab item's body become a note

book/NN-name.md documents steps/NN-name; book/00-intro.md is the introduction.
A chapter for a step that does not exist yet is left out of the check and the book.
The checks fail the build when a step has no chapter, when a chapter never names a
file that its step adds, changes or removes, and when a directive in a chapter refers
to something that is not in the tree (filters/tree.lua reports those).
"""

import argparse
import filecmp
import os
import re
import subprocess
import sys
from pathlib import Path

BOOK_DIR = Path(__file__).resolve().parent
FILTER = BOOK_DIR / "filters" / "tree.lua"
CSS = BOOK_DIR / "book.css"
METADATA = BOOK_DIR / "metadata.yaml"
INTRO = "00-intro"
STEP_NAME = re.compile(r"^\d\d-[a-z0-9-]+$")
# Files of a step folder that are not its kernel: the step's own lists, and the support of
# the lab stubs in a handout's step.
NOT_KERNEL = {"MANIFEST", "lab.toml", "lab.h", "lab.S"}


def step_names(root):
    steps = root / "steps"
    if not steps.is_dir():
        return []
    return sorted(p.name for p in steps.iterdir() if p.is_dir() and STEP_NAME.match(p.name))


def chapter_names(root):
    return sorted(p.stem for p in (root / "book").glob("*.md") if STEP_NAME.match(p.stem))


def chapter_path(name):
    return Path("book") / (name + ".md")


def step_files(step_dir):
    return {p.name for p in step_dir.iterdir() if p.is_file() and p.name not in NOT_KERNEL}


def changed_files(root, previous, step):
    """Files that the step adds, changes or removes relative to the previous step."""
    new_dir = root / "steps" / step
    if previous is None:
        return sorted(step_files(new_dir))
    old_dir = root / "steps" / previous
    old, new = step_files(old_dir), step_files(new_dir)
    kept = old & new
    differing = {n for n in kept if not filecmp.cmp(old_dir / n, new_dir / n, shallow=False)}
    return sorted((old ^ new) | differing)


def is_mentioned(text, file_name):
    """The bare name, not as part of a longer name (serial.c is not in userial.c or serial.cc)."""
    pattern = r"(?<![\w.-])" + re.escape(file_name) + r"(?![\w-]|\.\w)"
    return re.search(pattern, text) is not None


def mapping_problems(steps, chapters):
    return ["steps/%s has no chapter: write %s" % (s, chapter_path(s)) for s in steps if s not in chapters]


def mention_problems(root, steps, step):
    index = steps.index(step)
    previous = steps[index - 1] if index > 0 else None
    text = (root / chapter_path(step)).read_text()
    return ["%s: never mentions %s, which steps/%s %s" % (chapter_path(step), name, step, how)
            for name, how in describe_changes(root, previous, step)
            if not is_mentioned(text, name)]


def describe_changes(root, previous, step):
    for name in changed_files(root, previous, step):
        if not (root / "steps" / step / name).exists():
            yield name, "removes"
        elif previous is None or not (root / "steps" / previous / name).exists():
            yield name, "adds"
        else:
            yield name, "changes"


def pandoc(root, inputs, *options):
    command = ["pandoc", "--lua-filter", str(FILTER), *options, *map(str, inputs)]
    return subprocess.run(command, cwd=root, capture_output=True, text=True)


def directive_problems(root, chapter):
    """Runs the filter over one chapter alone so that its messages name that chapter."""
    result = pandoc(root, [chapter], "--to", "native", "--output", "/dev/null")
    if result.returncode == 0:
        return []
    return [result.stderr.strip() or "%s: pandoc failed" % chapter]


def book_chapters(root):
    """The introduction, then one chapter per existing step, in step order."""
    steps = step_names(root)
    return [chapter_path(c) for c in chapter_names(root) if c == INTRO or c in steps]


def check(root):
    steps = step_names(root)
    chapters = chapter_names(root)
    problems = mapping_problems(steps, chapters)
    if INTRO not in chapters:
        problems.append("%s is missing" % chapter_path(INTRO))
    for chapter in chapters:
        if chapter != INTRO and chapter not in steps:
            print("book: skipping %s: steps/%s does not exist yet" % (chapter_path(chapter), chapter))
    for step in steps:
        if step in chapters:
            problems += mention_problems(root, steps, step)
    for chapter in book_chapters(root):
        problems += directive_problems(root, chapter)
    return problems


def render(root, output):
    output.parent.mkdir(parents=True, exist_ok=True)
    options = ["--metadata-file", str(METADATA), "--css", str(CSS), "--toc", "--toc-depth=2",
               "--number-sections", "--highlight-style", "pygments", "--output", str(output)]
    if output.suffix == ".html":
        options += ["--standalone", "--self-contained"]
    result = pandoc(root, book_chapters(root), *options)
    if result.returncode != 0:
        sys.exit("book: pandoc could not write %s:\n%s" % (output, result.stderr))
    sys.stderr.write(result.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="run the reference checks only")
    parser.add_argument("--root", type=Path, default=BOOK_DIR.parent, help="repository to read")
    parser.add_argument("--student", action="store_true", help="the student edition")
    parser.add_argument("--out", type=Path, help="where to write the book (default ROOT/build/book)")
    args = parser.parse_args()
    root = args.root.resolve()
    # A lab handout (it has the grader's copy of its lab) has stubs: its book is the student's.
    if args.student or (root / "common" / "lab" / "pristine").is_dir():
        os.environ["RINGZERO_EDITION"] = "student"

    problems = check(root)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit("book: the checks failed; the book was not built")
    if args.check:
        print("book: %d chapters checked, no problems" % len(book_chapters(root)))
        return
    out_dir = args.out.resolve() if args.out else root / "build" / "book"
    for output in (out_dir / "ringzero.html", out_dir / "ringzero.epub"):
        render(root, output)
    for output in (out_dir / "ringzero.html", out_dir / "ringzero.epub"):
        print(output)


if __name__ == "__main__":
    main()
