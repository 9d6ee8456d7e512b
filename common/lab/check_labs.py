"""check_labs: proof that each step's tests catch every lab item.

For every step with a lab and every item in it, the complete step with only that item stubbed
is graded on the step's own tests, the item's tests first, stopping at the first failure. The
check passes when every such variant fails some test: an item no test catches is a defect in
the tests. (That the complete steps pass all their tests is what `make test` grades anyway.)
"""
import concurrent.futures
import os
import subprocess
import sys
import time
from pathlib import Path

import labs

GRADER = labs.REPO / "common" / "grader" / "grade.py"
WORK = labs.REPO / "build" / "check-labs"


def variants(step_names):
    for step_dir in labs.find_lab_steps(step_names):
        lab = labs.load(step_dir)
        for item in lab.items:
            yield step_dir, item


def check_item(step_dir, item):
    """(passed, report): stub the item alone and grade until a test fails."""
    started = time.monotonic()
    name = f"{step_dir.name}-{item.function}"
    tree = labs.write_stubbed(step_dir, WORK / name, [item], WORK / f"{name}-build")
    result = subprocess.run([sys.executable, str(GRADER), step_dir.name, "--tree", str(tree),
                             "--own", "--stop", "--first", ",".join(item.tests)],
                            cwd=labs.REPO, capture_output=True, text=True)
    failing = [line.strip() for line in result.stdout.splitlines() if line.startswith("  FAIL")]
    seconds = time.monotonic() - started
    if result.returncode == 1 and failing:
        return True, f"PASS {name}: caught by {failing[0].split('  ')[1]}  ({seconds:.0f} s)"
    detail = result.stdout.strip().splitlines()[-3:] + result.stderr.strip().splitlines()[-3:]
    return False, (f"FAIL {name}: no test of {step_dir.name} fails with {item.function}() "
                   f"stubbed\n    " + "\n    ".join(detail))


def main(step_names):
    jobs = max(1, int(os.environ.get("JOBS", "2")))
    passed = failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(check_item, step_dir, item) for step_dir, item in variants(step_names)]
        for future in futures:
            ok, report = future.result()
            print(report, flush=True)
            passed += ok
            failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
