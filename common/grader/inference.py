"""inference: what the tests of step 08 on need besides http_clients.

- The model files the kernel was booted with, read by the grader itself: the llama2.c
  checkpoint's header (and the parameter count it implies) and tokenizer.bin.
- The host reference (build/<step>/reference, built from the repository's own copy of the
  step, so a student's engine is never its own judge; a lab handout ships it built), run
  with the same settings as a request.
- A random-weight checkpoint of another shape, written with the standard library at test time,
  and an ISO that boots the kernel with it.
- An int8 checkpoint (llama2.c's version 2) of a float one, written at test time by the
  project's exporter (common/model/export.py --quantize, standard library only).
"""
import array
import functools
import json
import math
import random
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass

from gradelib import REPO, check, fail

BOS, EOS = 1, 2
HEADER = struct.Struct("<7i")


@dataclass
class Checkpoint:
    """A llama2.c version-0 checkpoint's header."""
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    shared_classifier: bool

    @property
    def head_size(self):
        return self.dim // self.n_heads

    @property
    def kv_dim(self):
        return self.n_kv_heads * self.head_size

    def tensor_sizes(self):
        """(name, number of floats) of every tensor, in the file's order."""
        d, h, layers, kv = self.dim, self.hidden_dim, self.n_layers, self.kv_dim
        sizes = [("token_embedding", self.vocab_size * d), ("rms_att", layers * d),
                 ("wq", layers * d * d), ("wk", layers * kv * d), ("wv", layers * kv * d),
                 ("wo", layers * d * d), ("rms_ffn", layers * d), ("w1", layers * h * d),
                 ("w2", layers * d * h), ("w3", layers * h * d), ("rms_final", d),
                 ("freq_cis_real", self.seq_len * self.head_size // 2),
                 ("freq_cis_imag", self.seq_len * self.head_size // 2)]
        if not self.shared_classifier:
            sizes.append(("classifier", self.vocab_size * d))
        return sizes

    @property
    def parameters(self):
        """The learned weights: every tensor but the rotary tables (which are a formula)."""
        return sum(n for name, n in self.tensor_sizes() if not name.startswith("freq_cis"))

    def file_size(self):
        return HEADER.size + 4 * sum(n for _, n in self.tensor_sizes())


def read_checkpoint(path):
    fields = HEADER.unpack(path.read_bytes()[:HEADER.size])
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = fields
    return Checkpoint(dim, hidden, layers, heads, kv_heads, abs(vocab), seq_len, vocab > 0)


@dataclass
class Tokenizer:
    pieces: list          # each token's bytes, by id
    max_token_length: int  # the header's field

    @property
    def longest(self):
        return max(map(len, self.pieces))

    def decode(self, tokens, previous=None):
        """The bytes llama2.c's decoder prints for tokens that follow the token `previous`,
        stopping at BOS: <0xHH> tokens are the byte HH, and a piece right after BOS drops its
        leading space."""
        out = bytearray()
        for token in tokens:
            if token == BOS:
                break
            piece = self.pieces[token]
            if 3 <= token <= 258:
                piece = bytes([token - 3])
            elif previous == BOS and piece.startswith(b" "):
                piece = piece[1:]
            out += piece
            previous = token
        return bytes(out)


def read_tokenizer(path, vocab_size):
    data = path.read_bytes()
    max_length, = struct.unpack_from("<i", data, 0)
    at, pieces = 4, []
    while at < len(data) and len(pieces) < vocab_size:
        _, length = struct.unpack_from("<fi", data, at)
        pieces.append(data[at + 8:at + 8 + length])
        at += 8 + length
    return Tokenizer(pieces, max_length)


# ---------------------------------------------------------------------------------------------
# The run's model: the modules of the step's ISO.

def run_model(run):
    """(model path, tokenizer path, Checkpoint, Tokenizer) of the modules the step boots with."""
    modules = {path.name: path for path in run.default_modules()}
    check("model.bin" in modules and "tokenizer.bin" in modules,
          f"the step's ISO does not load model.bin and tokenizer.bin as modules "
          f"(it loads {sorted(modules) or 'none'})")
    model, tokenizer = modules["model.bin"], modules["tokenizer.bin"]
    header = read_checkpoint(model)
    return model, tokenizer, header, read_tokenizer(tokenizer, header.vocab_size)


def model_iso(run, model, tokenizer, cmdline=""):
    """An ISO loading these files as the modules model.bin and tokenizer.bin."""
    folder = run.unique_path("model")
    folder.mkdir()
    shutil.copyfile(model, folder / "model.bin")
    shutil.copyfile(tokenizer, folder / "tokenizer.bin")
    return run.iso_for(cmdline, modules=[folder / "model.bin", folder / "tokenizer.bin"])


# ---------------------------------------------------------------------------------------------
# The host reference.

@functools.lru_cache(maxsize=None)
def _build_reference(step):
    # A lab handout of step 08 has no engine to build it from; it ships the program instead.
    shipped = REPO / "common" / "lab" / "reference-bin" / step / "reference"
    if shipped.is_file():
        return shipped
    out = REPO / "build" / step
    result = subprocess.run(["make", "-s", "-f", "common/reference/reference.mk",
                             f"STEP_DIR=steps/{step}", f"OUT=build/{step}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        fail(f"the host reference of {step} did not build: "
             f"{(result.stderr or result.stdout).strip()[-600:]}")
    return out / "reference"


class Reference:
    """The host reference program on given model files."""

    def __init__(self, run, model, tokenizer):
        self.binary = _build_reference(run.step)
        self.model, self.tokenizer = model, tokenizer

    def __call__(self, prompt, *options, timeout=120):
        argv = [str(self.binary), str(self.model), str(self.tokenizer), "--prompt", prompt,
                *map(str, options)]
        result = subprocess.run(argv, capture_output=True, timeout=timeout)
        if result.returncode != 0:
            fail(f"the host reference failed (status {result.returncode}) on "
                 f"{' '.join(argv[3:])[:200]}: {result.stderr.decode(errors='replace')[-300:]}")
        try:
            return json.loads(result.stdout)
        except ValueError as error:
            fail(f"the host reference printed no JSON ({error}): {result.stdout[:200]!r}")

    def count_tokens(self, prompt):
        """How many tokens prompt encodes into, BOS included, even beyond the context."""
        argv = [str(self.binary), str(self.model), str(self.tokenizer), "--prompt", prompt,
                "--steps", "0"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            return len(json.loads(result.stdout)["prompt_tokens"])
        too_long = re.search(r"prompt is (\d+) tokens", result.stderr)
        if not too_long:
            fail(f"the host reference failed (status {result.returncode}) to encode "
                 f"{prompt[:80]!r}: {result.stderr[-300:]}")
        return int(too_long[1])

    def generate(self, prompt, max_tokens, temperature=0, top_p=1, seed=0, chat=False):
        """{"prompt_tokens", "tokens", "text", "finish_reason"} for these settings."""
        return self(prompt, "--steps", max_tokens, "--temperature", temperature,
                    "--top-p", top_p, "--seed", seed, *(["--chat"] if chat else []))

    def embedding(self, text):
        return self(text, "--embed")["embedding"]


# ---------------------------------------------------------------------------------------------
# A random model of another shape.

def write_random_checkpoint(path, shape, seed):
    """A llama2.c checkpoint of the given Checkpoint shape with seeded random weights.

    Weights have the scale of a freshly initialised network, so activations stay in range.
    With a classifier of its own, that classifier's rows for <unk>, BOS, EOS and the 256 byte
    tokens are zero (logit 0) while the others give logits of standard deviation about 4, so
    the top few tokens compete and those never come up: the completion is ASCII text that
    runs to max_tokens. The rotary tables hold llama2.c's values (theta = 10000)."""
    rng = random.Random(seed)
    out = bytearray(struct.pack("<7i", shape.dim, shape.hidden_dim, shape.n_layers,
                                shape.n_heads, shape.n_kv_heads,
                                shape.vocab_size if shape.shared_classifier
                                else -shape.vocab_size, shape.seq_len))

    def uniform(count, scale):
        return array.array("f", (rng.uniform(-scale, scale) for _ in range(count)))

    def norm_weights(count):
        return array.array("f", (1.0 + rng.uniform(-0.1, 0.1) for _ in range(count)))

    def classifier(count):
        # The final hidden state has length about sqrt(dim); logits then have std 7/sqrt(3).
        rows = uniform(count, 7.0 * shape.dim ** -0.5)
        silent = 3 + 256
        rows[:silent * shape.dim] = array.array("f", bytes(4 * silent * shape.dim))
        return rows

    half = shape.head_size // 2
    angles = [p * 10000.0 ** (-2 * i / shape.head_size)
              for p in range(shape.seq_len) for i in range(half)]
    into_dim, into_hidden = shape.dim ** -0.5, shape.hidden_dim ** -0.5
    tensors = {
        "token_embedding": lambda n: uniform(n, 1.0),
        "rms_att": norm_weights, "rms_ffn": norm_weights, "rms_final": norm_weights,
        "wq": lambda n: uniform(n, into_dim), "wk": lambda n: uniform(n, into_dim),
        "wv": lambda n: uniform(n, into_dim), "wo": lambda n: uniform(n, into_dim),
        "w1": lambda n: uniform(n, into_dim), "w3": lambda n: uniform(n, into_dim),
        "w2": lambda n: uniform(n, into_hidden),
        "freq_cis_real": lambda n: array.array("f", map(math.cos, angles)),
        "freq_cis_imag": lambda n: array.array("f", map(math.sin, angles)),
        "classifier": classifier,
    }
    for name, count in shape.tensor_sizes():
        data = tensors[name](count)
        check(len(data) == count, f"grader error: {name} has {len(data)} of {count} floats")
        out += data.tobytes()
    path.write_bytes(out)
    check(path.stat().st_size == shape.file_size(), "grader error: checkpoint size")


def write_int8_checkpoint(source, path):
    """llama2.c's version 2 (Q8_0) of the version-0 checkpoint source, at path."""
    result = subprocess.run([sys.executable, str(REPO / "common" / "model" / "export.py"),
                             "--quantize", str(source), "--out", str(path)],
                            capture_output=True, text=True, timeout=300)
    check(result.returncode == 0, f"grader error: export.py --quantize failed: "
                                  f"{(result.stderr or result.stdout).strip()[-400:]}")
