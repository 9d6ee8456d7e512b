#!/usr/bin/python3
"""Grade one step of ringzero: build its kernel, then run the tests of every step up to it.

    grade.py STEP [--tree PATH] [-t NAME] [--own] [--json FILE] [--timeout-scale X] [--list]

STEP is a step folder name such as 02-serial. The tests of steps 01..STEP all run, so a later
step cannot quietly break an earlier subsystem; --own runs only STEP's own tests. --tree grades
a student's copy of the step.
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
    return parser.parse_args(argv)


def select_tests(tests, name):
    if not name:
        return tests
    wanted = name.lower()
    return [t for t in tests if wanted in (t.name.lower(), t.title.lower(), t.label.lower())]


def build_dir_for(args):
    """build/<step>, or build/tree-<hash> for a student's tree, so two trees never mix."""
    if not args.tree:
        return REPO / "build" / args.step
    tree = str(Path(args.tree).resolve())
    return REPO / "build" / f"tree-{hashlib.sha256(tree.encode()).hexdigest()[:10]}"


def build_kernel(source, out):
    """make the kernel and its ISO; return None on success, else make's output."""
    result = subprocess.run(["make", "-s", "-f", "common/kernel.mk", f"STEP_DIR={source}",
                             f"OUT={out}"], cwd=REPO, capture_output=True, text=True)
    return None if result.returncode == 0 else (result.stdout + result.stderr).strip()


def run_all(run, tests):
    results = []
    for test in tests:
        result = gradelib.run_test(run, test)
        print(gradelib.format_result(result, root=Path.cwd()), flush=True)
        results.append(result)
    return results


def write_json(path, results):
    """Gradescope's results.json."""
    report = {
        "score": sum(r.score for r in results),
        "max_score": sum(r.test.points for r in results),
        "tests": [{"name": r.test.label, "score": r.score, "max_score": r.test.points,
                   "status": "passed" if r.passed else "failed",
                   "output": r.reason + (f"\nlog: {r.log_path}" if r.log_path else "")}
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
        return 0

    gradelib.install_cleanup_handlers()
    out = build_dir_for(args)
    build_error = build_kernel(source, os.path.relpath(out, REPO))
    if build_error:
        print(f"grade: the kernel in {source} did not build:\n{build_error}")
        results = [gradelib.Result(t, False, "the kernel did not build", 0.0) for t in tests]
    else:
        run = gradelib.Run(args.step, out, timeout_scale=args.timeout_scale)
        print(gradelib.qemu.describe_accel(run.accel) +
              f"; timeouts x{run.timeout_scale:g}", flush=True)
        results = run_all(run, tests)
    if args.json:
        write_json(args.json, results)
    summarize(results)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
