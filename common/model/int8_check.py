#!/usr/bin/python3
"""The int8 checkpoint of the committed model, checked on the host (a suite of make test).

- quality: its perplexity on the validation fortunes (corpus.py's val.txt, from Debian's
  fortunes package) is within 2 % of the float model's, both measured by the engine itself
  (the host reference's --perplexity), as export.py --quantize --eval prints them;
- bits: the host reference gives the same output on its three paths (--isa avx2, sse,
  scalar) with int8 models, greedy, sampled and as an embedding: the committed model (groups
  of 64, the AVX2 int8 products) and a random one of odd sizes (groups of 4, which every path
  leaves to plain C).

Writes into build/int8-check/. Ends with the line `N passed, N failed`.
"""
import json
import os
import subprocess
import sys

import quantize

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(quantize.REPO, "build", "int8-check")
TRAINED = os.path.join(HERE, "trained")
ODD_SHAPE = "dim=36,hidden_dim=100,n_layers=2,n_heads=6,n_kv_heads=2,vocab_size=1024,seq_len=64"
RUNS = (["--prompt", "Linux is", "--steps", "40"],
        ["--prompt", "The best way to", "--steps", "40", "--temperature", "0.8", "--top-p",
         "0.9", "--seed", "5"],
        ["--prompt", "A fortune a day", "--embed"])


def check_perplexity():
    subprocess.run([sys.executable, os.path.join(HERE, "corpus.py"), "--out", OUT], check=True,
                   stdout=subprocess.DEVNULL)
    quantized = quantize.export(os.path.join(TRAINED, "model.bin"),
                                os.path.join(OUT, "model-q8.bin"))
    ratio = quantize.compare_perplexity(os.path.join(TRAINED, "model.bin"), quantized,
                                        os.path.join(OUT, "val.txt"))
    return ratio - 1 <= quantize.PERPLEXITY_GOAL, quantized


def same_on_every_path(binary, model, tokenizer):
    """Whether --isa avx2, sse and scalar print the same for every run."""
    for run in RUNS:
        outputs = {subprocess.run([binary, model, tokenizer, *run, "--isa", isa],
                                  capture_output=True, text=True, check=True).stdout
                   for isa in ("avx2", "sse", "scalar")}
        if len(outputs) != 1:
            print(f"  {os.path.basename(model)} {' '.join(run)}: the paths differ: "
                  f"{sorted(outputs)}")
            return False
        json.loads(outputs.pop())
    return True


def main():
    os.makedirs(OUT, exist_ok=True)
    binary = quantize.reference_binary()
    results = []
    ok, quantized = check_perplexity()
    results.append(("the int8 model's perplexity is within 2 % of the float one's", ok))
    results.append(("the committed int8 model: the same output on every path",
                    same_on_every_path(binary, quantized, os.path.join(TRAINED, "tokenizer.bin"))))
    odd = os.path.join(OUT, "odd")
    subprocess.run([sys.executable, os.path.join(HERE, "export.py"), "--random", ODD_SHAPE,
                    "--seed", "9", "--out", odd, "--q8"], check=True, stdout=subprocess.DEVNULL)
    results.append(("an int8 model in groups of 4: the same output on every path",
                    same_on_every_path(binary, os.path.join(odd, "model-q8.bin"),
                                       os.path.join(odd, "tokenizer.bin"))))
    for title, ok in results:
        print(f"  {'PASS' if ok else 'FAIL'}  {title}")
    passed = sum(ok for _, ok in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
