"""Run everything `make test` promises, and add up the results.

Each suite is a command that ends with the plain line `N passed, N failed`: the grader for every
step (which runs the tests of all earlier steps too), then the host-side checks. A suite that
exits non-zero without such a line, or whose counts disagree with its exit status, counts as one
failure, so a crash can never read as a pass.
"""
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
SUMMARY = re.compile(r"^(?:\w+: )?(\d+) passed, (\d+) failed(?:, \d+ skipped)?$")


def step_names():
    steps = os.path.join(ROOT, "steps")
    return sorted(name for name in os.listdir(steps)
                  if re.match(r"^\d\d-", name) and os.path.isdir(os.path.join(steps, name)))


def suites():
    for step in step_names():
        yield f"grade {step}", [PYTHON, "common/grader/grade.py", step]
    yield "step tree consistency", [PYTHON, "common/steps.py", "check"]
    yield "step tree tool", [PYTHON, "common/steps.py", "selftest"]
    yield "grader library", [PYTHON, "common/grader/selftest.py"]
    yield "book references", [PYTHON, "book/build.py", "--check"]
    yield "book build checks", [PYTHON, "book/selftest.py"]
    yield "JSON unit tests (host, sanitizers)", ["sh", "common/hosttest/run.sh"]
    yield "fuzzing, bounded (HTTP parser, JSON reader)", ["sh", "common/fuzz/run.sh", "20"]


def last_summary(output):
    for line in reversed(output.splitlines()):
        match = SUMMARY.match(line.strip())
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def run_suite(title, command):
    print(f"==> {title}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = []
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        output.append(line)
    status = process.wait()
    counts = last_summary("".join(output))
    if counts is None:
        # A check with no counts of its own is one test: its exit status is the verdict.
        counts = (1, 0) if status == 0 else (0, 1)
    elif status != 0 and counts[1] == 0:
        print(f"{title}: exited with status {status} although it reported no failure")
        counts = (counts[0], 1)
    print(f"<== {title}: {counts[0]} passed, {counts[1]} failed "
          f"({time.monotonic() - started:.0f} s)\n", flush=True)
    return counts


def main():
    passed = failed = 0
    failing = []
    for title, command in suites():
        suite_passed, suite_failed = run_suite(title, command)
        passed += suite_passed
        failed += suite_failed
        if suite_failed:
            failing.append(title)
    if failing:
        print("failing suites: " + ", ".join(failing))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
