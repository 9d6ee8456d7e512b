#!/usr/bin/python3
"""Benchmark the inference engine against itself as it was: the host reference of today's last
step beside the same program built from a fixed earlier commit, in the same run.

    bench_engine.py [--runs N] [--tokens N] [--baseline REV]

The host reference is the engine compiled for Linux with the kernel's flags, one thread: what
the kernel runs, without QEMU in the way. Two models:

- the committed fortune model (common/model/trained, 1.1 M parameters), which fits in cache;
- a random model of llama2.c's stories15M shape (dim 288, 6 layers, 6 heads, hidden 768,
  vocabulary 32,000; common/model/export.py --random 15M, written once into build/model-15M),
  60 MB of floats, which does not.

Each in float32 and in int8 (llama2.c's version 2: export.py --quantize, written beside the
float file under build/). The baseline (by default BASELINE, the engine before issue 15's fast
path and int8) is built from the repository's history into build/bench-baseline/REV/; it reads
only float files. Both engines compute the same floats, so their float texts must be equal,
and the benchmark checks that they are before it times anything.

Every figure is the best of --runs (the median in brackets), the programs taking turns, so
that a busy moment on the machine costs each of them alike: tokens per second of the generated
tokens after the first, and the time to the first token (encoding the prompt and running it).
A generation must run to --tokens: greedy if it does, else sampled (temperature 0.8, top-p 0.9)
with the first seed whose text is that long. It exits non-zero only when a measurement cannot
be made; the goals of issue 15 are printed, not enforced.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import benchlib  # common/benchlib.py
from benchlib import REPO, BenchError, make

STEP = "09-smp"
# The engine before issue 15: 8 lanes, four rows, one accumulator, 4 KiB pages.
BASELINE = "f079d659e2eefba6d9fb4f97755201e5e9eb2a57"
PROMPTS = {"fortune": "The kernel of an operating system is", "15M": "Once upon a time"}
GOALS = (("15M", "float", "baseline", 2.7), ("15M", "int8", "float", 1.5))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (5)")
    parser.add_argument("--tokens", type=int, default=128, help="tokens to generate (128)")
    parser.add_argument("--baseline", default=BASELINE, help="the commit to compare with")
    return parser.parse_args()


def export(*arguments):
    result = subprocess.run([sys.executable, "common/model/export.py", *arguments], cwd=REPO,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"export.py {' '.join(arguments)} failed: {result.stderr.strip()}")


def models():
    """{name: (float file, int8 file, tokenizer)}, written under build/ when missing."""
    trained = REPO / "common" / "model" / "trained"
    fortune_q8 = REPO / "build" / "model-fortune" / "model-q8.bin"
    random_dir = REPO / "build" / "model-15M"
    if not (random_dir / "model.bin").is_file():
        export("--random", "15M", "--out", str(random_dir))
    for source, quantized in ((trained / "model.bin", fortune_q8),
                              (random_dir / "model.bin", random_dir / "model-q8.bin")):
        if not quantized.is_file() or quantized.stat().st_mtime < source.stat().st_mtime:
            quantized.parent.mkdir(parents=True, exist_ok=True)
            export("--quantize", str(source), "--out", str(quantized))
    return {"fortune": (trained / "model.bin", fortune_q8, trained / "tokenizer.bin"),
            "15M": (random_dir / "model.bin", random_dir / "model-q8.bin",
                    random_dir / "tokenizer.bin")}


def build_baseline(revision):
    """The reference program of steps/STEP at revision, from git archive, built once."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{revision}^{{commit}}"],
                            cwd=REPO, capture_output=True, text=True)
    if commit.returncode != 0:
        raise BenchError(f"no commit {revision!r} in this repository's history")
    folder = REPO / "build" / "bench-baseline" / commit.stdout.strip()[:12]
    binary = folder / "out" / "reference"
    if binary.is_file():
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as archive:
        subprocess.run(["git", "archive", commit.stdout.strip(), f"steps/{STEP}",
                        "common/reference", "common/kernel.mk", "common/steps.py"],
                       cwd=REPO, stdout=archive, check=True)
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(folder)
    result = subprocess.run(["make", "-s", "-f", "common/reference/reference.mk",
                             f"STEP_DIR=steps/{STEP}", "OUT=out"], cwd=folder,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"the baseline did not build: {result.stderr.strip()[-600:]}")
    return binary


def run(binary, model, tokenizer, prompt, tokens, seed, bench):
    argv = [str(binary), str(model), str(tokenizer), "--prompt", prompt, "--steps", str(tokens)]
    if seed:
        argv += ["--temperature", "0.8", "--top-p", "0.9", "--seed", str(seed)]
    result = subprocess.run(argv + (["--bench"] if bench else []), capture_output=True,
                            text=True, timeout=600)
    if result.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def long_seed(binary, model, tokenizer, prompt, tokens):
    """0 (greedy) if the greedy text runs to tokens, else the first seed whose text does."""
    for seed in range(0, 33):
        if len(run(binary, model, tokenizer, prompt, tokens, seed, False)["tokens"]) == tokens:
            return seed
    raise BenchError(f"no seed of 0..32 makes {tokens} tokens from {prompt!r} with {model}")


def cases(new, baseline, files, tokens):
    """[(model name, kind, engine, binary, model file, tokenizer, prompt, tokens, seed)]."""
    found = []
    for name, (float_file, int8_file, tokenizer) in files.items():
        prompt = PROMPTS[name]
        context = int.from_bytes(float_file.read_bytes()[24:28], "little")
        prompt_tokens = len(run(new, float_file, tokenizer, prompt, 0, 0, False)["prompt_tokens"])
        length = min(tokens, context - prompt_tokens)
        seed = long_seed(new, float_file, tokenizer, prompt, length)
        was = run(baseline, float_file, tokenizer, prompt, length, seed, False)
        now = run(new, float_file, tokenizer, prompt, length, seed, False)
        if was["tokens"] != now["tokens"]:
            raise BenchError(f"{name}: the baseline and today's engine wrote different texts: "
                             f"{was['text']!r} and {now['text']!r}")
        int8_seed = long_seed(new, int8_file, tokenizer, prompt, length)
        found += [(name, "float", "baseline", baseline, float_file, tokenizer, prompt, length,
                   seed),
                  (name, "float", "now", new, float_file, tokenizer, prompt, length, seed),
                  (name, "int8", "now", new, int8_file, tokenizer, prompt, length, int8_seed)]
    return found


def measure(all_cases, runs):
    """{(model, kind, engine): {"speed": [...], "ttft": [...]}}, the cases taking turns."""
    figures = {case[:3]: {"speed": [], "ttft": []} for case in all_cases}
    for _ in range(runs):
        for case in all_cases:
            result = run(*case[3:], True)
            figures[case[:3]]["speed"].append(result["tokens_per_second"])
            figures[case[:3]]["ttft"].append(result["time_to_first_token_ms"])
    return figures


def report(figures, all_cases, revision, runs):
    print(f"Engine benchmark: the host reference of steps/{STEP}, one thread, best of {runs} "
          "(median)")
    print(f"date:     {benchlib.utc_now()}")
    print(f"machine:  {benchlib.machine()}")
    print(f"load:     {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 minutes)")
    print(f"baseline: {revision[:12]}, built into build/bench-baseline/; today: build/{STEP}")
    for name, kind, engine, _, model, _, prompt, tokens, seed in all_cases:
        if engine == "baseline":
            how = f"seed {seed}" if seed else "greedy"
            print(f"{name}: {model.relative_to(REPO)}, {prompt!r}, {tokens} tokens, {how}")
    print(f"\n  {'':24} {'tokens/s':>20} {'first token ms':>22}")
    for (name, kind, engine), f in figures.items():
        speed, ttft = f["speed"], f["ttft"]
        print(f"  {name + ' ' + kind + ', ' + engine:24} {max(speed):>10.1f} "
              f"({statistics.median(speed):>7.1f}) {min(ttft):>12.2f} "
              f"({statistics.median(ttft):>7.2f})")
    print()
    for name in dict.fromkeys(case[0] for case in all_cases):
        base = max(figures[(name, "float", "baseline")]["speed"])
        now = max(figures[(name, "float", "now")]["speed"])
        int8 = max(figures[(name, "int8", "now")]["speed"])
        print(f"{name}: float now/baseline {now / base:.2f}x, int8/baseline {int8 / base:.2f}x, "
              f"int8/float {int8 / now:.2f}x (tokens/s, best of each)")
    for name, kind, over, goal in GOALS:
        ratio = (max(figures[(name, kind, "now")]["speed"]) /
                 max(figures[(name, "float", "baseline" if over == "baseline" else "now")]
                     ["speed"]))
        against = "the baseline" if over == "baseline" else "today's float"
        print(f"goal (issue 15): {name} {kind} at least {goal}x {against}: "
              f"{'met' if ratio >= goal else 'not met'} ({ratio:.2f}x)")


def main():
    args = parse_args()
    make("-f", "common/reference/reference.mk", f"STEP_DIR=steps/{STEP}", f"OUT=build/{STEP}")
    new = REPO / "build" / STEP / "reference"
    baseline = build_baseline(args.baseline)
    all_cases = cases(new, baseline, models(), args.tokens)
    report(measure(all_cases, args.runs), all_cases, args.baseline, args.runs)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        sys.exit(f"bench_engine: {error}")
