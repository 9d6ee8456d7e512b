#!/usr/bin/python3
"""lab.py: the labs of ringzero's steps.

    lab.py list [STEP...]              the lab items of each step
    lab.py stub STEP OUT [ITEM...]     a copy of STEP with its items (or only those) stubbed
    lab.py handout STEP OUT            a repository to hand out: STEP is the lab
    lab.py handouts OUT                one handout per step, in OUT/NN-name
    lab.py autograder STEP ZIP         a Gradescope autograder for STEP's lab
    lab.py student-tree OUT            every step with its lab stubbed (the book's student edition)
    lab.py check [STEP...]             make check-labs: every item, stubbed alone, fails a test

STEP is a step number or folder name (3, 03 or 03-heap). See common/lab/labs.py for the lab
lists (steps/NN-name/lab.toml) and how stubs are made.
"""
import shutil
import sys

import check_labs
import handout
import labs

WORK = labs.REPO / "build" / "lab"


def one_step(name):
    return labs.find_lab_steps([name])[0]


def list_items(names):
    for step in labs.find_lab_steps(names):
        lab = labs.load(step)
        print(f"{step.name}:")
        for item in lab.items:
            print(f"  {item.function + '()':24} {item.file:14} book {item.number:7} "
                  f"{item.difficulty:8} {item.minutes:3} min  tests: {', '.join(item.tests)}")
    return 0


def stub(name, out, functions):
    step = one_step(name)
    lab = labs.load(step)
    unknown = set(functions) - {item.function for item in lab.items}
    if unknown:
        raise labs.LabError(f"{step.name} has no lab item {', '.join(sorted(unknown))}")
    items = [item for item in lab.items if not functions or item.function in functions]
    labs.write_stubbed(step, out, items, WORK / f"stub-{step.name}")
    print(f"{out}: {step.name} with {', '.join(i.function + '()' for i in items)} stubbed")
    return 0


def student_tree(out):
    """A copy of the steps and the book in which every lab item is a stub: in its own step
    and in every later step, which carry the same function, so no diff shows a body."""
    out = labs.Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(labs.REPO / "book", out / "book", ignore=shutil.ignore_patterns("__pycache__"))
    # The book quotes host tools too; they hold no lab.
    (out / "common").symlink_to(labs.REPO / "common")
    items = []
    for step in sorted((labs.REPO / "steps").iterdir()):
        items += (labs.load(step) or labs.Lab(step.name)).items
        present = [item for item in items if labs.defines(step / item.file, item)]
        target = labs.write_stubbed(step, out / "steps" / step.name, present,
                                    WORK / f"student-{step.name}")
        for name in labs.SUPPORT:
            (target / name).unlink(missing_ok=True)
    return 0


def main(argv):
    command, args = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "list":
        return list_items(args)
    if command == "stub" and len(args) >= 2:
        return stub(args[0], args[1], args[2:])
    if command == "handout" and len(args) == 2:
        print(f"handout of {args[0]}: {handout.write_handout(one_step(args[0]), args[1])}")
        return 0
    if command == "handouts" and len(args) == 1:
        for step in labs.find_lab_steps():
            print(f"handout of {step.name}: "
                  f"{handout.write_handout(step, labs.Path(args[0]) / step.name)}")
        return 0
    if command == "autograder" and len(args) == 2:
        step = one_step(args[0])
        print(handout.write_autograder(step, args[1], WORK / f"autograder-{step.name}"))
        return 0
    if command == "student-tree" and len(args) == 1:
        return student_tree(args[0])
    if command == "check":
        return check_labs.main(args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except labs.LabError as error:
        sys.exit(f"lab.py: {error}")
