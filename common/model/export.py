#!/usr/bin/python3
"""Export the trained model for the kernel: llama2.c's model.bin, and a golden file.

    export.py [--dir DIR]
    export.py --random SHAPE [--seed S] [--out DIR] [--q8]
    export.py --quantize MODEL.bin [--out FILE] [--eval VAL.txt]

reads DIR/checkpoint.pt and DIR/tokenizer.bin, writes DIR/model.bin and
DIR/golden.txt. With --random, writes a model of any shape with random weights
and a tokenizer for it instead, without PyTorch (random_model.py). --quantize
writes a version-0 model.bin as llama2.c's version 2, int8 in groups
(quantize.py): beside it as model-q8.bin unless --out names the file; with
--eval, it then prints the perplexity of both on a validation text. --q8 does
the same for the model it has just written (in DIR for the trained model).

model.bin is llama2.c's version-0 ("legacy") checkpoint, little-endian:
    7 x int32   dim, hidden_dim, n_layers, n_heads, n_kv_heads,
                vocab_size (negative when the classifier is not the embedding),
                seq_len
    float32     token embedding       (vocab_size, dim)
                attention rmsnorm     (n_layers, dim)
                wq                    (n_layers, n_heads * head_size, dim)
                wk, wv                (n_layers, n_kv_heads * head_size, dim) each
                wo                    (n_layers, dim, n_heads * head_size)
                ffn rmsnorm           (n_layers, dim)
                w1                    (n_layers, hidden_dim, dim)
                w2                    (n_layers, dim, hidden_dim)
                w3                    (n_layers, hidden_dim, dim)
                final rmsnorm         (dim)
                freq_cis_real         (seq_len, head_size / 2)   cos(pos * freq_i)
                freq_cis_imag         (seq_len, head_size / 2)   sin(pos * freq_i)
                classifier            (vocab_size, dim), only when vocab_size < 0
Every matrix is row-major (out, in): row i holds the weights of output i.

golden.txt is what the C code must reproduce; see README.md for its format.
"""
import argparse
import hashlib
import os
import struct

import quantize
import random_model
from tokenizer import BOS, Tokenizer

# PyTorch and numpy only for the trained model: --random needs neither (import_torch).
np = torch = Config = Transformer = rope_tables = None

GOLDEN_PROMPTS = [
    "",
    "The meaning of life is",
    "Q: What do you call",
    "Linux is",
    "Murphy's Law:\n",
    "Na\u00efve caf\u00e9 \u2603",  # no tokens for these characters: byte fallback
]
LOGIT_POSITIONS = 4
GREEDY_TOKENS = 32
TIE_GAP = 2e-4  # twice the 1e-4 the C code is allowed to differ by


def import_torch():
    global np, torch, Config, Transformer, rope_tables
    import numpy as np
    import torch
    from model import Config, Transformer, rope_tables


def load_model(directory):
    checkpoint = torch.load(os.path.join(directory, "checkpoint.pt"), map_location="cpu")
    model = Transformer(Config(**checkpoint["config"]))
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return model


def model_tensors(model):
    """The tensors of model.bin, in llama2.c's order."""
    config = model.config
    layers = model.layers
    tensors = [model.tok_embeddings.weight]
    tensors += [layer.attention_norm.weight for layer in layers]
    for name in ("wq", "wk", "wv", "wo"):
        tensors += [getattr(layer.attention, name).weight for layer in layers]
    tensors += [layer.ffn_norm.weight for layer in layers]
    for name in ("w1", "w2", "w3"):
        tensors += [getattr(layer.feed_forward, name).weight for layer in layers]
    tensors.append(model.norm.weight)
    cos, sin = rope_tables(config.head_size, config.seq_len)
    tensors += [cos, sin]
    if not config.shared_classifier:
        tensors.append(model.output.weight)
    return tensors


def write_model(model, path):
    config = model.config
    vocab = config.vocab_size if config.shared_classifier else -config.vocab_size
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", config.dim, config.hidden_dim, config.n_layers,
                            config.n_heads, config.n_kv_heads, vocab, config.seq_len))
        for tensor in model_tensors(model):
            f.write(tensor.detach().numpy().astype("<f4").tobytes())


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def greedy(model, tokens, count):
    """Append count argmax tokens, one at a time; also the smallest top-1/top-2 gap."""
    tokens = list(tokens)
    smallest_gap = float("inf")
    for _ in range(count):
        logits = model(torch.tensor([tokens]))[0, -1]
        top = torch.topk(logits, 2).values
        smallest_gap = min(smallest_gap, (top[0] - top[1]).item())
        tokens.append(int(torch.argmax(logits)))
    return tokens, smallest_gap


def printed_bytes(tokenizer, previous, tokens):
    """The bytes a llama2.c-style decoder prints for tokens; it stops at BOS."""
    out = b""
    for token in tokens:
        if token == BOS:
            break
        out += tokenizer.piece_bytes(previous, token)
        previous = token
    return out


def hex_field(data):
    return f"{len(data)} {data.hex() if data else '-'}"


def write_golden(model, tokenizer, model_path, tokenizer_path, path):
    lines = [
        "ringzero-golden 1",
        f"model {sha256(model_path)}",
        f"tokenizer {sha256(tokenizer_path)}",
        f"vocab_size {model.config.vocab_size}",
        f"prompts {len(GOLDEN_PROMPTS)}",
    ]
    gaps = []
    for prompt in GOLDEN_PROMPTS:
        tokens = tokenizer.encode(prompt, bos=True)
        logits = model(torch.tensor([tokens]))[0]
        generated, gap = greedy(model, tokens, GREEDY_TOKENS)
        continuation = generated[len(tokens):]
        text = printed_bytes(tokenizer, tokens[-1], continuation)
        gaps.append(gap)
        lines.append(f"# {prompt!r} -> {text.decode('utf-8', errors='replace')!r}")
        lines.append(f"prompt {hex_field(prompt.encode('utf-8'))}")
        lines.append(f"tokens {len(tokens)} " + " ".join(map(str, tokens)))
        for position in range(min(LOGIT_POSITIONS, len(tokens))):
            values = " ".join(f"{v:.9g}" for v in logits[position].numpy().astype(np.float32))
            lines.append(f"logits {position} {values}")
        lines.append(f"greedy {len(continuation)} " + " ".join(map(str, continuation)))
        lines.append(f"text {hex_field(text)}")
    lines.append("end")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return min(gaps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="build/model")
    parser.add_argument("--random", metavar="SHAPE",
                        help="instead: random weights of this shape (a preset such as 15M, or "
                             "key=value,...); see random_model.py")
    parser.add_argument("--seed", type=int, default=1, help="with --random (default 1)")
    parser.add_argument("--quantize", metavar="MODEL",
                        help="instead: write this version-0 file as version 2 (int8)")
    parser.add_argument("--out", help="with --random: the folder (default build/model-SHAPE); "
                                      "with --quantize: the file (default model-q8.bin beside)")
    parser.add_argument("--q8", action="store_true",
                        help="also write the exported model in int8, as model-q8.bin beside it")
    parser.add_argument("--eval", metavar="VAL.txt", help="with --quantize or --q8: print "
                        "both models' perplexity on these fortunes (DIR/val.txt for the "
                        "trained model)")
    args = parser.parse_args()
    if args.quantize:
        quantized = quantize.export(args.quantize, args.out)
        if args.eval:
            quantize.compare_perplexity(args.quantize, quantized, args.eval)
        return
    if args.random:
        model = random_model.export(args.random, args.seed, args.out)
    else:
        import_torch()
        torch.set_num_threads(os.cpu_count())
        with torch.no_grad():
            model = export_trained(args)
        args.eval = args.eval or os.path.join(args.dir, "val.txt")
    if args.q8:
        quantized = quantize.export(model)
        if args.eval:
            quantize.compare_perplexity(model, quantized, args.eval)


def export_trained(args):
    model = load_model(args.dir)
    tokenizer_path = os.path.join(args.dir, "tokenizer.bin")
    tokenizer = Tokenizer.load(tokenizer_path)
    if len(tokenizer.pieces) != model.config.vocab_size:
        raise SystemExit("export: the tokenizer does not belong to this checkpoint")
    model_path = os.path.join(args.dir, "model.bin")
    write_model(model, model_path)
    print(f"export: {model_path}: {os.path.getsize(model_path)} bytes")
    golden_path = os.path.join(args.dir, "golden.txt")
    gap = write_golden(model, tokenizer, model_path, tokenizer_path, golden_path)
    print(f"export: {golden_path}: {len(GOLDEN_PROMPTS)} prompts; smallest top-1/top-2 "
          f"logit gap in the greedy runs {gap:.2e}")
    # Logits each within TIE_GAP / 2 of PyTorch's can only swap places below TIE_GAP.
    if gap < TIE_GAP:
        print("export: warning: a greedy step is nearly a tie; float rounding may flip it")
    return model_path


if __name__ == "__main__":
    main()
