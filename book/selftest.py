#!/usr/bin/python3
"""Self-test of the book build, on a two-step fixture tree in a temporary directory.

Proves that the directives pull exactly the right code from the tree, that a correct
book builds, and that the build fails, naming chapter and reference, on every kind of
broken reference and on a changed file the chapter never mentions.
Ends with "N passed, N failed"; exits 1 if any test failed.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.dont_write_bytecode = True  # importing build must not leave __pycache__ in book/
import build  # noqa: E402

FIXTURE = {
    "steps/01-one/MANIFEST": "title: one\nadds: a.c keep.h start.S\n",
    "steps/01-one/keep.h": "int add_one(int x);\n",
    "steps/01-one/a.c": """#include "keep.h"

static int twice(int x);

/* Adds one.
 * The caller checks for overflow. */
int add_one(int x)
{
\treturn x + 1;
}

// Doubles.
__attribute__((noinline))
static int twice(int x)
{
\treturn 2 * x;
}
""",
    "steps/01-one/start.S": ".globl start\nstart:\n\tmovl $1, %eax\n\thlt\nafter:\n\tret\n",
    "steps/02-two/MANIFEST": "title: two\nadds: new.c\nchanges: a.c\nremoves: start.S\n",
    "steps/02-two/keep.h": "int add_one(int x);\n",
    "steps/02-two/a.c": "#include \"keep.h\"\n\nint add_one(int x)\n{\n\treturn x + 2;\n}\n",
    "steps/02-two/new.c": "int fresh;\n",
    "book/diagrams/flow.dot": "digraph flow { a -> b; }\n",
    "book/00-intro.md": "# Introduction {.unnumbered}\n\n![The flow](diagrams/flow.dot)\n",
    "book/01-one.md": """# One

The header keep.h declares what a.c defines:

```{.c include="steps/01-one/a.c" function="add_one"}
```

```{.c include="steps/01-one/a.c" function="twice"}
```

Execution begins in start.S:

```{.asm include="steps/01-one/start.S" lines="/^start:/,/^\\s*hlt/"}
```

```{.c include="steps/01-one/keep.h"}
```

```{.diff stepdiff="01-one"}
```
""",
    "book/02-two.md": """# Two

This step adds new.c, drops start.S and changes a.c:

```{.diff stepdiff="02-two" file="a.c"}
```

```{.diff stepdiff="02-two"}
```
""",
}

EXPECTED_BLOCKS = [
    "/* Adds one.\n * The caller checks for overflow. */\nint add_one(int x)\n{\n\treturn x + 1;\n}",
    "// Doubles.\n__attribute__((noinline))\nstatic int twice(int x)\n{\n\treturn 2 * x;\n}",
    "start:\n\tmovl $1, %eax\n\thlt",
    "int add_one(int x);",
]


def make_fixture(directory):
    for name, text in FIXTURE.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def run_build(root, *args):
    command = [sys.executable, str(build.BOOK_DIR / "build.py"), "--root", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True)


def code_blocks(root, chapter):
    """The code blocks of a chapter after the filter: [(classes, text)]."""
    result = build.pandoc(root, [chapter], "--to", "json")
    assert result.returncode == 0, result.stderr
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("t") == "CodeBlock":
                found.append((node["c"][0][1], node["c"][1]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(result.stdout)["blocks"])
    return found


def test_includes_exact_regions(root):
    blocks = code_blocks(root, "book/01-one.md")
    assert [text for _, text in blocks[:-1]] == EXPECTED_BLOCKS, blocks
    for name in ("a.c", "keep.h", "start.S"):
        assert "--- /dev/null\n+++ steps/01-one/" + name in blocks[-1][1], blocks[-1]
    assert blocks[2][0] == ["gnuassembler"], blocks[2][0]


def test_stepdiff(root):
    one_file, whole = [text for _, text in code_blocks(root, "book/02-two.md")]
    assert one_file.startswith("--- steps/01-one/a.c\n+++ steps/02-two/a.c\n"), one_file
    assert "-\treturn x + 1;" in one_file and "+\treturn x + 2;" in one_file, one_file
    for header in ("+++ steps/02-two/new.c", "--- steps/01-one/start.S\n+++ /dev/null"):
        assert header in whole, header
    assert "steps/02-two/keep.h" not in whole and "MANIFEST" not in whole, whole


def test_clean_tree_passes_check(root):
    result = run_build(root, "--check")
    assert result.returncode == 0, result.stderr


def test_build_writes_html_and_epub(root):
    result = run_build(root)
    assert result.returncode == 0, result.stderr
    out = root / "build/book"
    names = ["index.html", "01-one.html", "02-two.html", "ringzero.epub"]
    assert result.stdout.split() == [str(out / n) for n in names], result.stdout
    intro, one, two = [(out / n).read_text() for n in names[:3]]
    assert (out / "diagrams/flow.svg").read_text().startswith("<?xml"), "diagram not written"
    assert (out / "book.css").is_file()
    for page, fragment in [(intro, 'src="diagrams/flow.svg"'), (one, 'class="sourceCode gnuassembler"'),
                           (two, "return x + 2;"), (one, 'id="sidebar"'),
                           (one, 'rel="prev" href="index.html"'), (one, 'rel="next" href="02-two.html"'),
                           (two, 'href="01-one.html"'),
                           (one, '<h1 data-number="1" id="one">'),
                           (one, '<span class="dv">$1</span>'), (one, '<span class="va">%eax</span>')]:
        assert fragment in page, fragment
    assert 'rel="next"' not in two and 'rel="prev"' not in intro
    epub = zipfile.ZipFile(out / "ringzero.epub").namelist()
    assert any(n.endswith(".svg") for n in epub), epub


def test_step_and_section_mentions_are_links(root):
    replace_in(root / "book/01-one.md", "Execution begins", "## Starting\n\nExecution begins")
    replace_in(root / "book/02-two.md", "This step adds", "Unlike step 1 (see section 1.1 and Step 2), this step adds")
    result = run_build(root)
    assert result.returncode == 0, result.stderr
    two = " ".join((root / "build/book/02-two.html").read_text().split())
    for fragment in ('<a href="01-one.html" class="xref">step 1</a>',
                     '<a href="01-one.html#starting" class="xref">section 1.1</a>', "and Step 2)"):
        assert fragment in two, fragment
    assert "Figure 1." in (root / "build/book/index.html").read_text()


def test_glossary_is_a_page(root):
    (root / "book/glossary.md").write_text("# Glossary {.unnumbered}\n\nkernel\n:   the program.\n")
    result = run_build(root)
    assert result.returncode == 0, result.stderr
    out = root / "build/book"
    assert result.stdout.split()[-2:] == [str(out / "glossary.html"), str(out / "ringzero.epub")]
    assert 'rel="next" href="glossary.html"' in (out / "02-two.html").read_text()


def test_chapter_of_a_future_step_is_skipped(root):
    (root / "book/03-three.md").write_text("# Three\n\n```{.c include=\"steps/03-three/x.c\"}\n```\n")
    result = run_build(root, "--check")
    assert result.returncode == 0, result.stderr
    assert "skipping book/03-three.md" in result.stdout, result.stdout


def replace_in(path, old, new):
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def failing(mutate, *expected):
    """A test that breaks the fixture with `mutate` and expects --check to fail saying `expected`."""
    def test(root):
        mutate(root)
        result = run_build(root, "--check")
        assert result.returncode != 0, "check passed on a broken tree"
        for fragment in expected:
            assert fragment in result.stderr, (fragment, result.stderr)
    return test


FAILURES = {
    "missing file": failing(
        lambda r: replace_in(r / "book/01-one.md", "01-one/keep.h", "01-one/gone.h"),
        'book/01-one.md: include="steps/01-one/gone.h": no such file'),
    "path outside the tree": failing(
        lambda r: replace_in(r / "book/01-one.md", '"steps/01-one/keep.h"', '"../01-one/keep.h"'),
        'book/01-one.md: include="../01-one/keep.h": paths are relative to the repository root'),
    "missing function": failing(
        lambda r: replace_in(r / "book/01-one.md", '"add_one"', '"add_two"'),
        "book/01-one.md", 'function="add_two"', "no definition of function add_two"),
    "prototype only": failing(
        lambda r: replace_in(r / "book/01-one.md", 'keep.h"}', 'keep.h" function="add_one"}'),
        "book/01-one.md", "no definition of function add_one"),
    "regex matches nothing": failing(
        lambda r: replace_in(r / "book/01-one.md", "hlt/", "iret/"),
        "book/01-one.md", r'lines="/^start:/,/^\s*iret/"', "no line matches"),
    "missing step": failing(
        lambda r: replace_in(r / "book/02-two.md", 'stepdiff="02-two"}', 'stepdiff="02-too"}'),
        'book/02-two.md: stepdiff="02-too": no step steps/02-too'),
    "diff of a file in neither step": failing(
        lambda r: replace_in(r / "book/02-two.md", 'file="a.c"', 'file="b.c"'),
        'book/02-two.md: stepdiff="02-two" file="b.c": b.c is in neither step'),
    "diff of an unchanged file": failing(
        lambda r: replace_in(r / "book/02-two.md", 'file="a.c"', 'file="keep.h"'),
        "book/02-two.md", "keep.h did not change"),
    "missing diagram": failing(
        lambda r: (r / "book/diagrams/flow.dot").unlink(),
        "book/00-intro.md: diagram diagrams/flow.dot: no such diagram"),
    "broken diagram": failing(
        lambda r: (r / "book/diagrams/flow.dot").write_text("digraph {"),
        "book/00-intro.md: diagram diagrams/flow.dot: `dot -Tsvg book/diagrams/flow.dot` exited with status 1"),
    "pasted code in a directive": failing(
        lambda r: replace_in(r / "book/01-one.md", 'keep.h"}\n', 'keep.h"}\nint add_one(int x);\n'),
        "book/01-one.md", "must be empty"),
    "unmentioned changed file": failing(
        lambda r: replace_in(r / "book/02-two.md", "adds new.c,", "adds a file,"),
        "book/02-two.md: never mentions new.c, which steps/02-two adds"),
    "unmentioned removed file": failing(
        lambda r: replace_in(r / "book/02-two.md", "drops start.S", "drops start.s2"),
        "book/02-two.md: never mentions start.S, which steps/02-two removes"),
    "step without chapter": failing(
        lambda r: (r / "book/02-two.md").rename(r / "book/02-twice.md"),
        "steps/02-two has no chapter"),
}

TESTS = {
    "includes pull exact regions": test_includes_exact_regions,
    "stepdiff shows the step's changes": test_stepdiff,
    "a correct tree passes the check": test_clean_tree_passes_check,
    "build writes a page per chapter and the EPUB": test_build_writes_html_and_epub,
    "a glossary becomes the last page": test_glossary_is_a_page,
    "step N and section N.M become links; figures are numbered": test_step_and_section_mentions_are_links,
    "a chapter for a future step is skipped": test_chapter_of_a_future_step_is_skipped,
    **{"fails on " + name: test for name, test in FAILURES.items()},
}


def main():
    passed = failed = 0
    for name, test in TESTS.items():
        with tempfile.TemporaryDirectory(prefix="ringzero-book-") as tmp:
            root = Path(tmp)
            make_fixture(root)
            try:
                test(root)
                passed += 1
                print("PASS", name)
            except AssertionError as error:
                failed += 1
                print("FAIL", name, "--", error)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
