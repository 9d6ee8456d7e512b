"""Step 02: a serial console, kprintf, panic and CPU exception reports.

The kernel talks on COM1. Faults are requested on the kernel command line (fault=...); each must
produce an exception report and end with the panic exit (QEMU status 3), never a triple fault.
"""
import ast
import random
import re

from gradelib import check, exercise, test

GPRS = ("RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "RSP",
        "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15")
PAGE_FAULT = 14
MIN_PRINTF_CASES = 20


@test(5, "serial banner")
def serial_banner(m):
    """The first serial line is the banner; `ready` follows."""
    m.boot()
    m.expect(r"^ringzero \S+: booting$")
    check(re.match(r"ringzero \S+: booting$", m.lines()[0]),
          f"the banner is not the first serial line; the first is {m.lines()[0]!r}")
    m.expect(r"^ready$")


@test(5, "kernel command line echo")
def cmdline_echo(m):
    """`cmdline:` echoes exactly the command line GRUB was given (random words, so no kernel
    can print the expected text without reading it)."""
    cmdline = f"grader={random.getrandbits(64):016x} echo={random.randrange(10**9)}"
    m.boot(cmdline=cmdline)
    echoed = m.expect(r"^cmdline: ?(.*)$")[1]
    check(echoed == cmdline, f"booted with cmdline {cmdline!r}, the kernel echoed {echoed!r}")


@test(10, "printf battery")
def printf_battery(m):
    """Every `printf "<fmt>" (<args>) -> [<result>]` line must equal what C's printf prints.

    <args> may be a Python tuple literal or the C source of the arguments: integer suffixes
    (U, L, UL, ...), pointer casts like (void *) and char literals are understood.
    """
    m.boot(cmdline="test=printf")
    count = int(m.expect(r"^printf: (\d+) cases$")[1])
    cases = [line for line in m.lines() if line.startswith('printf "')]
    check(len(cases) == count, f"the kernel says {count} cases but printed {len(cases)}")
    check(count >= MIN_PRINTF_CASES, f"only {count} printf cases; at least {MIN_PRINTF_CASES}")
    wrong = [problem for problem in map(printf_case_problem, cases) if problem]
    check(not wrong, f"{len(wrong)} of {count} printf cases are wrong: " + "; ".join(wrong[:3]))


@test(5, "divide error report")
def divide_error(m):
    """fault=divide: exception 0 in trigger_divide_error, a backtrace from there to kmain."""
    m.boot(cmdline="fault=divide")
    report = exception_report(m, 0, "divide")
    require_function(m, report["RIP"], "trigger_divide_error", "RIP")
    require_backtrace(m, report, "trigger_divide_error")


@test(5, "page fault report (read)")
def page_fault_read(m):
    """fault=pagefault:ADDR, ADDR random and unmapped: #PF with CR2 = ADDR, P=0, W=0."""
    address = random_unmapped_address()
    m.boot(cmdline=f"fault=pagefault:{address:#x}")
    report = exception_report(m, PAGE_FAULT, "page fault")
    require_page_fault(report, address, write=False)
    require_function(m, report["RIP"], "trigger_page_fault", "RIP")


@test(5, "page fault report (write)")
def page_fault_write(m):
    """fault=pagefault-write:ADDR: as the read fault, but the error code has W=1."""
    address = random_unmapped_address()
    m.boot(cmdline=f"fault=pagefault-write:{address:#x}")
    report = exception_report(m, PAGE_FAULT, "page fault")
    require_page_fault(report, address, write=True)
    require_function(m, report["RIP"], "trigger_page_fault", "RIP")


@test(3, "breakpoint report")
def breakpoint_report(m):
    m.boot(cmdline="fault=breakpoint")
    exception_report(m, 3, "breakpoint")


@test(3, "invalid opcode report")
def invalid_opcode_report(m):
    m.boot(cmdline="fault=invalid-opcode")
    exception_report(m, 6, "invalid opcode")


# ---------------------------------------------------------------------------------------------
# Exception reports

def exception_report(m, vector, name):
    """Wait for the report of exception `vector` and the panic exit; return its fields.

    The result maps register names to values ("RIP", "CR2", all 16 GPRs), plus "error code"
    and "frames" (the backtrace's addresses, innermost first).
    """
    header = m.expect(r"^EXCEPTION (\d+) (.*)$")
    check(int(header[1]) == vector and name in header[2].lower(),
          f"expected exception {vector} ({name}), the kernel reported {header[0]!r}")
    m.expect_exit(3)
    text = m.output[header.end():]
    report = {register: int(value, 16) for register, value in
              re.findall(r"\b([A-Z][A-Z0-9]*) ?=(?:0x)?([0-9a-fA-F]+)\b", text)}
    missing = [register for register in GPRS + ("RIP",) if register not in report]
    check(not missing, f"the report does not show {', '.join(missing)}")
    error_code = re.search(r"error code (?:0x)?([0-9a-fA-F]+)", header[2])
    report["error code"] = int(error_code[1], 16) if error_code else None
    frames = re.findall(r"^\s*#\d+\s+(?:0x)?([0-9a-fA-F]+)\b *(\S*)", text, re.MULTILINE)
    report["frames"] = [(int(address, 16), symbol) for address, symbol in frames]
    return report


def require_function(m, address, expected, what):
    """address lies in a function whose name starts with `expected` (nm on kernel.elf)."""
    found = m.run.symbolize(address)
    check(found and found[0].startswith(expected),
          f"{what} {address:#x} is in {describe_symbol(found)}, not in {expected}")


def require_backtrace(m, report, innermost):
    """The backtrace starts in `innermost`, reaches kmain, and every frame is kernel code.

    Frames after #0 are return addresses, looked up one byte earlier so a call at a
    function's very end still counts for its caller. A name the kernel prints next to an
    address must agree with nm.
    """
    frames = report["frames"]
    check(len(frames) >= 2, f"the backtrace has {len(frames)} frames; it must reach kmain")
    functions = []
    for depth, (address, printed) in enumerate(frames):
        found = m.run.symbolize(address - (depth > 0))
        check(found, f"backtrace frame #{depth} {address:#x} is not in any kernel function")
        printed_name = printed.split("+")[0]
        check(not printed_name or printed_name == found[0],
              f"frame #{depth} says {printed}, but nm puts {address:#x} in {found[0]}")
        functions.append(found[0])
    check(functions[0] == innermost, f"frame #0 is in {functions[0]}, not {innermost}")
    check("kmain" in functions[1:], f"the backtrace never reaches kmain: {' <- '.join(functions)}")


def describe_symbol(found):
    return f"{found[0]}+{found[1]:#x}" if found else "no kernel function"


def random_unmapped_address():
    """A random canonical address between 512 GiB and 128 TiB, page-aligned plus a random offset.

    Below 512 GiB a kernel may identity-map RAM (step 03 maps all of it); from 128 TiB up to
    the top of the lower half's 2^47, an address would be non-canonical (#GP, not #PF).
    """
    page = random.randrange((512 << 30) >> 12, (128 << 40) >> 12)
    return (page << 12) + random.randrange(1, 4096)


def require_page_fault(report, address, write):
    check("CR2" in report, "the page fault report does not show CR2")
    check(report["CR2"] == address, f"CR2={report['CR2']:#x}, expected the faulting {address:#x}")
    code = report["error code"]
    check(code is not None, "the report does not show the error code")
    check(code & 1 == 0, f"error code {code:#x} has P=1, but the page was not present")
    check(bool(code & 2) == write,
          f"error code {code:#x} has W={code >> 1 & 1}, expected W={int(write)}")


# ---------------------------------------------------------------------------------------------
# printf

CASE = re.compile(r'^printf "(?P<format>.*?)" (?P<args>\(.*\)) -> \[(?P<result>.*)\]$')
CONVERSION = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?"
                        r"(?P<length>hh|h|ll|l|z|j|t)?(?P<conversion>[diouxXcsp%])")
C_CAST = re.compile(r"\(\s*(?:(?:const|unsigned|signed|struct)\s+)*[A-Za-z_]\w*"
                    r"(?:\s+(?:long|int|char))*\s*\**\s*\)(?=\s*[\w'\"(-])")
C_INTEGER_SUFFIX = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlLzZ]+\b")
LENGTH_BITS = {None: 32, "hh": 8, "h": 16, "l": 64, "ll": 64, "z": 64, "j": 64, "t": 64}


def printf_case_problem(line):
    """None if the case line's result is right, else what is wrong with it."""
    case = CASE.match(line)
    if not case:
        return f"cannot parse {line!r}"
    try:
        expected = c_format(case["format"], parse_arguments(case["args"]))
    except (ValueError, SyntaxError, TypeError, IndexError) as error:
        return f"cannot recompute {line!r}: {error}"
    if case["result"] != expected:
        return (f'printf "{case["format"]}" {case["args"]} gave [{case["result"]}], '
                f"expected [{expected}]")
    return None


def parse_arguments(text):
    """The printed arguments as a tuple of Python values (ints, strings)."""
    text = C_INTEGER_SUFFIX.sub(r"\1", C_CAST.sub("", text))
    value = evaluate_literal(ast.parse(text, mode="eval").body)
    return value if isinstance(value, tuple) else (value,)


def evaluate_literal(node):
    """A constant expression: literals, tuples, unary and binary + - * | << >>."""
    binary = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
              ast.Mult: lambda a, b: a * b, ast.BitOr: lambda a, b: a | b,
              ast.LShift: lambda a, b: a << b, ast.RShift: lambda a, b: a >> b}
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        return tuple(map(evaluate_literal, node.elts))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Invert)):
        value = evaluate_literal(node.operand)
        return {ast.USub: -value, ast.UAdd: value, ast.Invert: ~value}[type(node.op)]
    if isinstance(node, ast.BinOp) and type(node.op) in binary:
        return binary[type(node.op)](evaluate_literal(node.left), evaluate_literal(node.right))
    raise ValueError(f"not a constant: {ast.unparse(node)}")


def c_format(format, args):
    """What C's printf(format, args...) prints, with the kernel's conventions (design notes):
    no length modifier means 32-bit int, l/ll/z/j/t mean 64-bit, %p is 0x and 16 hex digits.
    """
    args = list(args)
    pieces, position = [], 0
    for spec in CONVERSION.finditer(format):
        pieces.append(format[position:spec.start()])
        position = spec.end()
        if spec["conversion"] == "%":
            pieces.append("%")
            continue
        width = args.pop(0) if spec["width"] == "*" else spec["width"]
        precision = args.pop(0) if spec["precision"] == "*" else spec["precision"]
        pieces.append(format_one(spec["flags"], width, precision, spec["length"],
                                 spec["conversion"], args.pop(0)))
    pieces.append(format[position:])
    if args:
        raise ValueError(f"{len(args)} arguments left over")
    return "".join(pieces)


def format_one(flags, width, precision, length, conversion, value):
    """One conversion, by Python's % operator where it agrees with C."""
    width = int(width) if width is not None else None
    if isinstance(width, int) and width < 0:  # C: a negative * width means left-justify
        flags, width = flags + "-", -width
    precision = None if precision is None else int(precision or 0)
    if conversion == "p":
        return pad(f"0x{value % 2**64:016x}", flags, width)
    if conversion == "s":
        return pad(("(null)" if value is None else value)[:precision], flags, width)
    if conversion == "c":
        return pad(chr(value) if isinstance(value, int) else value, flags, width)
    if isinstance(value, str):  # a C char literal used as a number
        value = ord(value)
    bits = LENGTH_BITS[length]
    value %= 2**bits
    if conversion in "di":
        value -= 2**bits if value >= 2**(bits - 1) else 0
    else:
        flags = flags.replace("+", "").replace(" ", "")  # C ignores them for unsigned
    if precision == 0 and value == 0:  # C prints no digits at all here; Python prints "0"
        sign = "+" if "+" in flags else " " if " " in flags else ""
        return pad(sign + ("0" if conversion == "o" and "#" in flags else ""), flags, width)
    if precision is not None:
        flags = flags.replace("0", "")  # C ignores the 0 flag when a precision is given
    if "#" in flags and (conversion == "o" or value == 0):
        # C's %#o only forces a leading 0 (Python writes 0o); C's %#x of 0 has no 0x.
        flags = flags.replace("#", "")
        if conversion == "o" and value:
            precision = max(precision or 0, len(f"{value:o}") + 1)
    spec = "%" + flags + (str(width) if width else "") + \
        (f".{precision}" if precision is not None else "") + conversion.replace("u", "d")
    return spec % value


def pad(text, flags, width):
    if not width:
        return text
    return text.ljust(width) if "-" in flags else text.rjust(width)


# ---------------------------------------------------------------------------------------------
# Optional checks of the chapter's exercises: `make step 2 grade T=exercise-2.1`. Never scored.

@exercise("2.1", "receive: the kernel echoes what arrives on the serial port")
def exercise_receive(m):
    """After `ready`, bytes typed into COM1 come back on it."""
    m.boot(serial_input=True)
    m.expect(r"^ready$")
    m.send("abc\n")
    m.expect(r"abc$")


@exercise("2.3", "survive a breakpoint: fault=breakpoint-continue returns from int3")
def exercise_breakpoint_continue(m):
    """One `breakpoint at 0x…, continuing` line whose address is in trigger_breakpoint (just
    after its int3), then `ready`, and the kernel keeps running."""
    m.boot(cmdline="fault=breakpoint-continue")
    m.expect(r"^triggering fault: breakpoint-continue$")
    line = m.expect(r"^breakpoint at 0x([0-9a-fA-F]+), continuing$")
    where = m.run.symbolize(int(line[1], 16))
    check(where and where[0] == "trigger_breakpoint",
          f"the address {line[1]} is in {where[0] if where else 'no function'}, "
          "not just after trigger_breakpoint's int3")
    m.expect(r"^ready$")
    m.expect_running(2)
