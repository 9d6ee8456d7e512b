"""shell: the kernel's serial shell, as the network tests (step 05 on) use it.

Typing into the shell (gradelib's send()), reading its `net`, `tcp` and `irq` counters and what
changed in them, and failing with QEMU's exit reason when the machine is gone.
"""
import re

from gradelib import fail


def boot_with_console(m, **boot_arguments):
    """m.boot(**boot_arguments) with COM1's input connected, so type_line() can type."""
    m.boot(serial_input=True, **boot_arguments)


def type_line(m, text):
    """Type one line into the kernel's serial console."""
    m.send(text + "\r")


COUNTER_LINE = r"((?:[a-z0-9_]+=\d+ ?)+)"


def parse_counters(text):
    return {key: int(value) for key, value in re.findall(r"([a-z0-9_]+)=(\d+)", text)}


def net_counters(m):
    """Type `net`; return its counters: the `net:` keys as printed, the e1000's as e1000.KEY."""
    type_line(m, "net")
    counters = parse_counters(m.expect(rf"^net: {COUNTER_LINE}$", timeout=10)[1])
    nic = parse_counters(m.expect(rf"^e1000: {COUNTER_LINE}$", timeout=10)[1])
    counters.update({f"e1000.{key}": value for key, value in nic.items()})
    return counters


def tcp_status(m):
    """Type `tcp`; return (counters, capacity). connections=N/M gives the count and capacity."""
    type_line(m, "tcp")
    line = m.expect(r"^tcp: connections=(\d+)/(\d+) " + COUNTER_LINE + "$", timeout=10)
    counters = parse_counters(line[3])
    counters["connections"] = int(line[1])
    return counters, int(line[2])


IRQ_LINE = r"^irq (\S+) vector (\d+) (\w+): (\d+)$"
CPU_LINE = r"^cpu (\d+): halted (\d+) ms, awake (\d+) ms$"


def irq_status(m):
    """Type `irq`; return {"lines": {name: count}, "spurious": n or None, "cpus": {cpu:
    (halted_ms, awake_ms)}}. Lines are keyed by the device's name (timer, serial, e1000), not by
    number, so a timer on another line (the local APIC's) still reads as "timer". Step 09,
    whose 8259s are masked, prints no `irq spurious` line."""
    type_line(m, "irq")
    first = m.expect(CPU_LINE, timeout=10)
    # The device lines come between the shell's echo of the command and the first CPU's line.
    before = m.output[:first.start()]
    block = before[before.rfind("\nirq\n") + 1:]
    counts = {match[3]: int(match[4]) for match in re.finditer(IRQ_LINE, block, re.MULTILINE)}
    spurious = re.search(r"^irq spurious: (\d+)$", block, re.MULTILINE)
    cpus = {int(first[1]): (int(first[2]), int(first[3]))}
    # Further CPUs' lines (step 09) follow at once; take those that are already in.
    for line in m.output[m.consumed:].split("\n")[:-1]:
        match = re.match(CPU_LINE, line)
        if not match:
            break
        cpus[int(match[1])] = (int(match[2]), int(match[3]))
    return {"lines": counts, "spurious": int(spurious[1]) if spurious else None, "cpus": cpus}


def counter_changes(before, after):
    """{key: after - before} for every counter that changed (a new key counts from 0)."""
    changes = {key: value - before.get(key, 0) for key, value in after.items()}
    return {key: delta for key, delta in changes.items() if delta}


def require_running(m, what):
    """Fail with QEMU's exit reason if it has exited (the kernel panicked, reset, crashed)."""
    m.lines()  # takes in pending serial output and notices an exit
    if m.exit_status is not None:
        fail(f"QEMU exited before {what}: {m.describe_exit()}")

