"""Int8 checkpoints: a llama2.c version-0 model.bin rewritten as version 2 (Q8_0).

    export.py --quantize MODEL.bin [--out FILE] [--eval VAL.txt]

Version 2 is what llama2.c's export.py writes with --version 2 and its runq.c reads. A
256-byte header: the magic 0x616b3432 ("ak42"), the version 2, the seven int32 of version 0
(vocab_size positive), a byte that is 1 when the classifier is the token embedding, the group
size, zeros. Then the attention, feed-forward and final RMSNorm weights as float32. Then every
matrix: the token embedding, all layers' wq, then wk, wv, wo, w1, w2, w3, then the classifier
when it is not the embedding. Each layer's matrix is its values in int8, row-major, then one
float32 scale per group of group-size values, value = int8 x scale. There are no rotary tables.

Each group of weights is scaled so that its largest magnitude becomes 127, then rounded to the
nearest integer, ties to even: the float32 arithmetic of llama2.c's quantize_q80. The group
size is the largest power of two up to 64 that divides dim and hidden_dim (llama2.c asks only
dim; a row of w2 is hidden_dim long, and the engine needs whole groups in every row).

Standard library only. --eval runs the host reference's --perplexity on the validation text
with both files and prints the two perplexities: the int8 model must stay within 2 % of the
float one.
"""
import array
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

MAGIC = 0x616B3432
HEADER_BYTES = 256
MAX_GROUP = 64
FIELDS = struct.Struct("<7i")


def read_version0(path):
    """(shape dict, shared_classifier, {name: array of float32}) of a version-0 file."""
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = FIELDS.unpack_from(data)
    shared = vocab > 0
    vocab = abs(vocab)
    head_size = dim // heads
    kv = kv_heads * head_size
    sizes = [("token_embedding", vocab * dim), ("rms_attention", layers * dim),
             ("wq", layers * dim * dim), ("wk", layers * kv * dim), ("wv", layers * kv * dim),
             ("wo", layers * dim * dim), ("rms_ffn", layers * dim),
             ("w1", layers * hidden * dim), ("w2", layers * dim * hidden),
             ("w3", layers * hidden * dim), ("rms_final", dim),
             ("rope", 2 * seq_len * (head_size // 2))]
    if not shared:
        sizes.append(("classifier", vocab * dim))
    expected = FIELDS.size + 4 * sum(n for _, n in sizes)
    if len(data) != expected:
        raise SystemExit(f"quantize: {path} is {len(data)} bytes; a version-0 checkpoint of "
                         f"its header's shape is {expected}")
    tensors, at = {}, FIELDS.size
    for name, count in sizes:
        tensors[name] = array.array("f", data[at:at + 4 * count])
        if sys.byteorder == "big":
            tensors[name].byteswap()
        at += 4 * count
    shape = dict(dim=dim, hidden_dim=hidden, n_layers=layers, n_heads=heads,
                 n_kv_heads=kv_heads, vocab_size=vocab, seq_len=seq_len)
    return shape, shared, tensors


def group_size(shape):
    size = MAX_GROUP
    while size >= 4 and (shape["dim"] % size or shape["hidden_dim"] % size):
        size //= 2
    if size < 4:
        raise SystemExit("quantize: no group size of 4 or more divides both dim and hidden_dim")
    return size


def quantize(values, group):
    """(int8 bytes, float32 scales) of values, group by group."""
    as_float32 = array.array("f")
    scales = array.array("f")
    quantized = bytearray(len(values))
    for start in range(0, len(values), group):
        chunk = values[start:start + group]
        largest = max(max(chunk), -min(chunk))
        scales.append(largest / 127.0)   # rounded to float32 as llama2.c's float32 division is
        scale = scales[-1]
        if scale == 0.0:
            continue
        # The quotients in float32 first, as llama2.c computes them, then rounded (ties to even).
        as_float32[:] = array.array("f", [v / scale for v in chunk])
        quantized[start:start + group] = bytes(round(q) & 0xFF for q in as_float32)
    return bytes(quantized), scales


def matrix_bytes(values, group, layers):
    """Each layer's int8 values followed by its scales."""
    per_layer = len(values) // layers
    out = bytearray()
    for layer in range(layers):
        quantized, scales = quantize(values[layer * per_layer:(layer + 1) * per_layer], group)
        if sys.byteorder == "big":
            scales.byteswap()
        out += quantized + scales.tobytes()
    return bytes(out)


def float_bytes(values):
    values = array.array("f", values)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def write_version2(source, destination):
    """Quantizes the version-0 file source into destination; returns the group size."""
    shape, shared, t = read_version0(source)
    group = group_size(shape)
    layers = shape["n_layers"]
    header = struct.pack("<Ii", MAGIC, 2) + FIELDS.pack(
        shape["dim"], shape["hidden_dim"], layers, shape["n_heads"], shape["n_kv_heads"],
        shape["vocab_size"], shape["seq_len"]) + struct.pack("<Bi", int(shared), group)
    with open(destination, "wb") as f:
        f.write(header + bytes(HEADER_BYTES - len(header)))
        for name in ("rms_attention", "rms_ffn", "rms_final"):
            f.write(float_bytes(t[name]))
        f.write(matrix_bytes(t["token_embedding"], group, 1))
        for name in ("wq", "wk", "wv", "wo", "w1", "w2", "w3"):
            f.write(matrix_bytes(t[name], group, layers))
        if not shared:
            f.write(matrix_bytes(t["classifier"], group, 1))
    return group


def export(source, destination=None):
    destination = destination or os.path.join(os.path.dirname(source) or ".", "model-q8.bin")
    group = write_version2(source, destination)
    print(f"export: {destination}: {os.path.getsize(destination)} bytes, llama2.c version 2 "
          f"(Q8_0, groups of {group}) of {source}")
    return destination


# ---------------------------------------------------------------------------------------------
# Quality: perplexity on held-out text, measured by the engine itself (the host reference).

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PERPLEXITY_GOAL = 0.02  # the int8 model's perplexity within 2 % of the float one's


def reference_binary():
    """The host reference of the last step with the engine, built if needed."""
    sys.path.insert(0, os.path.join(REPO, "common"))
    import steps  # common/steps.py
    step = steps.offering(steps.find_steps(Path(REPO)), "inference")[-1].name
    subprocess.run(["make", "-s", "-f", "common/reference/reference.mk",
                    f"STEP_DIR=steps/{step}", f"OUT=build/{step}"], cwd=REPO, check=True)
    return os.path.join(REPO, "build", step, "reference")


def perplexity(binary, model, tokenizer, text):
    """{"tokens", "loss", "perplexity"} of the model on a file of fortunes."""
    result = subprocess.run([binary, model, tokenizer, "--perplexity", text],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"export: the reference's --perplexity failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def compare_perplexity(model, quantized, text):
    """Prints both models' perplexity on text; returns int8's over float's."""
    tokenizer = os.path.join(os.path.dirname(model) or ".", "tokenizer.bin")
    binary = reference_binary()
    before, after = (perplexity(binary, path, tokenizer, text) for path in (model, quantized))
    ratio = after["perplexity"] / before["perplexity"]
    verdict = "within" if ratio - 1 <= PERPLEXITY_GOAL else "NOT within"
    print(f"export: perplexity on {text} ({before['tokens']} tokens): float "
          f"{before['perplexity']:.4f}, int8 {after['perplexity']:.4f} "
          f"({100 * (ratio - 1):+.3f} %, {verdict} {100 * PERPLEXITY_GOAL:.0f} %)")
    return ratio
