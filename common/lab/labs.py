"""labs: the lab of each step, and the stubs that take its items out.

A step's lab is the list in steps/NN-name/lab.toml: the functions a student writes, in the
order a student would write them. Each item is a whole function (a C function, or in a .S file
the code from its label to its first `ret`) and says where the book explains it, how hard it is,
which tests check it and what hints a student gets when those tests fail:

    [[item]]
    function = "insert_free"
    file = "heap.c"
    section = "The heap"          # a heading of the step's chapter (its start is enough)
    task = "Put a block back on the address-ordered free list, merging it with its neighbours"
    difficulty = "moderate"       # easy, moderate or hard
    minutes = 60
    tests = ["heap_selftest"]     # names of the step's tests (grade.py --list)
    hints = ["...", "..."]

A stub keeps the function's comment and signature and replaces its body with a call to
lab_missing() (common/lab/lab.h), which prints `lab 03: write insert_free() (book 3.2.5)` and
stops the machine. Stubs compile under -Werror: parameters and static helpers that only the
missing body used are marked used with `(void)name;`.
"""
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LAB_FILE = "lab.toml"
# What the stubs need, copied into a stubbed step: lab.h for C, lab.S for assembly.
SUPPORT = ("lab.h", "lab.S")
DIFFICULTIES = ("easy", "moderate", "hard")
UNUSED = re.compile(r"[‘'](\w+)[’'] defined but not used")


class LabError(Exception):
    """A lab list that does not match the tree; the message says what."""


@dataclass
class Item:
    step: str            # "03-heap"
    function: str
    file: str
    section: str
    task: str
    difficulty: str
    minutes: int
    tests: list
    hints: list
    number: str = ""     # the book section, "3.2.5", filled in from the chapter

    @property
    def step_number(self):
        return self.step[:2]

    @property
    def message(self):
        return f"lab {self.step_number}: write {self.function}() (book {self.number})"


@dataclass
class Lab:
    step: str
    items: list = field(default_factory=list)

    @property
    def files(self):
        """The files a student edits: those that hold an item."""
        return sorted({item.file for item in self.items})


def load(step_dir, book_dir=None):
    """The lab of a step folder, with book section numbers; None if it has no lab.toml."""
    step_dir = Path(step_dir)
    path = step_dir / LAB_FILE
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise LabError(f"{path}: {error}") from None
    step = step_name(step_dir)
    lab = Lab(step)
    for entry in data.get("item", []):
        try:
            item = Item(step=step, **entry)
        except TypeError as error:
            raise LabError(f"{path}: item {entry.get('function', '?')}: {error}") from None
        if item.difficulty not in DIFFICULTIES:
            raise LabError(f"{path}: {item.function}: difficulty must be one of "
                           f"{', '.join(DIFFICULTIES)}")
        lab.items.append(item)
    numbers = section_numbers(chapter_of(step, book_dir or REPO / "book"))
    for item in lab.items:
        item.number = find_section(numbers, item, path)
    return lab


def step_name(step_dir):
    """The step's name from its MANIFEST-bearing folder: 03-heap, even for a copy elsewhere."""
    name = Path(step_dir).resolve().name
    if re.match(r"^\d\d-", name):
        return name
    raise LabError(f"{step_dir}: a step folder is named NN-name")


def chapter_of(step, book_dir):
    chapters = sorted(Path(book_dir).glob(f"{step[:2]}-*.md"))
    if not chapters:
        raise LabError(f"no chapter {step[:2]}-*.md in {book_dir}")
    return chapters[0]


def section_numbers(chapter):
    """[(number, heading text)] of a chapter, numbered as pandoc --number-sections does.

    The chapter of step N is chapter N: the introduction before it is unnumbered.
    """
    counters = [int(chapter.name[:2]), 0, 0, 0]
    numbers, fence = [], None
    for line in chapter.read_text().splitlines():
        opening = re.match(r"^(```|~~~)", line)
        if opening:
            fence = None if fence == opening[1] else fence or opening[1]
            continue
        heading = re.match(r"^(#{1,4}) (.*?)\s*(\{[^}]*\})?\s*$", line)
        if fence or not heading or (heading[3] and ".unnumbered" in heading[3]):
            continue
        level = len(heading[1])
        if level > 1:
            counters[level - 1] += 1
            counters[level:] = [0] * (4 - level)
        numbers.append((".".join(map(str, counters[:level])), heading[2]))
    return numbers


def find_section(numbers, item, path):
    for number, text in numbers:
        if text.startswith(item.section):
            return number
    raise LabError(f"{path}: {item.function}: no heading starting {item.section!r} in "
                   f"chapter {item.step[:2]}")


# ---------------------------------------------------------------------------------------------
# Finding a function and replacing its body.

def locate_c(lines, name):
    """(first signature line, the `{` line, the closing `}` line) of a C function definition.

    The tree's style makes this simple: a definition starts in column 0, its opening brace and
    its closing brace stand alone in column 0.
    """
    call = re.compile(rf"(^|[\s*]){re.escape(name)}\(")
    for start, line in enumerate(lines):
        if not line or line[0] in " \t#/*}" or not call.search(line) or line.rstrip().endswith(";"):
            continue
        opening = start
        while opening < len(lines) and lines[opening] != "{":
            if lines[opening].rstrip().endswith(";"):
                break
            opening += 1
        if opening == len(lines) or lines[opening] != "{":
            continue
        # A return type on a line of its own (`static lanes4_t` above `four_rows(...)`).
        if line.startswith(name) and start and lines[start - 1] and lines[start - 1][0] not in " \t#/*}":
            start -= 1
        closing = lines.index("}", opening)
        return start, opening, closing
    raise LabError(f"no definition of {name}() found")


def parameters(signature, name):
    """The parameter names of a C signature ("void" and "..." give none)."""
    inside = signature[signature.index(name + "(") + len(name) + 1:signature.rindex(")")]
    names, depth, current = [], 0, ""
    for c in inside + ",":
        if c == "," and depth == 0:
            names.append(current.strip())
            current = ""
            continue
        depth += c in "([" and 1 or (c in ")]" and -1 or 0)
        current += c
    result = []
    for declaration in names:
        if declaration in ("", "void", "..."):
            continue
        pointer = re.search(r"\(\s*\*\s*(\w+)\s*\)", declaration)
        result.append(pointer[1] if pointer else re.findall(r"\w+", re.sub(r"\[.*?\]", "", declaration))[-1])
    return result


def stub_c(text, item, used=()):
    lines = text.split("\n")
    start, opening, closing = locate_c(lines, item.function)
    signature = " ".join(lines[start:opening])
    body = [f"    (void){name};" for name in [*parameters(signature, item.function), *used]]
    body.append(f'    lab_missing("{item.message}");')
    lines[opening + 1:closing] = body
    return include_lab_h("\n".join(lines))


def include_lab_h(text):
    if '#include "lab.h"' in text:
        return text
    lines = text.split("\n")
    anchor = max((i for i, line in enumerate(lines) if line.startswith(("#include", "#pragma once"))),
                 default=None)
    if anchor is None:
        raise LabError("a file with a lab item has no #include to put lab.h beside")
    lines.insert(anchor + 1, '#include "lab.h"')
    return "\n".join(lines)


def stub_asm(text, item):
    """Replace an assembly routine, from its label to its first `ret`, by a jump to
    lab_missing32 (lab.S) with the item's message."""
    lines = text.split("\n")
    try:
        start = lines.index(f"{item.function}:")
        end = next(i for i in range(start, len(lines)) if lines[i].strip() == "ret")
    except (ValueError, StopIteration):
        raise LabError(f"no routine {item.function}: ... ret found") from None
    label = f"lab_message_{item.function}"
    lines[start + 1:end + 1] = [f"    mov ${label}, %esi", "    jmp lab_missing32",
                                "    .pushsection .rodata", f"{label}:",
                                f'    .asciz "{item.message}"', "    .popsection"]
    return "\n".join(lines)


def defines(path, item):
    """Whether the file at path still holds the item's function (a later step may move it)."""
    if not path.is_file():
        return False
    try:
        stub_text(path.read_text(), item)
    except LabError:
        return False
    return True


def stub_text(text, item, used=()):
    return stub_asm(text, item) if item.file.endswith(".S") else stub_c(text, item, used)


# ---------------------------------------------------------------------------------------------
# Writing a stubbed copy of a step.

def write_stubbed(source, out, items, build_dir):
    """Copy the step folder source to out with the given items stubbed; check that it builds.

    A static helper that only a stubbed body called would stop the build under -Werror
    ("defined but not used"): such names are found by compiling and marked used in the stub.
    """
    source, out = Path(source), Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(source, out, ignore=shutil.ignore_patterns(LAB_FILE))
    for name in SUPPORT:
        shutil.copy(HERE / name, out / name)
    by_file = {}
    for item in items:
        by_file.setdefault(item.file, []).append(item)
    for name, file_items in by_file.items():
        stub_file(source / name, out / name, file_items, out, build_dir)
    if not any(item.file.endswith(".S") for item in items):
        (out / "lab.S").unlink()
    return out


def stub_file(original, target, items, out, build_dir):
    used = {item.function: [] for item in items}
    text = original.read_text()
    for _ in range(8):
        stubbed = text
        for item in items:
            stubbed = stub_text(stubbed, item, used[item.function])
        target.write_text(stubbed)
        if target.suffix != ".c":
            return
        unused = compile_errors_unused(out, target.name, build_dir)
        if not unused:
            return
        for name in unused:
            owner = next((item for item in items if name in original_body(text, item)), items[0])
            used[owner.function].append(name)
    raise LabError(f"{target}: the stubs do not compile without warnings")


def original_body(text, item):
    lines = text.split("\n")
    _, opening, closing = locate_c(lines, item.function)
    return "\n".join(lines[opening:closing])


def compile_errors_unused(step_dir, file_name, build_dir):
    """Compile one file of step_dir as the kernel build does; the statics it reports unused.

    Any other compiler error is a LabError: a stub must compile."""
    obj = f"{build_dir}/obj/{file_name}.o"
    result = subprocess.run(["make", "-s", "-f", "common/kernel.mk", f"STEP_DIR={step_dir}",
                             f"OUT={build_dir}", obj], cwd=REPO, capture_output=True, text=True)
    if result.returncode == 0:
        return []
    unused = UNUSED.findall(result.stderr)
    if not unused:
        raise LabError(f"{step_dir}/{file_name} does not compile:\n{result.stderr.strip()}")
    return sorted(set(unused))


def find_lab_steps(names=()):
    """The step folders of this tree that have a lab, or those named (03, 3 or 03-heap)."""
    found = sorted(p.parent for p in (REPO / "steps").glob(f"*/{LAB_FILE}"))
    if not names:
        return found
    wanted = []
    for name in names:
        match = [s for s in found
                 if s.name == name or (name.isdigit() and s.name[:2] == f"{int(name):02d}")]
        if not match:
            raise LabError(f"no step with a lab named {name!r}")
        wanted += match
    return wanted
