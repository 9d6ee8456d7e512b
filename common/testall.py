"""Run everything `make test` promises, and add up the results.

Each suite is a command that ends with the plain line `N passed, N failed`: the grader for every
step, then the host-side checks. Every step is graded on the tests it introduces, and the last
step, the finished kernel, on the tests of all steps (`make step N grade` runs an earlier step's
whole set too). The graders run JOBS at a time (default 2): most of their time is spent waiting
on timers, in QEMU and in clients, not computing. A suite that exits non-zero without such a
line, or whose counts disagree with its exit status, counts as one failure, so a crash can never
read as a pass.
"""
import concurrent.futures
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import steps  # common/steps.py: this script's folder is on the path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
SUMMARY = re.compile(r"^(?:\w+: )?(\d+) passed, (\d+) failed(?:, \d+ skipped)?$")


def grade_suites():
    """The last step's whole set first: it is the longest, and the others fit beside it."""
    names = [folder.name for folder in steps.find_steps(Path(ROOT))]
    yield f"grade {names[-1]} (tests of every step)", [PYTHON, "common/grader/grade.py",
                                                        names[-1]]
    for step in names[:-1]:
        yield f"grade {step} (its own tests)", [PYTHON, "common/grader/grade.py", step, "--own"]


def reference_suites():
    """For each step that offers inference: build its host reference and check it against
    the golden values PyTorch wrote when the step's committed model was exported (golden.txt,
    beside the model.bin its MANIFEST names): tokens, logits within 1e-4, greedy text."""
    for folder in steps.offering(steps.find_steps(Path(ROOT)), "inference"):
        step = folder.name
        modules = steps.read_manifest(folder)[0].get("modules", "").split()
        model = next((m for m in modules if m.endswith("/model.bin")), "model.bin")
        tokenizer = next((m for m in modules if m.endswith("/tokenizer.bin")), "tokenizer.bin")
        golden = os.path.join(os.path.dirname(model), "golden.txt")
        script = ('make -s -f common/reference/reference.mk STEP_DIR="steps/$1" OUT="build/$1" '
                  '&& "build/$1/reference" "$2" "$3" --golden "$4"')
        yield (f"host reference of {step} against {golden}",
               ["sh", "-c", script, "sh", step, model, tokenizer, golden])


def host_suites():
    yield from reference_suites()
    yield "int8 checkpoints: perplexity within 2 % of float, the same bits on every path", \
        [PYTHON, "common/model/int8_check.py"]
    yield "step tree consistency", [PYTHON, "common/steps.py", "check"]
    yield "step tree tool", [PYTHON, "common/steps.py", "selftest"]
    yield "grader library", [PYTHON, "common/grader/selftest.py"]
    yield "labs: handout, autograder, a cheating and a broken lab", [PYTHON, "common/lab/selftest.py"]
    yield "labs: every item, stubbed alone, fails a test (check-labs)", [PYTHON, "common/lab/lab.py", "check"]
    yield "book references", [PYTHON, "book/build.py", "--check"]
    yield "book build checks", [PYTHON, "book/selftest.py"]
    yield "book in a browser (make book-check: 1280x800, links, images, listings)", \
        ["make", "-s", "--no-print-directory", "book-check"]
    yield "students' tools (clangd through compile_commands.json, PCAP read by tshark)", \
        [PYTHON, "common/tools_test.py"]
    yield "JSON unit tests (host, sanitizers)", ["sh", "common/hosttest/run.sh"]
    yield "fuzzing, bounded (HTTP parser, JSON reader)", ["sh", "common/fuzz/run.sh", "20"]


def last_summary(output):
    for line in reversed(output.splitlines()):
        match = SUMMARY.match(line.strip())
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def run_suite(title, command):
    """Run one suite; return its report (printed whole, so parallel suites never interleave)
    and its counts."""
    # One write with its newline: two suites starting together must not share a line.
    sys.stdout.write(f"... {title}: running\n")
    sys.stdout.flush()
    started = time.monotonic()
    process = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    report = [f"==> {title}: {' '.join(command[1:])}\n", process.stdout]
    counts = last_summary(process.stdout)
    if counts is None:
        # A check with no counts of its own is one test: its exit status is the verdict.
        counts = (1, 0) if process.returncode == 0 else (0, 1)
    elif process.returncode != 0 and counts[1] == 0:
        report.append(f"{title}: exited with status {process.returncode} although it "
                      "reported no failure\n")
        counts = (counts[0], 1)
    report.append(f"<== {title}: {counts[0]} passed, {counts[1]} failed "
                  f"({time.monotonic() - started:.0f} s)\n\n")
    return "".join(report), counts


def run_all():
    """Yield (title, counts) of every suite, printing each report as its suite ends."""
    jobs = max(1, int(os.environ.get("JOBS", "2")))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        running = {pool.submit(run_suite, title, command): title
                   for title, command in grade_suites()}
        for future in concurrent.futures.as_completed(running):
            report, counts = future.result()
            print(report, end="", flush=True)
            yield running[future], counts
    for title, command in host_suites():
        report, counts = run_suite(title, command)
        print(report, end="", flush=True)
        yield title, counts


def main():
    passed = failed = 0
    failing = []
    for title, (suite_passed, suite_failed) in run_all():
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
