"""labgrade: grading a student's lab, for grade.py.

A student's step is graded on what the student wrote and nothing else. The kernel is built
from the grader's pristine copy of the step with only the lab's files (those that hold a lab
item, steps/NN/lab.toml) taken from the student: test-support code such as memtest.c, whose
self-test lines score points, is always the grader's own.

The pristine copy is the repository's steps/NN, or in a handout (which has no solutions) the
copy `make step N handout` stored in common/lab/pristine/NN-name, whose lab files are stubs.
When the student's files do not compile, each file that fails is replaced by its stub, so the
items that do work still earn their points, and the compiler's first errors are reported.
"""
import re
import shutil
import sys
from pathlib import Path

from gradelib import REPO

sys.path.insert(0, str(REPO / "common" / "lab"))
import labs  # noqa: E402  (common/lab/labs.py)

PRISTINE = REPO / "common" / "lab" / "pristine"
ERROR_LINES = 20


def in_handout():
    return PRISTINE.is_dir()


def pristine_dir(step):
    stored = PRISTINE / step
    return stored if stored.is_dir() else REPO / "steps" / step


def load_lab(step):
    """The step's lab (from the pristine copy), or None if the step has none."""
    return labs.load(pristine_dir(step), REPO / "book")


def stubbed_lab_files(step, lab, work):
    """A folder holding every lab file of the step with all its items stubbed."""
    if in_handout():
        return pristine_dir(step)
    return labs.write_stubbed(REPO / "steps" / step, work / "stubbed", lab.items,
                              work / "stubbed-build")


def compose(step, lab, student, work, stubbed=()):
    """work/src: the pristine step, the student's lab files, and stubs for those in stubbed
    and for those the student did not hand in (never the pristine copy's own)."""
    source = work / "src"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(pristine_dir(step), source, ignore=shutil.ignore_patterns(labs.LAB_FILE))
    for name in labs.SUPPORT:
        shutil.copy(labs.HERE / name, source / name)
    missing = [name for name in lab.files if not (Path(student) / name).is_file()]
    stubs = stubbed_lab_files(step, lab, work) if stubbed or missing else None
    for name in lab.files:
        origin = stubs / name if name in stubbed or name in missing else Path(student) / name
        shutil.copy(origin, source / name)
    return source


def build_with_fallback(step, lab, student, work, build):
    """Build the student's lab; on errors, swap failing files for stubs. Returns
    (source folder, compiler errors or "", the files replaced by stubs)."""
    source = compose(step, lab, student, work)
    errors = build(source)
    if errors is None:
        return source, "", []
    failing = [name for name in lab.files if re.search(rf"\b{re.escape(name)}:\d+", errors)]
    for attempt in (failing, lab.files):
        if not attempt:
            continue
        source = compose(step, lab, student, work, stubbed=attempt)
        if build(source) is None:
            return source, first_errors(errors), attempt
    return None, first_errors(errors), lab.files


def first_errors(output):
    lines = [line for line in output.splitlines() if line.strip()]
    wanted = [i for i, line in enumerate(lines) if "error" in line]
    start = max(0, wanted[0] - 2) if wanted else 0
    return "\n".join(lines[start:start + ERROR_LINES])


def items_of(lab, result):
    """The items a failing test points at: the one whose stub stopped the kernel, if the
    failure names one, else every item whose tests name this test."""
    named = re.search(r"lab \d\d: write (\w+)\(\)", result.reason or "")
    if named:
        return [item for item in lab.items if item.function == named[1]]
    return [item for item in lab.items if result.test.name in item.tests]


def hints_for(lab, result):
    lines = []
    for item in items_of(lab, result):
        lines.append(f"        lab item {item.function}() (book {item.number}): {item.task}")
        lines += [f"        hint: {hint}" for hint in item.hints]
    return "\n".join(lines)


def item_scores(lab, results):
    """[(name, score, points)]: a test's points are shared by the items whose tests name
    it; a test no item names counts for the step as a whole."""
    scores = {item.function: [0.0, 0.0] for item in lab.items}
    whole = [0.0, 0.0]
    for result in results:
        owners = [item.function for item in lab.items if result.test.name in item.tests]
        for name in owners or [None]:
            share = scores[name] if name else whole
            share[0] += result.score / max(1, len(owners))
            share[1] += result.test.points / max(1, len(owners))
    named = [(f"{item.function}() (book {item.number})", *scores[item.function])
             for item in lab.items]
    return named + ([("tests of the step as a whole", *whole)] if whole[1] else [])


def report_items(lab, results):
    scores = item_scores(lab, results)
    lines = [f"Lab {lab.step[:2]}, by item:"]
    lines += [f"  {score:5.1f}/{points:<5.1f} {name}" for name, score, points in scores]
    lines.append(f"  {sum(s[1] for s in scores):5.1f}/{sum(s[2] for s in scores):<5.1f} "
                 f"the lab's score")
    return "\n".join(lines)
