#!/usr/bin/python3
"""Write compile_commands.json, the compilation database of clangd and clang-tidy, for every step.

    compile_commands.py [--out FILE]      (default: compile_commands.json at the repository root)

Each step's .c and .S files get the command that builds them, with that step's own flags:
common/kernel.mk's CFLAGS and ASFLAGS after the step's optional flags.mk (step 08 turns on SSE).
The flags are asked of make (kernel.mk's print-flags), never copied here, so the database says
what the build does. The same header name is in every step folder; clangd gives a header the
flags of a source file beside it, so each step's headers get their own step's flags too.
"""
import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "common"))
from steps import find_steps  # noqa: E402  (common/ is not a package)


def step_flags(step):
    """{NAME: value} of kernel.mk's print-flags for one step folder."""
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "-f", "common/kernel.mk",
         f"STEP_DIR=steps/{step.name}", "print-flags"],
        cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"compile_commands: make print-flags for {step.name} failed:\n"
                         f"{result.stderr.strip()}")
    values = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name] = value.strip()
    for name in ("CC", "CFLAGS", "ASFLAGS", "SOURCES", "OUT"):
        if name not in values:
            raise SystemExit(f"compile_commands: kernel.mk's print-flags gave no {name} "
                             f"for {step.name}")
    return values


def entries(step):
    flags = step_flags(step)
    cc = shlex.split(flags["CC"])
    out = REPO / flags["OUT"] / "obj"
    for source in shlex.split(flags["SOURCES"]):
        path = REPO / source
        own = flags["CFLAGS"] if path.suffix == ".c" else flags["ASFLAGS"]
        obj = out / f"{path.name}.o"
        yield {"directory": str(REPO),
               "file": str(path),
               "output": str(obj),
               "arguments": [*cc, *shlex.split(own), "-c", str(path), "-o", str(obj)]}


def main(argv):
    parser = argparse.ArgumentParser(prog="compile_commands.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "compile_commands.json")
    args = parser.parse_args(argv)
    steps = find_steps(REPO)
    database = [entry for step in steps for entry in entries(step)]
    args.out.write_text(json.dumps(database, indent=1) + "\n")
    print(f"{args.out}: {len(database)} files of {len(steps)} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
