#!/usr/bin/python3
"""selftest.py: the lab machinery, tried as a student and an instructor would use it.

1. A handout of step 03 is a repository of its own: steps 01-03 and no later step, the
   stubs in place, LAB.md, the grader's copy, a consistent step tree.
2. Gradescope: `make step 3 autograder` writes a zip; its run_autograder, run in a folder laid
   out as Gradescope lays it out (AUTOGRADER_ROOT), grades a half-done lab into a valid
   results.json with a partial score. The submission also cheats: its own memtest.c prints
   passing self-tests without testing, and its heap.c prints one more. Neither earns a point.
3. A lab that does not compile (step 02's): the compiler's errors are in results.json, and
   the items in the files that do compile still earn their points.

Prints one line per check and `N passed, N failed`.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import labs

REPO = labs.REPO
STEP = "03-heap"
# A heap.c whose insert_free never merges neighbours (half done), and which prints a passing
# heap self-test line of its own on the first kmalloc (a cheat).
LAZY_INSERT = """{
    (void)end_of;
    block->header.magic = BLOCK_FREE;
    block->next = free_list;
    free_list = block;
    stats.free_blocks++;
}"""
CHEAT_LINE = ('    static bool claimed;\n    if (!claimed) {\n        claimed = true;\n'
              '        kprintf("selftest heap: 5000/5000 passed\\n");\n    }\n')
FAKE_MEMTEST = """#include "kprintf.h"
#include "memtest.h"

void memtest_run(void)
{
    kprintf("selftest frames: 500/500 passed\\n");
    kprintf("selftest heap: 5000/5000 passed\\n");
}
"""


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def expect(self, what, ok, detail=""):
        print(f"{'PASS' if ok else 'FAIL'} {what}" + (f": {detail}" if detail and not ok else ""),
              flush=True)
        self.passed += bool(ok)
        self.failed += not ok


def half_done_submission(folder):
    """The student's files: frames.c complete, heap.c half done and cheating, a fake memtest.c."""
    folder.mkdir(parents=True)
    source = REPO / "steps" / STEP
    shutil.copy(source / "frames.c", folder / "frames.c")
    lines = (source / "heap.c").read_text().split("\n")
    start, opening, closing = labs.locate_c(lines, "insert_free")
    lines[opening:closing + 1] = LAZY_INSERT.split("\n")
    text = "\n".join(lines)
    at = text.index("void *kmalloc(size_t size)\n{\n") + len("void *kmalloc(size_t size)\n{\n")
    (folder / "heap.c").write_text(text[:at] + CHEAT_LINE + text[at:])
    (folder / "memtest.c").write_text(FAKE_MEMTEST)


def check_handout(t, work):
    out = work / "handout"
    result = run(["make", "-s", "step", "3", "handout", f"OUT={out}"])
    t.expect("make step 3 handout writes a handout", result.returncode == 0, result.stderr)
    if result.returncode:
        return
    steps = sorted(p.name for p in (out / "steps").iterdir())
    t.expect("the handout holds steps 01-03 only", steps == ["01-boot", "02-serial", STEP], steps)
    heap = (out / "steps" / STEP / "heap.c").read_text()
    t.expect("heap.c's lab items are stubs naming their book section",
             re.search(r'lab_missing\("lab 03: write insert_free\(\) \(book 3\.\d+\.\d+\)"\)', heap)
             and "next->header.size" not in heap)
    t.expect("no lab list and no solution in the handout's steps",
             not list(out.glob("steps/*/lab.toml")))
    t.expect("LAB.md names every item", all(f"`{name}()`" in (out / "LAB.md").read_text()
                                            for name in ("find_free_run", "take_first_fit", "insert_free")))
    check = run(["make", "-s", "check-steps"], cwd=out)
    t.expect("the handout's step tree is consistent", check.returncode == 0, check.stdout)


def check_autograder(t, work):
    archive = work / "autograder.zip"
    result = run(["make", "-s", "step", "3", "autograder", f"OUT={archive}"])
    t.expect("make step 3 autograder writes a zip", archive.is_file(), result.stderr)
    if not archive.is_file():
        return
    root = work / "autograder"
    (root / "source").mkdir(parents=True)
    run(["unzip", "-q", str(archive), "-d", str(root / "source")])
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    t.expect("the zip has setup.sh and run_autograder at its top",
             (root / "source" / "setup.sh").is_file() and os.access(root / "run_autograder", os.X_OK))
    half_done_submission(root / "submission")
    run([str(root / "run_autograder")], env={**os.environ, "AUTOGRADER_ROOT": str(root)})
    try:
        report = json.loads((root / "results" / "results.json").read_text())
    except (OSError, ValueError) as error:
        t.expect("run_autograder writes a valid results.json", False, str(error))
        return
    tests = {test["name"]: test for test in report.get("tests", [])}
    t.expect("run_autograder writes a valid results.json",
             isinstance(report.get("score"), (int, float)) and tests and
             all({"name", "score", "max_score", "status"} <= set(test) for test in tests.values()))
    t.expect("the half-done lab gets a partial score",
             0 < report["score"] < report["max_score"], f"{report['score']}/{report['max_score']}")
    heap = tests.get("03 heap self-test", {})
    t.expect("self-test lines printed without the work earn nothing",
             heap.get("status") == "failed" and heap.get("score") == 0, heap.get("output", ""))
    t.expect("a failing test names its lab item and gives hints",
             "hint:" in heap.get("output", "") and "insert_free()" in heap.get("output", ""))


def check_build_failure(t, work):
    """Step 02's lab is in kprintf.c and idt.c: idt.c does not compile, kprintf.c is right."""
    tree = work / "broken"
    tree.mkdir()
    source = REPO / "steps" / "02-serial"
    shutil.copy(source / "kprintf.c", tree / "kprintf.c")
    (tree / "idt.c").write_text((source / "idt.c").read_text().replace("reporting = true;",
                                                                        "reporting = true"))
    results = work / "broken.json"
    run([sys.executable, str(REPO / "common/grader/grade.py"), "02-serial", "--tree", str(tree),
         "--json", str(results), "-t", "printf_battery"])
    report = json.loads(results.read_text()) if results.is_file() else {}
    t.expect("a compile error is reported in results.json",
             "idt.c" in report.get("output", "") and "error" in report.get("output", ""),
             report.get("output", "no results.json"))
    t.expect("items in the files that compile still earn their points",
             report.get("score", 0) > 0, json.dumps(report)[:300])


def run(command, cwd=REPO, env=None):
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)


def main():
    t = Checks()
    with tempfile.TemporaryDirectory(prefix="ringzero-lab-") as work:
        check_handout(t, Path(work))
        check_autograder(t, Path(work))
        check_build_failure(t, Path(work))
    print(f"{t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
