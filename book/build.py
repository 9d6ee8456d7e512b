#!/usr/bin/python3
"""Build the ringzero book from book/*.md and the step tree.

    build.py              check every reference, then write the book under build/book/:
                          one HTML page per chapter (index.html is the introduction; then
                          NN-name.html per step and glossary.html if book/glossary.md exists),
                          book.css, diagrams/*.svg, and the whole book as ringzero.epub
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

Every page is pandoc's output for one chapter, through template.html: a contents sidebar
three levels deep (built here from each chapter's headings) and previous/next links.
filters/book.lua numbers the figures and turns "step N" and "section N.M" into links, from
a table of pages and sections that this script writes for it (pages.yaml in a temporary
directory, passed as metadata).
"""

import argparse
import concurrent.futures
import filecmp
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BOOK_DIR = Path(__file__).resolve().parent
FILTER = BOOK_DIR / "filters" / "tree.lua"
BOOK_FILTER = BOOK_DIR / "filters" / "book.lua"
SYNTAX_DIR = BOOK_DIR / "syntax"
TEMPLATE = BOOK_DIR / "template.html"
CSS = BOOK_DIR / "book.css"
METADATA = BOOK_DIR / "metadata.yaml"
INTRO = "00-intro"
GLOSSARY = "glossary"
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
    """The introduction, one chapter per existing step in step order, then the glossary
    if there is one."""
    steps = step_names(root)
    chapters = [chapter_path(c) for c in chapter_names(root) if c == INTRO or c in steps]
    if (root / chapter_path(GLOSSARY)).is_file():
        chapters.append(chapter_path(GLOSSARY))
    return chapters


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


# The pages ------------------------------------------------------------------------------

def plain_text(inlines):
    """The text of pandoc JSON inlines, as the contents list shows it."""
    parts = []
    for node in inlines:
        kind, content = node["t"], node.get("c")
        if kind == "Str":
            parts.append(content)
        elif kind in ("Space", "SoftBreak", "LineBreak"):
            parts.append(" ")
        elif kind == "Code":
            parts.append(content[1])
        elif kind in ("Emph", "Strong", "SmallCaps", "Strikeout", "Superscript", "Subscript",
                      "Underline"):
            parts.append(plain_text(content))
        elif kind in ("Link", "Span", "Quoted", "Cite"):
            inner = content[1]
            text = plain_text(inner)
            parts.append("“%s”" % text if kind == "Quoted" else text)
    return "".join(parts)


class Page:
    """One chapter as one HTML page: its file, its chapter number and its headings."""

    def __init__(self, source):
        self.source = source
        stem = source.stem
        self.numbered = STEP_NAME.match(stem) is not None and stem != INTRO
        self.number = int(stem[:2]) if self.numbered else None
        self.file = "index.html" if stem == INTRO else stem + ".html"
        self.headings = []  # (level, id, number or "", text)

    def read_headings(self, root):
        result = subprocess.run(["pandoc", "--to", "json", str(self.source)], cwd=root,
                                capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit("book: pandoc could not read %s:\n%s" % (self.source, result.stderr))
        counters = [0] * 7
        if self.numbered:
            counters[1] = self.number - 1  # --number-offset
        for block in json.loads(result.stdout)["blocks"]:
            if block["t"] != "Header":
                continue
            level, (ident, classes, _), inlines = block["c"]
            number = ""
            if self.numbered and "unnumbered" not in classes:
                counters[level] += 1
                counters[level + 1:] = [0] * (6 - level)
                number = ".".join(str(n) for n in counters[1:level + 1])
            self.headings.append((level, ident, number, plain_text(inlines)))

    @property
    def title(self):
        return self.headings[0][3] if self.headings else self.source.stem

    @property
    def label(self):
        """The chapter as the contents and the previous/next links name it."""
        return "%d %s" % (self.number, self.title) if self.numbered else self.title


def book_title():
    match = re.search(r"^title:\s*(.+)$", METADATA.read_text(), re.M)
    return match.group(1).strip() if match else "ringzero"


def contents(pages, current):
    """The sidebar: every chapter, three heading levels deep; the current one is open."""
    out = ['<nav id="sidebar" aria-label="Contents">',
           '<p class="book-title"><a href="index.html">%s</a></p>' % html.escape(book_title()),
           '<ol class="toc">']
    for page in pages:
        here = page is current
        entries = [h for h in page.headings[1:] if h[0] <= 3]
        link = '<a href="%s"%s>%s</a>' % (page.file, ' aria-current="page"' if here else "",
                                          heading_html(page.number or "", page.title))
        if not entries:
            out.append('<li class="chapter">%s</li>' % link)
            continue
        out.append('<li class="chapter"><details%s><summary>%s</summary><ol>'
                   % (" open" if here else "", link))
        depth = 2
        first = True
        for level, ident, number, text in entries:
            while depth < level:
                out.append("<ol>")
                depth += 1
                first = True
            while depth > level:
                out.append("</li></ol>")
                depth -= 1
            if not first:
                out.append("</li>")
            first = False
            out.append('<li><a href="%s#%s">%s</a>' % (page.file, ident, heading_html(number, text)))
        while depth > 2:
            out.append("</li></ol>")
            depth -= 1
        out.append("</li></ol></details></li>")
    out += ["</ol>", "</nav>"]
    return "\n".join(out)


def heading_html(number, text):
    prefix = '<span class="toc-number">%s</span> ' % number if number else ""
    return prefix + html.escape(text)


def pager(pages, index, where):
    links = []
    if index > 0:
        links.append('<a rel="prev" href="%s"><span class="pager-dir">Previous</span> %s</a>'
                     % (pages[index - 1].file, html.escape(pages[index - 1].label)))
    if index + 1 < len(pages):
        links.append('<a rel="next" href="%s"><span class="pager-dir">Next</span> %s</a>'
                     % (pages[index + 1].file, html.escape(pages[index + 1].label)))
    return '<nav class="pager pager-%s" aria-label="Previous and next chapter">%s</nav>' % (
        where, "\n".join(links))


def link_tables(pages, epub):
    """What filters/book.lua links "step N" and "section N.M" to. On the HTML pages a
    target is page#id; in the EPUB, one document, it is #id as pandoc makes identifiers
    unique across the whole book (a repeated one gets -1, -2, ...)."""
    steps, sections = {}, {}
    used = set()
    for page in pages:
        for i, (level, ident, number, _) in enumerate(page.headings):
            if epub:
                base, n = ident, 0
                while ident in used:
                    n += 1
                    ident = "%s-%d" % (base, n)
                used.add(ident)
                target = "#" + ident
            else:
                target = page.file + ("" if i == 0 else "#" + ident)
            if page.numbered and level == 1 and i == 0:
                steps[str(page.number)] = target
            elif page.numbered and number and level >= 2:
                sections[number] = target
    return steps, sections


def write_metadata(path, pages, epub, page=None):
    """A metadata file for filters/book.lua (JSON is valid YAML)."""
    steps, sections = link_tables(pages, epub)
    meta = {"ringzero-steps": steps, "ringzero-sections": sections}
    if page is not None:
        meta["ringzero-page"] = page.file
        if page.numbered:
            meta["ringzero-chapter"] = str(page.number)
    path.write_text(json.dumps(meta, ensure_ascii=False))


def common_options():
    options = ["--lua-filter", str(BOOK_FILTER), "--highlight-style", "pygments"]
    for syntax in sorted(SYNTAX_DIR.glob("*.xml")):
        options += ["--syntax-definition", str(syntax)]
    return options


def render_page(root, out_dir, work, pages, index):
    page = pages[index]
    meta = work / (page.source.stem + ".json")
    write_metadata(meta, pages, False, page)
    before, after = work / (page.source.stem + ".before.html"), work / (page.source.stem + ".after.html")
    before.write_text("%s\n<main id=\"content\">\n%s" % (contents(pages, page), pager(pages, index, "top")))
    after.write_text(pager(pages, index, "bottom"))
    options = ["--metadata-file", str(METADATA), "--metadata-file", str(meta),
               *common_options(), "--standalone", "--template", str(TEMPLATE),
               "--css", "book.css", "--include-before-body", str(before),
               "--include-after-body", str(after),
               "--metadata", "pagetitle=%s · %s" % (page.label, book_title()),
               "--output", str(out_dir / page.file)]
    if page.numbered:
        options += ["--number-sections", "--number-offset", str(page.number - 1)]
    if page.source.stem == INTRO:
        options += ["--variable", "front=true"]
    return pandoc(root, [page.source], *options)


def render_diagrams(root, out_dir):
    """Every diagram a chapter uses, full size, beside the pages that link to it."""
    diagrams = out_dir / "diagrams"
    diagrams.mkdir(parents=True, exist_ok=True)
    for dot in sorted((root / "book" / "diagrams").glob("*.dot")):
        result = subprocess.run(["dot", "-Tsvg", str(dot)], capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit("book: dot could not render %s:\n%s" % (dot, result.stderr))
        (diagrams / (dot.stem + ".svg")).write_text(result.stdout)


def render_html(root, out_dir, pages):
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.html"):  # a page from an earlier build, or the old one-page book
        old.unlink()
    shutil.copyfile(CSS, out_dir / "book.css")
    render_diagrams(root, out_dir)
    with tempfile.TemporaryDirectory(prefix="ringzero-book-") as tmp:
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            results = list(pool.map(lambda i: render_page(root, out_dir, Path(tmp), pages, i),
                                    range(len(pages))))
    for page, result in zip(pages, results):
        if result.returncode != 0:
            sys.exit("book: pandoc could not write %s:\n%s" % (out_dir / page.file, result.stderr))
        sys.stderr.write(result.stderr)
    return [out_dir / page.file for page in pages]


def render_epub(root, output, pages):
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ringzero-book-") as tmp:
        meta = Path(tmp) / "epub.json"
        write_metadata(meta, pages, True)
        options = ["--metadata-file", str(METADATA), "--metadata-file", str(meta),
                   *common_options(), "--css", str(CSS), "--toc", "--toc-depth=3",
                   "--number-sections", "--output", str(output)]
        result = pandoc(root, [page.source for page in pages], *options)
    if result.returncode != 0:
        sys.exit("book: pandoc could not write %s:\n%s" % (output, result.stderr))
    sys.stderr.write(result.stderr)
    return output


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
    pages = [Page(chapter) for chapter in book_chapters(root)]
    for page in pages:
        page.read_headings(root)
    for output in render_html(root, out_dir, pages) + [render_epub(root, out_dir / "ringzero.epub", pages)]:
        print(output)

if __name__ == "__main__":
    main()
