#!/usr/bin/python3
"""Grade one step of ringzero: build its kernel, then run the tests of every step up to it.

    grade.py STEP [--tree PATH] [-t NAME] [--own] [--json FILE] [--timeout-scale X] [--list]

STEP is a step folder name such as 02-serial. The tests of steps 01..STEP all run, so a later
step cannot quietly break an earlier subsystem; --own runs only STEP's own tests.

A lab is graded differently (common/grader/labgrade.py): --tree grades a student's copy of a
step that has a lab, and inside a handout every step with a lab is graded so. Only the lab's
files come from the student, the rest from the grader's pristine copy; the step's own tests
are scored and grouped by lab item, and a failing test prints its item's hints. Inside a
handout, the tests of earlier steps run against those steps (complete in the handout), so
that a lab item not yet written fails only its own step's tests.
Prints one line per test, the score, and `N passed, N failed`; exits 1 if any test failed.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gradelib
import labgrade
from gradelib import REPO


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="grade.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", help="step folder name, e.g. 02-serial")
    parser.add_argument("--tree", help="grade the kernel source in this folder instead")
    parser.add_argument("-t", "--test", metavar="NAME",
                        help="run only this test (function name or title)")
    parser.add_argument("--own", action="store_true",
                        help="run only the tests STEP introduces, not those of earlier steps")
    parser.add_argument("--json", metavar="FILE", help="also write Gradescope's results.json")
    parser.add_argument("--timeout-scale", type=float, metavar="X",
                        help="multiply every timeout (default: TIMEOUT_SCALE, or 3 under TCG)")
    parser.add_argument("--list", action="store_true", help="list the tests and exit")
    parser.add_argument("--first", metavar="NAMES", default="",
                        help="run these tests (comma-separated names) before the others")
    parser.add_argument("--stop", action="store_true", help="stop at the first failing test")
    return parser.parse_args(argv)


def select_tests(tests, name):
    """The scored tests, or the one named: a test's name or title, or exercise-N.M."""
    if not name:
        return [t for t in tests if not gradelib.is_exercise(t)]
    wanted = name.lower()
    if wanted.startswith("exercise-"):
        return [t for t in tests if t.exercise == wanted[len("exercise-"):]]
    return [t for t in tests if not gradelib.is_exercise(t) and
            wanted in (t.name.lower(), t.title.lower(), t.label.lower())]


def build_dir_for(args):
    """build/<step>, or build/tree-<hash> for a student's tree, so two trees never mix."""
    if not args.tree:
        return REPO / "build" / (f"lab-{args.step}" if labgrade.in_handout() else args.step)
    tree = str(Path(args.tree).resolve())
    return REPO / "build" / f"tree-{hashlib.sha256(tree.encode()).hexdigest()[:10]}"


def build_kernel(source, out):
    """make the kernel and its ISO; return None on success, else make's output."""
    result = subprocess.run(["make", "-s", "-f", "common/kernel.mk", f"STEP_DIR={source}",
                             f"OUT={out}"], cwd=REPO, capture_output=True, text=True)
    return None if result.returncode == 0 else (result.stdout + result.stderr).strip()


def run_all(run, tests, stop=False, explain=None):
    results = []
    for test in tests:
        result = gradelib.run_test(run, test)
        print(gradelib.format_result(result, root=Path.cwd()), flush=True)
        if not result.passed and explain:
            print(explain(result), flush=True)
        results.append(result)
        if stop and not result.passed:
            break
    return results


def order_first(tests, names):
    first = [name for name in names.split(",") if name]
    return sorted(tests, key=lambda t: first.index(t.name) if t.name in first else len(first))


def write_json(path, results, output="", explain=None):
    """Gradescope's results.json."""
    report = {
        "score": sum(r.score for r in results),
        "max_score": sum(r.test.points for r in results),
        "output": output,
        "tests": [{"name": r.test.label, "score": r.score, "max_score": r.test.points,
                   "status": "passed" if r.passed else "failed",
                   "output": "\n".join(filter(None, [
                       r.reason, f"log: {r.log_path}" if r.log_path else "",
                       explain(r) if explain and not r.passed else ""]))}
                  for r in results],
    }
    Path(path).write_text(json.dumps(report, indent=2) + "\n")


def summarize(results):
    passed = sum(r.passed for r in results)
    print(f"Score: {sum(r.score for r in results)}/{sum(r.test.points for r in results)}")
    print(f"{passed} passed, {len(results) - passed} failed")


def main(argv):
    args = parse_args(argv)
    match = re.match(r"^(\d\d)-", args.step)
    if not match:
        sys.exit(f"grade.py: STEP must be a step folder name like 02-serial, not {args.step!r}")
    source = Path(args.tree).resolve() if args.tree else REPO / "steps" / args.step
    if not source.is_dir():
        sys.exit(f"grade.py: no such step folder: {source}")
    tests = select_tests(gradelib.load_tests(int(match[1])), args.test)
    if args.own:
        tests = [t for t in tests if t.step == match[1]]
    if not tests:
        sys.exit(f"grade.py: no test named {args.test!r} (see --list)")
    if args.list:
        for t in tests:
            print(f"  {t.step} {t.name:24} {t.title} ({t.points})")
        for t in exercises_of(match[1]):
            print(f"  {t.step} exercise-{t.exercise:15} {t.title} (optional, not scored)")
        return 0
    if any(gradelib.is_exercise(t) for t in tests):
        return grade_exercise(args, source, tests)

    gradelib.install_cleanup_handlers()
    tests = order_first(tests, args.first)
    lab = labgrade.load_lab(args.step) if args.tree or labgrade.in_handout() else None
    if lab:
        results, output = grade_lab(args, lab, source, tests, match[1])
    else:
        results, output = grade_plain(args, source, tests)
    if args.json:
        write_json(args.json, results, output, explain=lab and (lambda r: labgrade.hints_for(lab, r)))
    summarize(results)
    return 0 if all(r.passed for r in results) else 1


def exercises_of(number):
    return [t for t in gradelib.load_tests(int(number)) if gradelib.is_exercise(t)]


def grade_exercise(args, source, tests):
    """An exercise's check: the tree as it is (the student's own, solution and all), reported
    on its own and never scored."""
    results, _ = grade_plain(args, source, tests)
    for r in results:
        print(f"Exercise {r.test.exercise} (optional, not part of the score): "
              f"{'done' if r.passed else 'not done yet'}")
    passed = sum(r.passed for r in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


def grade_plain(args, source, tests):
    out = build_dir_for(args)
    build_error = build_kernel(source, os.path.relpath(out, REPO))
    if build_error:
        print(f"grade: the kernel in {source} did not build:\n{build_error}")
        return [gradelib.Result(t, False, "the kernel did not build", 0.0) for t in tests], build_error
    return run_tests(args, args.step, out, tests), ""


def run_tests(args, step, out, tests, explain=None):
    run = gradelib.Run(step, out, timeout_scale=args.timeout_scale)
    print(gradelib.qemu.describe_accel(run.accel) + f"; timeouts x{run.timeout_scale:g}", flush=True)
    return run_all(run, tests, stop=args.stop, explain=explain)


def grade_lab(args, lab, student, tests, number):
    """The student's lab files in the grader's pristine step; earlier steps' tests (in a
    handout) against those steps themselves."""
    work = build_dir_for(args)
    out = work / "kernel"
    source, errors, stubbed = labgrade.build_with_fallback(
        args.step, lab, student, work, lambda src: build_kernel(src, os.path.relpath(out, REPO)))
    output = ""
    if errors:
        output = (f"The lab did not compile; {', '.join(stubbed)} graded as not written.\n"
                  f"The compiler's first errors:\n{errors}")
        print(output, flush=True)
    own = [t for t in tests if t.step == number]
    results = []
    if source is None:
        results += [gradelib.Result(t, False, "the kernel did not build", 0.0) for t in own]
    else:
        results += run_tests(args, args.step, out, own, lambda r: labgrade.hints_for(lab, r))
    print(labgrade.report_items(lab, results))
    earlier = [t for t in tests if t.step != number]
    if earlier and args.tree:
        print(f"({len(earlier)} tests of earlier steps not run: a student's tree holds step "
              f"{number} only)")
    elif earlier and not (args.stop and not all(r.passed for r in results)):
        results += grade_earlier_steps(args, earlier)
    return results, output


def grade_earlier_steps(args, tests):
    results = []
    for step in sorted({t.step for t in tests}):
        folder = next((REPO / "steps").glob(f"{step}-*"))
        out = REPO / "build" / folder.name
        error = build_kernel(folder, os.path.relpath(out, REPO))
        mine = [t for t in tests if t.step == step]
        if error:
            print(f"grade: {folder} did not build:\n{error}")
            results += [gradelib.Result(t, False, "the kernel did not build", 0.0) for t in mine]
            continue
        print(f"-- step {folder.name}'s tests, on step {folder.name}", flush=True)
        results += run_tests(args, folder.name, out, mine)
    return results


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
