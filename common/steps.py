#!/usr/bin/python3
"""steps.py: keeps ringzero's staged lab tree consistent.

Every steps/NN-name/ folder holds the complete kernel of step NN, and its MANIFEST
says which files the step adds, changes and removes relative to step NN-1.  Copies
drift apart when a fix lands in one step but not in the later ones.  This tool finds
such drift (check), carries a fix forward through the later steps with git's 3-way
merge (forward), and answers the questions the Makefile and the other tools ask (list,
resolve, prev, diff, field, offering).

    steps.py [--root DIR] list
    steps.py [--root DIR] resolve ARG     ARG: 5, 05, e1000, 05-e1000, steps/05-e1000, last
    steps.py [--root DIR] prev STEP
    steps.py [--root DIR] check
    steps.py [--root DIR] forward STEP [--base REV] [--dry-run]
    steps.py [--root DIR] diff STEP [--color]
    steps.py [--root DIR] field KEY STEP            a MANIFEST value, continuation lines joined
    steps.py [--root DIR] field KEY --manifest PATH   the same from any MANIFEST (a student's tree)
    steps.py [--root DIR] offering WORD [--last]    the steps whose MANIFEST offers WORD
    steps.py [--root DIR] selftest

A step's files are those git does not ignore (outside a git tree: no hidden files and
no build output), minus the MANIFEST and the lab list (lab.toml), which describe their own
step only and are never carried forward.  Exit status: 0 ok, 1 problems found (offering: no
step offers the word), 2 unknown step or other usage error.  `field` prints nothing for a key
or a MANIFEST file that is not there.  Python tools import this module and call read_manifest,
manifest_field, offers and offering rather than run it.  Python 3 stdlib only; needs git on PATH.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

STEP_NAME = re.compile(r"^\d\d-[a-z0-9][a-z0-9-]*$")
FILE_LISTS = ("adds", "changes", "removes")
# modules: files, relative to the repository, that GRUB loads beside the kernel (step 08 on).
# smp: the CPUs `make step N run` gives QEMU, a number or host (all its cores; step 09 on).
# offers: what the step's kernel offers the tools around it, as words of OFFERS.
KNOWN_KEYS = ("title", "console", "run", "modules", "smp", "offers") + FILE_LISTS
# The words of `offers:`. The benchmarks, make test and the host reference ask which steps
# offer a word instead of probing for a source file; a later step offers all an earlier one does.
OFFERS = {
    "tcp-echo": "TCP with the echo (port 7) and discard (port 9) services; common/bench.py",
    "http": "the HTTP/1.1 server on port 80 with the API; common/bench_http.py",
    "inference": "the inference engine and a model (modules:), which common/reference/ builds "
                 "for the host: make test checks it, common/bench_infer.py races it",
    "parallel-engine": "the engine hands its loops to parallel.h, so the host reference links "
                       "common/reference/parallel_serial.c",
}
CONSOLES = ("vga", "serial")
# Only consulted outside a git tree, where there is no .gitignore to ask.
BUILD_OUTPUT = re.compile(r"(^|/)(build/|\.)|\.(o|d|elf|iso|bin)$|~$")


class StepError(Exception):
    """A mistake by the caller (unknown step, no git history); exit status 2."""


def git(root, *args, check=True):
    result = subprocess.run(["git", *args], cwd=root, capture_output=True)
    if check and result.returncode != 0:
        raise StepError(f"git {' '.join(args)}: {result.stderr.decode().strip()}")
    return result


@lru_cache(maxsize=None)
def in_git_tree(root):
    return git(root, "rev-parse", "--is-inside-work-tree", check=False).returncode == 0


def find_steps(root):
    """The step folders under root/steps, in step order."""
    folder = root / "steps"
    found = [d for d in folder.iterdir() if d.is_dir() and STEP_NAME.match(d.name)] if folder.is_dir() else []
    return sorted(found, key=lambda d: d.name)


def plural(count, noun):
    return f"{count} {noun}{'s' * (count != 1)}"


def label(step):
    return f"steps/{step.name}"


# What describes a step rather than being part of its kernel: never compared, never carried.
OWN_FILES = {"MANIFEST", "lab.toml"}


def step_files(root, step):
    """Paths (relative to the step) of the files that make up a step."""
    if step is None:
        return set()
    if in_git_tree(root):
        out = git(root, "ls-files", "-z", "--others", "--cached", "--exclude-standard", "--", label(step)).stdout
        names = {os.fsdecode(p)[len(label(step)) + 1:] for p in out.split(b"\0") if p}
        # --cached still lists files deleted from the working tree but not from the index.
        names = {n for n in names if (step / n).is_file()}
    else:
        names = {p.relative_to(step).as_posix() for p in step.rglob("*") if p.is_file()}
        names = {n for n in names if not BUILD_OUTPUT.search(n)}
    return names - OWN_FILES


def read_manifest(step):
    """The MANIFEST as ({key: text}, [syntax problems]); file lists stay text here."""
    path = step / "MANIFEST"
    if not path.is_file():
        return {}, [f"{label(step)}: there is no MANIFEST"]
    return parse_manifest(path.read_text(), f"{label(step)}/MANIFEST")


def parse_manifest(text, name):
    """MANIFEST text as ({key: value}, [problems, naming the file as name]). A line that
    starts with white space continues the value of the key before it."""
    fields, problems, key = {}, [], None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{name} line {number}"
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            if key is None:
                problems.append(f"{where}: continuation line without a key before it")
            else:
                fields[key] += " " + line.strip()
            continue
        key, colon, value = (part.strip() for part in line.partition(":"))
        if not colon:
            problems.append(f"{where}: expected 'key: value', got '{line}'")
            key = None
            continue
        if key not in KNOWN_KEYS:
            problems.append(f"{where}: unknown key '{key}' (known keys: {', '.join(KNOWN_KEYS)})")
        elif key in fields:
            problems.append(f"{where}: '{key}' appears twice")
        fields[key] = (fields.get(key, "") + " " + value).strip()
    if not fields.get("title"):
        problems.append(f"{name}: missing 'title: ...' line")
    if fields.get("console", "vga") not in CONSOLES:
        problems.append(f"{name}: console must be one of {', '.join(CONSOLES)}")
    unknown = [word for word in fields.get("offers", "").split() if word not in OFFERS]
    if unknown:
        problems.append(f"{name}: offers: {plural(len(unknown), 'unknown word')} ({', '.join(unknown)}); "
                        f"the known words, OFFERS in common/steps.py: {', '.join(OFFERS)}")
    return fields, problems


def manifest_field(path, key):
    """The value of key in the MANIFEST file at path, continuation lines joined; "" when the
    file or the key is not there."""
    if key not in KNOWN_KEYS:
        raise StepError(f"no MANIFEST key '{key}' (known keys: {', '.join(KNOWN_KEYS)})")
    path = Path(path)
    return parse_manifest(path.read_text(), str(path))[0].get(key, "") if path.is_file() else ""


def offers(step):
    """The words of the step's `offers:` (see OFFERS), in MANIFEST order."""
    return read_manifest(step)[0].get("offers", "").split()


def offering(steps, word):
    """The steps whose MANIFEST offers word, in step order."""
    if word not in OFFERS:
        raise StepError(f"no step can offer '{word}': it is not in OFFERS (known words: "
                        f"{', '.join(OFFERS)})")
    return [step for step in steps if word in offers(step)]


def lost_offers(prev, step):
    """A step must offer all that the step before it did: the tools pick the last step that
    offers a word and expect the earlier ones to have it too."""
    lost = [word for word in offers(prev) if word in OFFERS and word not in offers(step)] if prev else []
    if not lost:
        return []
    return [f"{label(step)}/MANIFEST: offers: does not name {', '.join(lost)}, which {label(prev)} "
            "offers (a later step offers everything an earlier one does)"]


def declared_changes(fields):
    """{file: [every list that names it]} from a parsed MANIFEST."""
    declared = {}
    for key in FILE_LISTS:
        for name in fields.get(key, "").split():
            declared.setdefault(name, []).append(key)
    return declared


def actual_state(prev, step, name):
    """How name really differs between prev and step: adds/changes/removes/same/absent."""
    here, before = (step / name).is_file(), prev is not None and (prev / name).is_file()
    if here and before:
        return "changes" if (step / name).read_bytes() != (prev / name).read_bytes() else "same"
    return "adds" if here else "removes" if before else "absent"


def describe(state, name, prev, step):
    """What really happened to name, worded to follow "<name> ..."."""
    if state == "changes":
        return f"differs from {label(prev)}/{name}"
    if state == "same":
        return f"is identical to {label(prev)}/{name}"
    if state == "adds":
        return f"is new ({label(prev)}/{name} does not exist)" if prev else f"is in {label(step)}"
    if state == "removes":
        return f"is gone (it is in {label(prev)}, not in {label(step)})"
    return f"is in neither {label(prev)} nor {label(step)}" if prev else f"is not in {label(step)}"


def forward_hint(state, prev):
    """Undeclared drift is most often a fix to the step before that never reached this one."""
    if state == "changes":
        return (f" (if you fixed it in {label(prev)}, carry the fix forward with: make forward STEP={prev.name[:2]};"
                " if the change belongs to this step, add it to changes)")
    if state == "removes":
        return f" (if you added it to {label(prev)}, copy it forward with: make forward STEP={prev.name[:2]})"
    return ""


def check_step(root, prev, step):
    """Problems of one step: its MANIFEST against what really differs from the step before."""
    fields, problems = read_manifest(step)
    declared = declared_changes(fields)
    for name in sorted(step_files(root, prev) | step_files(root, step) | set(declared)):
        state = actual_state(prev, step, name)
        expected = [state] if state in FILE_LISTS else []
        listed = declared.get(name, [])
        if listed == expected:
            continue
        said = describe(state, name, prev, step)
        if not listed:
            problem = f"{name} {said} but the MANIFEST does not list it under {state}{forward_hint(state, prev)}"
        elif len(listed) > 1:
            problem = f"the MANIFEST lists {name} more than once ({' and '.join(listed)})"
        else:
            fix = f"list it under {state} instead" if expected else f"take it out of {listed[0]}"
            problem = f"the MANIFEST lists {name} under {listed[0]} but it {said}; {fix}"
        problems.append(f"{label(step)}: {problem}")
    return problems + lost_offers(prev, step) + unresolved_conflicts(root, step)


def unresolved_conflicts(root, step):
    """A conflict left by forward would otherwise pass as a declared change."""
    marker = re.compile(rb"^<<<<<<< .*^=======$.*^>>>>>>> ", re.M | re.S)
    return [f"{label(step)}/{name}: unresolved conflict markers (<<<<<<< ... >>>>>>>) from a merge"
            for name in sorted(step_files(root, step)) if marker.search((step / name).read_bytes())]


def check_tree(root):
    """Every problem in the step tree, in plain words."""
    folder, steps = root / "steps", find_steps(root)
    strays = [d for d in folder.iterdir() if d.is_dir() and d not in steps] if folder.is_dir() else []
    problems = [f"steps/{d.name}: not a step folder (step folders are named like 03-heap)" for d in strays]
    if not steps:
        return problems + [f"no steps under {folder}"]
    numbers = [s.name[:2] for s in steps]
    problems += [f"steps: more than one step is numbered {n}" for n in sorted(set(numbers)) if numbers.count(n) > 1]
    for prev, step in zip([None] + steps, steps):
        problems += check_step(root, prev, step)
    return problems


def resolve(steps, arg):
    """The step folder meant by 5, 05, e1000, 05-e1000, steps/05-e1000 or last."""
    wanted = arg.rstrip("/").split("/")[-1]
    if wanted == "last" and steps:
        return steps[-1]
    number = int(wanted) if wanted.isdigit() else None
    matches = [s for s in steps if wanted in (s.name, s.name[3:]) or number == int(s.name[:2])]
    if len(matches) == 1:
        return matches[0]
    known = "\n".join(listing(steps)) if steps else "  (none yet)"
    raise StepError(f"{'no' if not matches else 'more than one'} step '{arg}'; the steps are:\n{known}")


def previous(steps, step):
    index = steps.index(step)
    if index == 0:
        raise StepError(f"{step.name} is the first step; there is no step before it")
    return steps[index - 1]


def listing(steps):
    width = max(len(s.name) for s in steps) - 3
    return [f"  {s.name[:2]}  {s.name[3:]:<{width}}  {read_manifest(s)[0].get('title', '(no title)')}" for s in steps]


def edits_since(root, step, base):
    """[(name, bytes at base or None, bytes now or None)] for each file of step that changed."""
    if not in_git_tree(root):
        raise StepError(f"{root} is not a git work tree; forward needs git history")
    if git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False).returncode:
        raise StepError(f"no commit '{base}' (forward compares with it; commit first or pass --base REV)")
    tracked = git(root, "ls-tree", "-r", "-z", "--name-only", base, "--", label(step) + "/").stdout
    then = {os.fsdecode(p)[len(label(step)) + 1:] for p in tracked.split(b"\0") if p} - OWN_FILES
    edits = []
    for name in sorted(then | step_files(root, step)):
        old = git(root, "show", f"{base}:./{label(step)}/{name}").stdout if name in then else None
        new = (step / name).read_bytes() if (step / name).is_file() else None
        if old != new:
            edits.append((name, old, new))
    return edits


def merge(mine, old, new, labels):
    """git merge-file of old→new into mine: (merged bytes, number of conflicts)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp, n) for n in ("mine", "old", "new")]
        for path, data in zip(paths, (mine, old, new)):
            path.write_bytes(data)
        args = [a for name in labels for a in ("-L", name)] + [str(p) for p in paths]
        result = subprocess.run(["git", "merge-file", "-p", *args], capture_output=True)
    if result.returncode >= 128:
        raise StepError(f"git merge-file on {labels[0]}: {result.stderr.decode().strip()}")
    return result.stdout, result.returncode


def carry(target, old, new, labels):
    """target's content after applying the edit old→new: (bytes or None, what happened, ok)."""
    mine = target.read_bytes() if target.is_file() else None
    if mine == new:
        return mine, "already up to date", True
    if new is None:
        if mine == old:
            return None, "removed", True
        return mine, "kept: it differs from the deleted file, remove it by hand if it should go", False
    if old is None:
        if mine is None:
            return new, "added", True
        return mine, "kept: a different file of that name is already here, merge by hand", False
    if mine is None:
        return None, "skipped: this step has no such file", True
    if mine == old:
        return new, "replaced (it was identical to the old version)", True
    merged, conflicts = merge(mine, old, new, labels)
    if conflicts:
        return merged, f"CONFLICT: {plural(conflicts, 'conflict')}, resolve the markers by hand", False
    return merged, "merged with this step's own changes" if merged != mine else "already has the change", True


def forward(root, steps, step, base, dry_run):
    edits = edits_since(root, step, base)
    if not edits:
        print(f"{label(step)}: no changes against {base}; nothing to carry forward"
              " (if the fix is already committed, pass --base with the commit before it)")
        return 0
    print(f"carrying {plural(len(edits), 'changed file')} of {label(step)} forward (base {base})"
          + ("; dry run, nothing is written" if dry_run else ""))
    failures = 0
    for later in steps[steps.index(step) + 1:]:
        for name, old, new in edits:
            target = later / name
            labels = (f"{label(later)}/{name}", f"{base}:{label(step)}/{name}", f"{label(step)}/{name}")
            content, outcome, ok = carry(target, old, new, labels)
            print(f"  {label(later)}/{name}: {outcome}")
            failures += not ok
            if not dry_run:
                write_file(target, content)
    if failures:
        print(f"forward: {plural(failures, 'file')} need your attention (see above)")
    return 1 if failures else 0


def write_file(path, content):
    """Store content at path; None deletes the file."""
    if content is None:
        path.unlink(missing_ok=True)
    elif not path.is_file() or path.read_bytes() != content:
        path.write_bytes(content)


def show_diff(root, prev, step, color):
    """Run git diff once per differing file, so the MANIFEST and ignored files stay out."""
    names = step_files(root, prev) | step_files(root, step)
    for name in sorted(names):
        if actual_state(prev, step, name) == "same":
            continue
        sides = [f"{label(s)}/{name}" if s and (s / name).is_file() else "/dev/null" for s in (prev, step)]
        sys.stdout.flush()  # git writes straight to our stdout; keep the order
        # The paths already name the steps, so --no-prefix drops git's a/ and b/.
        code = subprocess.run(["git", "--no-pager", "diff", "--no-index", "--no-prefix",
                               f"--color={color}", "--", *sides], cwd=root).returncode
        if code > 1:
            return code
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description="Tool for ringzero's step tree.")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "check", "selftest"):
        sub.add_parser(name)
    takes_step = {name: sub.add_parser(name) for name in ("resolve", "prev", "forward", "diff")}
    for command in takes_step.values():
        command.add_argument("step")
    takes_step["forward"].add_argument("--base", default="HEAD")
    takes_step["forward"].add_argument("--dry-run", action="store_true")
    takes_step["diff"].add_argument("--color", action="store_const", const="always", default="auto")
    field = sub.add_parser("field", help="print a MANIFEST value (empty if it has no such key)")
    field.add_argument("key")
    where = field.add_mutually_exclusive_group(required=True)
    where.add_argument("step", nargs="?", help="a step, as resolve takes it")
    where.add_argument("--manifest", type=Path, help="a MANIFEST file, such as a student tree's")
    offering_command = sub.add_parser("offering", help="the steps whose MANIFEST offers WORD")
    offering_command.add_argument("word", help=f"one of {', '.join(OFFERS)}")
    offering_command.add_argument("--last", action="store_true", help="only the last of them")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        return run_command(root, args)
    except StepError as error:
        print(f"steps: {error}", file=sys.stderr)
        return 2


def run_command(root, args):
    if args.command == "selftest":
        return selftest(root)
    if args.command == "check":
        problems = check_tree(root)
        for problem in problems:
            print(problem)
        print(f"steps: {plural(len(problems), 'problem')}" if problems
              else f"steps: {plural(len(find_steps(root)), 'step')} consistent")
        return 1 if problems else 0
    if args.command == "field" and args.manifest:
        print(manifest_field(args.manifest, args.key))
        return 0
    steps = find_steps(root)
    if args.command == "list":
        print("\n".join(listing(steps)) if steps else f"no steps under {root}/steps")
        return 0
    if args.command == "offering":
        found = offering(steps, args.word)
        if not found:
            print(f"steps: no step offers {args.word}", file=sys.stderr)
            return 1
        print("\n".join(step.name for step in (found[-1:] if args.last else found)))
        return 0
    step = resolve(steps, args.step)
    if args.command == "field":
        print(manifest_field(step / "MANIFEST", args.key))
    elif args.command == "resolve":
        print(step.name)
    elif args.command == "prev":
        print(previous(steps, step).name)
    elif args.command == "forward":
        return forward(root, steps, step, args.base, args.dry_run)
    elif args.command == "diff":
        prev = previous(steps, step) if step != steps[0] else None
        return show_diff(root, prev, step, args.color)
    return 0


# Self-test: a three-step fixture in a throwaway git repository, driven through the CLI.

UTIL = "".join(f"int util_{i}(void) {{ return {i}; }}\n" for i in range(8))
KMAIN = "void kmain(void)\n{\n\tvga_init();\n\tbanner();\n\thalt();\n}\n"
SAME_IN_ALL = {"boot.S": "start:\n\tcall kmain\n"}
FIXTURE = {
    "steps/01-boot": {"MANIFEST": "title: Boot\nconsole: vga\nadds: boot.S kmain.c\n  util.c vga.c\n",
                      "kmain.c": KMAIN, "util.c": UTIL, "vga.c": "void vga_init(void) {}\n"},
    "steps/02-serial": {"MANIFEST": "# comment\ntitle: Serial\nconsole: serial\noffers: tcp-echo\n"
                                    "adds: serial.c\nchanges: kmain.c util.c\nremoves: vga.c\n",
                        "kmain.c": KMAIN.replace("vga", "serial"), "util.c": UTIL.replace("return 1;", "return 10;"),
                        "serial.c": "void serial_init(void) {}\n"},
    "steps/03-heap": {"MANIFEST": "title: Heap\nconsole: serial\noffers: http\n  tcp-echo\nadds: heap.c\n"
                                  "changes: util.c\nremoves:\n",
                      "kmain.c": KMAIN.replace("vga", "serial"),
                      "util.c": UTIL.replace("return 1;", "return 10;").replace("return 7;", "return 70;"),
                      "serial.c": "void serial_init(void) {}\n", "heap.c": "void *kmalloc(long n);\n"},
}


class Tally:
    def __init__(self):
        self.passed = self.failed = 0

    def expect(self, what, ok, detail=""):
        """Print one assertion; on failure also what the tool said, indented."""
        print(f"{'pass' if ok else 'FAIL'}: {what}")
        if not ok and detail.strip():
            print("    " + detail.strip().replace("\n", "\n    "))
        self.passed += bool(ok)
        self.failed += not ok


def make_fixture(parent):
    root = Path(tempfile.mkdtemp(dir=parent))
    (root / ".gitignore").write_text("*.o\n")
    for folder, files in FIXTURE.items():
        (root / folder).mkdir(parents=True)
        for name, text in {**SAME_IN_ALL, **files}.items():
            (root / folder / name).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=selftest", "-c", "user.email=selftest@localhost", "-c", "commit.gpgsign=false",
        "-c", "core.hooksPath=/dev/null", "commit", "-qm", "fixture")
    return root


def tool(root, *args):
    return subprocess.run([sys.executable, __file__, "--root", str(root), *args], capture_output=True, text=True)


def edit(path, old, new):
    path.write_text(path.read_text().replace(old, new, 1))


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_check(root, t):
    (root / "steps/03-heap/kmain.o").write_bytes(b"\x7fELF")
    r = tool(root, "check")
    t.expect("check passes on a consistent tree with ignored build output", r.returncode == 0
             and r.stdout.endswith("steps: 3 steps consistent\n"), r.stdout + r.stderr)
    copy = Path(shutil.copytree(root, root.with_name(root.name + "-nogit"), ignore=shutil.ignore_patterns(".git")))
    r = tool(copy, "check")
    t.expect("check passes outside git, skipping build output", r.returncode == 0, r.stdout + r.stderr)
    edit(root / "steps/02-serial/kmain.c", "banner", "banner_v2")
    r = tool(root, "check")
    t.expect("check fails naming kmain.c after an edit in step 02 only", r.returncode == 1
             and "steps/03-heap: kmain.c differs from steps/02-serial/kmain.c but the MANIFEST does not list "
                 "it under changes" in r.stdout and "make forward STEP=02" in r.stdout
             and r.stdout.endswith("steps: 1 problem\n"), r.stdout + r.stderr)


def test_forward(root, t):
    step2, step3 = root / "steps/02-serial", root / "steps/03-heap"
    edit(step2 / "kmain.c", "banner", "banner_v2")
    edit(step2 / "util.c", "return 0;", "return 100;")
    before = snapshot(step3)
    r = tool(root, "forward", "02", "--dry-run")
    t.expect("forward --dry-run reports but writes nothing", r.returncode == 0 and "kmain.c: replaced" in r.stdout
             and snapshot(step3) == before, r.stdout + r.stderr)
    r = tool(root, "forward", "02")
    t.expect("forward replaces step 03's identical copy of kmain.c", r.returncode == 0
             and (step3 / "kmain.c").read_text() == (step2 / "kmain.c").read_text(), r.stdout + r.stderr)
    util = (step3 / "util.c").read_text()
    t.expect("forward merges util.c, keeping step 03's own change",
             "return 100;" in util and "return 70;" in util, util)
    r = tool(root, "check")
    t.expect("check passes after forward", r.returncode == 0, r.stdout)
    after = snapshot(step3)
    r = tool(root, "forward", "02")
    t.expect("forward run twice changes nothing more", r.returncode == 0 and snapshot(step3) == after, r.stdout)


def test_conflict(root, t):
    edit(root / "steps/02-serial/util.c", "return 7;", "return 77;")
    r = tool(root, "forward", "02")
    util = (root / "steps/03-heap/util.c").read_text()
    t.expect("a conflicting forward exits 1, names util.c and writes conflict markers", r.returncode == 1
             and "steps/03-heap/util.c: CONFLICT" in r.stdout and "<<<<<<< steps/03-heap/util.c" in util
             and "return 77;" in util and "return 70;" in util, r.stdout + util)
    r = tool(root, "check")
    t.expect("check reports the unresolved conflict markers", r.returncode == 1
             and "steps/03-heap/util.c: unresolved conflict markers" in r.stdout, r.stdout)


def test_add_and_delete(root, t):
    (root / "steps/02-serial/new.h").write_text("#define NEW 1\n")
    (root / "steps/02-serial/serial.c").unlink()
    r = tool(root, "forward", "02")
    t.expect("forward copies a file added in step 02 into step 03", r.returncode == 0
             and (root / "steps/03-heap/new.h").is_file(), r.stdout + r.stderr)
    t.expect("forward deletes step 03's identical copy of a file deleted in step 02",
             not (root / "steps/03-heap/serial.c").exists(), r.stdout)


def test_chain(root, t):
    edit(root / "steps/01-boot/util.c", "return 3;", "return 33;")
    r = tool(root, "forward", "1")
    util2, util3 = ((root / f"steps/{s}/util.c").read_text() for s in ("02-serial", "03-heap"))
    t.expect("forward 01 merges the fix into steps 02 and 03, keeping their own changes", r.returncode == 0
             and all("return 33;" in u and "return 10;" in u for u in (util2, util3)) and "return 70;" in util3,
             r.stdout + r.stderr)


def test_resolve(root, t):
    forms = ("2", "02", "serial", "02-serial", "steps/02-serial", "steps/02-serial/")
    got = [tool(root, "resolve", form).stdout.strip() for form in forms]
    t.expect(f"resolve accepts {' '.join(forms)}", got == ["02-serial"] * len(forms), str(got))
    t.expect("resolve last is the highest step", tool(root, "resolve", "last").stdout == "03-heap\n")
    r = tool(root, "resolve", "nope")
    t.expect("resolve of an unknown step exits 2, lists the steps on stderr, prints nothing on stdout",
             r.returncode == 2 and r.stdout == "" and "  03  heap" in r.stderr, r.stdout + r.stderr)
    t.expect("prev 03 is 02-serial and prev 01 is an error", tool(root, "prev", "03").stdout == "02-serial\n"
             and tool(root, "prev", "01").returncode == 2)
    r = tool(root, "list")
    t.expect("list shows number, name and title", r.stdout.splitlines()
             == ["  01  boot    Boot", "  02  serial  Serial", "  03  heap    Heap"], r.stdout)


def test_diff(root, t):
    r = tool(root, "diff", "3")
    t.expect("diff 03 shows util.c's hunk between step paths", r.returncode == 0
             and "--- steps/02-serial/util.c\n+++ steps/03-heap/util.c\n" in r.stdout
             and "-int util_7(void) { return 7; }\n+int util_7(void) { return 70; }\n" in r.stdout, r.stdout + r.stderr)
    t.expect("diff 03 shows heap.c as new and leaves out the MANIFEST and same files",
             "+++ steps/03-heap/heap.c" in r.stdout and "MANIFEST" not in r.stdout
             and "kmain.c" not in r.stdout, r.stdout)
    r = tool(root, "diff", "1")
    added = [f"--- /dev/null\n+++ steps/01-boot/{name}\n" for name in ("boot.S", "kmain.c", "util.c", "vga.c")]
    t.expect("diff 01 shows every file as added", r.returncode == 0
             and all(text in r.stdout for text in added), r.stdout)
    t.expect("diff colours only with --color (stdout is not a terminal here)",
             "\x1b[" not in r.stdout and "\x1b[" in tool(root, "diff", "1", "--color").stdout)


def test_manifest_errors(root, t):
    (root / "steps/02-serial/MANIFEST").write_text("adds: serial.c\nchnages: kmain.c\nremoves: vga.c\n")
    edit(root / "steps/03-heap/MANIFEST", "changes: util.c", "changes: util.c boot.S")
    r = tool(root, "check")
    t.expect("check reports an unknown MANIFEST key", r.returncode == 1
             and "unknown key 'chnages'" in r.stdout, r.stdout)
    t.expect("check reports a missing title", "steps/02-serial/MANIFEST: missing 'title" in r.stdout, r.stdout)
    t.expect("check reports a file listed under changes that did not change", "steps/03-heap: the MANIFEST lists "
             "boot.S under changes but it is identical to steps/02-serial/boot.S" in r.stdout, r.stdout)


def test_field_and_offering(root, t):
    r = tool(root, "field", "adds", "1")
    t.expect("field joins continuation lines", r.returncode == 0
             and r.stdout == "boot.S kmain.c util.c vga.c\n", r.stdout + r.stderr)
    r = tool(root, "field", "offers", "--manifest", str(root / "steps/03-heap/MANIFEST"))
    t.expect("field --manifest reads that file", r.stdout == "http tcp-echo\n", r.stdout + r.stderr)
    got = [tool(root, "field", "smp", *where).stdout for where in
           (["02-serial"], ["--manifest", str(root / "no/such/MANIFEST")])]
    t.expect("field prints an empty line for a missing key or MANIFEST", got == ["\n", "\n"], str(got))
    r = tool(root, "field", "colsole", "2")
    t.expect("field of an unknown key exits 2", r.returncode == 2 and "no MANIFEST key 'colsole'" in r.stderr,
             r.stdout + r.stderr)
    r = tool(root, "offering", "tcp-echo")
    t.expect("offering lists the steps that offer a word", r.returncode == 0
             and r.stdout == "02-serial\n03-heap\n", r.stdout + r.stderr)
    t.expect("offering --last names only the last", tool(root, "offering", "tcp-echo", "--last").stdout
             == "03-heap\n")
    r = tool(root, "offering", "inference")
    t.expect("offering a word no step offers exits 1, printing nothing", r.returncode == 1 and r.stdout == "",
             r.stdout + r.stderr)
    r = tool(root, "offering", "tcp")
    t.expect("offering an unknown word exits 2", r.returncode == 2 and "not in OFFERS" in r.stderr,
             r.stdout + r.stderr)


def test_offers_errors(root, t):
    edit(root / "steps/02-serial/MANIFEST", "offers: tcp-echo", "offers: tcp-echo telnet")
    edit(root / "steps/03-heap/MANIFEST", "  tcp-echo\n", "")
    r = tool(root, "check")
    t.expect("check reports a word that is not in OFFERS", r.returncode == 1
             and "steps/02-serial/MANIFEST: offers: 1 unknown word (telnet)" in r.stdout, r.stdout)
    t.expect("check reports a step that no longer offers what the step before it did",
             "steps/03-heap/MANIFEST: offers: does not name tcp-echo, which steps/02-serial offers "
             "(a later step" in r.stdout, r.stdout)


def selftest(real_root):
    t = Tally()
    # Git hooks export these; left set, they would point the fixture's git at the real repository.
    for variable in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        os.environ.pop(variable, None)
    with tempfile.TemporaryDirectory() as parent:
        for scenario in (test_check, test_forward, test_conflict, test_add_and_delete, test_chain,
                         test_resolve, test_diff, test_manifest_errors, test_field_and_offering,
                         test_offers_errors):
            scenario(make_fixture(parent), t)
    if (real_root / "steps").is_dir():
        r = tool(real_root, "check")
        t.expect(f"check passes on the real tree {real_root}", r.returncode == 0, r.stdout + r.stderr)
    else:
        print(f"skip (not counted): {real_root}/steps does not exist, real tree not checked")
    print(f"{t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
