#!/usr/bin/python3
"""Build the model's training text from Debian's `fortunes` package.

A fortune file is plain text in which a line holding only `%` ends each
fortune (strfile's format; the .dat files beside them are indexes we do not
need). We read every plain-text file in sorted order, clean each fortune up
and deal them out: every 20th fortune goes to validation, the rest to
training. The same package version always gives the same two files.

    corpus.py [--source DIR] [--out DIR]

writes OUT/train.txt and OUT/val.txt, again in fortune format, so a person
can read them and tokenizer.py/train.py can split them the same way.
"""
import argparse
import os
import re
import sys

SOURCE = "/usr/share/games/fortunes"
VALIDATION_EVERY = 20

# Pictures, not language: a small model would waste its capacity on them.
SKIPPED_FILES = {"ascii-art"}

OVERSTRIKE = re.compile(r"[^\n\x08]\x08")
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def fortune_files(source):
    """The plain-text fortune files: not the .dat indexes, not the .u8 links."""
    names = []
    for name in sorted(os.listdir(source)):
        path = os.path.join(source, name)
        if "." in name or name in SKIPPED_FILES or os.path.islink(path):
            continue
        if os.path.isfile(path):
            names.append(path)
    return names


def split_fortunes(text):
    fortune, lines = [], []
    for line in text.split("\n"):
        if line == "%":
            fortune.append("\n".join(lines))
            lines = []
        else:
            lines.append(line)
    fortune.append("\n".join(lines))
    return fortune


def clean(fortune):
    """Plain text a terminal would show: no overstrikes, tabs, bells or C1 codes."""
    # Old fortunes underline or embolden with "_\bX"; repeat for "___\b\b\bword".
    while True:
        stripped = OVERSTRIKE.sub("", fortune)
        if stripped == fortune:
            break
        fortune = stripped
    lines = [CONTROL.sub("", line.expandtabs(8)).rstrip() for line in fortune.split("\n")]
    return "\n".join(lines).strip("\n")


def read_fortunes(source):
    fortunes = []
    for path in fortune_files(source):
        with open(path, "rb") as f:
            # A few files hold stray Latin-1 bytes; keep whatever decodes.
            text = f.read().decode("utf-8", errors="replace").replace("\ufffd", "")
        for fortune in split_fortunes(text):
            fortune = clean(fortune)
            if fortune:
                fortunes.append(fortune)
    return fortunes


def write_fortunes(path, fortunes):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for fortune in fortunes:
            f.write(fortune + "\n%\n")


def read_fortune_file(path):
    """Read train.txt or val.txt back: the fortunes, in order."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [fortune for fortune in split_fortunes(text) if fortune]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default=SOURCE)
    parser.add_argument("--out", default="build/model")
    args = parser.parse_args()
    if not os.path.isdir(args.source):
        sys.exit(f"corpus: {args.source} is missing (apt-get install fortunes)")
    fortunes = read_fortunes(args.source)
    train = [f for i, f in enumerate(fortunes) if i % VALIDATION_EVERY != VALIDATION_EVERY - 1]
    val = [f for i, f in enumerate(fortunes) if i % VALIDATION_EVERY == VALIDATION_EVERY - 1]
    os.makedirs(args.out, exist_ok=True)
    write_fortunes(os.path.join(args.out, "train.txt"), train)
    write_fortunes(os.path.join(args.out, "val.txt"), val)
    for name, part in (("train", train), ("val", val)):
        chars = sum(len(f) for f in part)
        print(f"corpus: {name}: {len(part)} fortunes, {chars} characters")


if __name__ == "__main__":
    main()
