"""handout: a step as a lab a student can be given, and its Gradescope autograder.

A handout is a repository of its own: common/, the Makefile, the README, the book's sources
up to the step's chapter, steps 01..N-1 complete, and step N with every lab item stubbed. It
also holds what the grader needs and the student does not write: the grader's copy of step N
(its lab files as stubs) in common/lab/pristine/, and for step 08, whose engine the tests
compare against a host reference built from the solution, that reference already built.
LAB.md tells the student what to write, in what order, and how it is tested.
"""
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import labs

REPO = labs.REPO
TOP_FILES = ("Makefile", "README.md", ".gitignore")
COPIED_COMMON = shutil.ignore_patterns("__pycache__", "node_modules", "pristine", "reference-bin")


def write_handout(step_dir, out):
    step_dir, out = Path(step_dir), Path(out).resolve()
    lab = labs.load(step_dir)
    if out.exists() and any(out.iterdir()):
        raise labs.LabError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    for name in TOP_FILES:
        shutil.copy(REPO / name, out / name)
    shutil.copytree(REPO / "common", out / "common", ignore=COPIED_COMMON)
    copy_book(out, int(step_dir.name[:2]))
    for earlier in sorted((REPO / "steps").iterdir()):
        if earlier.name < step_dir.name:
            shutil.copytree(earlier, out / "steps" / earlier.name,
                            ignore=shutil.ignore_patterns(labs.LAB_FILE))
    stubbed = out / "steps" / step_dir.name
    labs.write_stubbed(step_dir, stubbed, lab.items, REPO / "build" / "handout" / step_dir.name)
    declare_support_files(stubbed)
    store = out / "common" / "lab" / "pristine" / step_dir.name
    shutil.copytree(stubbed, store)
    shutil.copy(step_dir / labs.LAB_FILE, store / labs.LAB_FILE)
    if (step_dir / "transformer.c").is_file() and not (step_dir / "parallel.h").is_file():
        prebuild_reference(step_dir, out)
    (out / "LAB.md").write_text(lab_text(lab))
    commit(out, f"Lab {step_dir.name[:2]}: {lab_title(step_dir)}")
    return out


def copy_book(out, last_chapter):
    shutil.copytree(REPO / "book", out / "book", ignore=shutil.ignore_patterns("__pycache__"))
    for chapter in (out / "book").glob("[0-9][0-9]-*.md"):
        if int(chapter.name[:2]) > last_chapter:
            chapter.unlink()


def declare_support_files(step):
    """The stubs' support files are new in the handout's step: its MANIFEST says so."""
    names = [name for name in labs.SUPPORT if (step / name).is_file()]
    manifest = step / "MANIFEST"
    lines = manifest.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("adds:"))
    lines[at] += " " + " ".join(names)
    manifest.write_text("\n".join(lines) + "\n")


def prebuild_reference(step_dir, out):
    """Step 08's tests compare the kernel with a host reference built from the solution's
    engine, which the handout does not have: ship the program (built for this kind of
    machine: Debian 12, x86-64)."""
    build = REPO / "build" / "handout" / f"{step_dir.name}-reference"
    result = subprocess.run(["make", "-s", "-f", "common/reference/reference.mk",
                             f"STEP_DIR=steps/{step_dir.name}", f"OUT={build}"],
                            cwd=REPO, capture_output=True, text=True)
    if result.returncode:
        raise labs.LabError(f"the host reference did not build:\n{result.stderr}")
    target = out / "common" / "lab" / "reference-bin" / step_dir.name
    target.mkdir(parents=True)
    shutil.copy(build / "reference", target / "reference")


def lab_title(step_dir):
    for line in (step_dir / "MANIFEST").read_text().splitlines():
        if line.startswith("title:"):
            return line.partition(":")[2].strip()
    return step_dir.name


def lab_text(lab):
    number = int(lab.step[:2])
    lines = [f"# Lab {lab.step[:2]}: {lab_title(REPO / 'steps' / lab.step)}", "",
             f"Step {number}'s kernel is in `steps/{lab.step}/`, complete except for the "
             f"{len(lab.items)} functions below: each is a stub that stops the machine with "
             f"`lab {lab.step[:2]}: write NAME() (book X.Y)` when it is reached. Chapter {number} "
             "of the book (`make book`, then build/book/index.html) explains what they must do; "
             "the comment above each stub states its contract. Write them in this order.", "",
             "Commands:", "",
             f"- `make step {number} run`: boot your kernel in QEMU (Ctrl-A X quits).",
             f"- `make step {number} grade`: build it and run the tests; the score is split "
             "by item, and a failing test prints its item's hints. Steps before this one are "
             "complete: their tests run on their own kernels and pass.",
             f"- `make step {number} grade T=NAME`: one test (`grade.py --list` names them).",
             f"- `make step {number} gdb`: boot paused, waiting for gdb (the command to attach "
             "is printed).",
             f"- `make step {number} diff`: what this step adds to the step before.", "",
             "Only the files that hold these functions are graded as yours "
             f"({', '.join(lab.files)}); the grader uses its own copy of every other file.", ""]
    for index, item in enumerate(lab.items, 1):
        lines += [f"## {index}. `{item.function}()` in `{item.file}`", "",
                  f"{item.task}. Book section {item.number}. Difficulty: {item.difficulty}; "
                  f"about {item.minutes} minutes.", "",
                  "Tests that check it: " + ", ".join(f"`{t}`" for t in item.tests) + ".", "",
                  "Hints:", ""]
        lines += [f"- {hint}" for hint in item.hints] + [""]
    return "\n".join(lines)


def commit(out, message):
    def git(*args):
        subprocess.run(["git", *args], cwd=out, check=True, capture_output=True)
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=ringzero", "-c", "user.email=ringzero@localhost", "commit", "-q",
        "-m", message)


# ---------------------------------------------------------------------------------------------
# Gradescope

SETUP = """#!/bin/sh
# Gradescope runs this once when it builds the autograder's image (Ubuntu or Debian).
set -eu
cd /autograder/source
common/deps.sh install
"""

RUN = """#!/bin/sh
# Gradescope runs this for each submission: the student's files are in $ROOT/submission
# (their step folder, their whole repository, or just the lab's files), the results go to
# $ROOT/results/results.json. AUTOGRADER_ROOT moves $ROOT for a test away from /autograder.
set -u
ROOT=${{AUTOGRADER_ROOT:-/autograder}}
cd "$ROOT/source"
tree="$ROOT/submission"
for candidate in "$tree/steps/{step}" "$tree/{step}"; do
    [ -d "$candidate" ] && tree=$candidate
done
mkdir -p "$ROOT/results"
/usr/bin/python3 common/grader/grade.py {step} --tree "$tree" --json "$ROOT/results/results.json"
exit 0
"""


def write_autograder(step_dir, zip_path, work):
    """A zip in Gradescope's layout: setup.sh and run_autograder at the top, and the handout
    beside them, which Gradescope unpacks into /autograder/source."""
    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    source = write_handout(step_dir, work)
    shutil.rmtree(source / ".git")
    scripts = {"setup.sh": SETUP, "run_autograder": RUN.format(step=step_dir.name)}
    zip_path = Path(zip_path).resolve()
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in scripts.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            archive.writestr(info, text)
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source).as_posix())
    return zip_path
