"""A model of any shape with seeded random weights, for benchmarks: no training, no download.

    export.py --random 15M [--seed S] [--out DIR]
    export.py --random dim=288,hidden_dim=768,n_layers=6,n_heads=6,vocab_size=32000 ...

writes DIR/model.bin (llama2.c version 0, float32) and DIR/tokenizer.bin (default DIR:
build/model-SHAPE). Standard library only, so `make bench` needs nothing installed.

SHAPE is a preset or key=value pairs (over the preset named first, if any). The presets are
the shapes of llama2.c's TinyStories models, so a benchmark on "15M" does the work that
stories15M.bin does (same matrices, same vocabulary) without fetching it.

The weights only have to keep the activations in a sensible range and make greedy text run
to the end: uniform, scaled like a freshly initialised network. The classifier is the token
embedding, as in stories15M; the embedding rows of <unk>, BOS, EOS and the 256 byte tokens are
a hundred times smaller than the others, so those tokens never win the argmax and a
generation never stops early.

The tokenizer is the committed one (common/model/trained/tokenizer.bin, 1024 tokens), cut
or padded to the vocabulary: padding tokens are spelled <extra_N>, which no merge of the
encoder can produce (no token spells "<e"), so they only ever come out of the model.
"""
import array
import math
import os
import random
import struct
import sys

TRAINED_TOKENIZER = os.path.join(os.path.dirname(__file__), "trained", "tokenizer.bin")
QUIET_TOKENS = 3 + 256  # <unk>, BOS, EOS and the byte tokens

PRESETS = {
    "15M": dict(dim=288, hidden_dim=768, n_layers=6, n_heads=6, n_kv_heads=6,
                vocab_size=32000, seq_len=256),
    "42M": dict(dim=512, hidden_dim=1376, n_layers=8, n_heads=8, n_kv_heads=8,
                vocab_size=32000, seq_len=1024),
    "110M": dict(dim=768, hidden_dim=2048, n_layers=12, n_heads=12, n_kv_heads=12,
                 vocab_size=32000, seq_len=1024),
    # The committed fortune model's shape.
    "fortune": dict(dim=128, hidden_dim=384, n_layers=5, n_heads=4, n_kv_heads=2,
                    vocab_size=1024, seq_len=256),
}
FIELDS = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len")


def parse_shape(text):
    """A dict of FIELDS from "15M", "dim=64,n_layers=2,..." or "15M,seq_len=512"."""
    shape = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            if item not in PRESETS:
                raise SystemExit(f"export: no preset {item!r} (presets: {', '.join(PRESETS)})")
            shape.update(PRESETS[item])
            continue
        key, value = item.split("=", 1)
        if key not in FIELDS or not value.isdigit() or int(value) <= 0:
            raise SystemExit(f"export: {item!r}: expected one of {', '.join(FIELDS)} = a "
                             "positive number")
        shape[key] = int(value)
    shape.setdefault("n_kv_heads", shape.get("n_heads"))
    missing = [key for key in FIELDS if shape.get(key) is None]
    if missing:
        raise SystemExit(f"export: the shape {text!r} does not give {', '.join(missing)}")
    if shape["dim"] % shape["n_heads"] or shape["n_heads"] % shape["n_kv_heads"] or \
            (shape["dim"] // shape["n_heads"]) % 2:
        raise SystemExit(f"export: {text!r}: n_heads must divide dim into an even head size, "
                         "and n_kv_heads must divide n_heads")
    if shape["vocab_size"] <= QUIET_TOKENS:
        raise SystemExit(f"export: the vocabulary must be larger than {QUIET_TOKENS} tokens")
    return shape


def tensor_sizes(s):
    """(name, float count) of every tensor of a version-0 file with a shared classifier."""
    d, h, layers, v = s["dim"], s["hidden_dim"], s["n_layers"], s["vocab_size"]
    kv = s["n_kv_heads"] * d // s["n_heads"]
    half = d // s["n_heads"] // 2
    return [("token_embedding", v * d), ("rms_attention", layers * d), ("wq", layers * d * d),
            ("wk", layers * kv * d), ("wv", layers * kv * d), ("wo", layers * d * d),
            ("rms_ffn", layers * d), ("w1", layers * h * d), ("w2", layers * d * h),
            ("w3", layers * h * d), ("rms_final", d), ("rope_cos", s["seq_len"] * half),
            ("rope_sin", s["seq_len"] * half)]


def uniform(rng, count, scale):
    draw = rng.random
    return array.array("f", [scale * (2.0 * draw() - 1.0) for _ in range(count)])


def rope_table(shape, function):
    head_size = shape["dim"] // shape["n_heads"]
    return array.array("f", [function(pos * 10000.0 ** (-2 * i / head_size))
                             for pos in range(shape["seq_len"]) for i in range(head_size // 2)])


def tensor(rng, name, count, shape):
    """The random (or, for the rotary tables, computed) floats of one tensor."""
    if name.startswith("rms"):
        return array.array("f", [1.0 + 0.2 * (rng.random() - 0.5) for _ in range(count)])
    if name.startswith("rope"):
        return rope_table(shape, math.cos if name == "rope_cos" else math.sin)
    if name == "token_embedding":
        rows = uniform(rng, count, 1.0)
        quiet = QUIET_TOKENS * shape["dim"]
        rows[:quiet] = array.array("f", [0.01 * x for x in rows[:quiet]])
        return rows
    width = shape["hidden_dim"] if name == "w2" else shape["dim"]
    return uniform(rng, count, width ** -0.5)


def write_model(path, shape, seed):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", *(shape[key] for key in FIELDS)))
        for name, count in tensor_sizes(shape):
            data = tensor(rng, name, count, shape)
            assert len(data) == count, name
            if sys.byteorder == "big":
                data.byteswap()
            f.write(data.tobytes())


def write_tokenizer(path, vocab_size):
    """The committed tokenizer, cut or padded with <extra_N> tokens to vocab_size."""
    with open(TRAINED_TOKENIZER, "rb") as f:
        data = f.read()
    at, entries = 4, []
    while at < len(data) and len(entries) < vocab_size:
        length, = struct.unpack_from("<i", data, at + 4)
        entries.append(data[at:at + 8 + length])
        at += 8 + length
    lowest = min(struct.unpack_from("<f", entry)[0] for entry in entries)
    for n in range(len(entries), vocab_size):
        piece = f"<extra_{n}>".encode()
        entries.append(struct.pack("<fi", lowest - 1 - n, len(piece)) + piece)
    longest = max(len(entry) - 8 for entry in entries)
    with open(path, "wb") as f:
        f.write(struct.pack("<i", longest) + b"".join(entries))


def export(shape_text, seed, out):
    shape = parse_shape(shape_text)
    out = out or os.path.join("build", "model-" + shape_text.replace(",", "-"))
    os.makedirs(out, exist_ok=True)
    model_path = os.path.join(out, "model.bin")
    write_model(model_path, shape, seed)
    write_tokenizer(os.path.join(out, "tokenizer.bin"), shape["vocab_size"])
    parameters = sum(n for name, n in tensor_sizes(shape) if not name.startswith("rope"))
    print(f"export: {model_path}: {os.path.getsize(model_path)} bytes, random weights (seed "
          f"{seed}), {parameters} parameters, " +
          ", ".join(f"{key} {shape[key]}" for key in FIELDS))
    return model_path
