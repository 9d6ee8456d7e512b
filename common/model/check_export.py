#!/usr/bin/python3
"""Check model.bin and tokenizer.bin against golden.txt without PyTorch.

    check_export.py [--dir DIR]

This is a second, independent reading of the exported files: numpy only,
none of the training code. It parses tokenizer.bin and model.bin the way a
C program would, encodes each golden prompt with llama2.c's merge loop (a
plain scan, no heap), runs the network one position at a time with a
key/value cache as llama2.c's run.c does, and demands the golden tokens,
logits (to 1e-4) and greedy continuation. Exit status 1 on any mismatch.
"""
import argparse
import hashlib
import os
import struct
import sys

import numpy as np

TOLERANCE = 1e-4
BOS = 1


def read_tokenizer(path):
    with open(path, "rb") as f:
        data = f.read()
    (max_length,), offset = struct.unpack_from("<i", data), 4
    pieces, scores = [], []
    while offset < len(data):
        score, length = struct.unpack_from("<fi", data, offset)
        pieces.append(data[offset + 8:offset + 8 + length])
        scores.append(score)
        offset += 8 + length
    assert max(len(p) for p in pieces) == max_length, "max_token_length is wrong"
    return pieces, scores


def utf8_units(text):
    """Split bytes into UTF-8 characters as run.c does (lead byte + up to 3 continuations)."""
    units, i = [], 0
    while i < len(text):
        j = i + 1
        while j < len(text) and text[j] & 0xC0 == 0x80 and j - i < 4:
            j += 1
        units.append(text[i:j])
        i = j
    return units


def encode(pieces, scores, text):
    ids = {piece: i for i, piece in enumerate(pieces)}
    tokens = [BOS]
    if text:
        for unit in utf8_units(b" " + text):
            tokens += [ids[unit]] if unit in ids else [3 + b for b in unit]
    while True:
        best_score, best, best_id = -1e10, -1, -1
        for i in range(1, len(tokens) - 1):
            merged = ids.get(pieces[tokens[i]] + pieces[tokens[i + 1]])
            if merged is not None and scores[merged] > best_score:
                best_score, best, best_id = scores[merged], i, merged
        if best < 0:
            return tokens
        tokens[best:best + 2] = [best_id]


def decode(pieces, previous, tokens):
    out = b""
    for token in tokens:
        if token == BOS:
            break
        piece = pieces[token]
        if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
            piece = bytes([int(piece[3:5], 16)])
        elif previous == BOS and piece.startswith(b" "):
            piece = piece[1:]
        out += piece
        previous = token
    return out


class Model:
    def __init__(self, path):
        data = np.fromfile(path, dtype="<f4")
        header = data[:7].view("<i4")
        dim, hidden, layers, heads, kv_heads, vocab, seq_len = (int(v) for v in header)
        self.shared = vocab > 0
        vocab = abs(vocab)
        self.dim, self.hidden, self.n_layers = dim, hidden, layers
        self.heads, self.kv_heads, self.vocab, self.seq_len = heads, kv_heads, vocab, seq_len
        self.head_size = dim // heads
        kv_dim = kv_heads * self.head_size
        offset = 7

        def take(*shape):
            nonlocal offset
            count = int(np.prod(shape))
            tensor = data[offset:offset + count].reshape(shape)
            offset += count
            return tensor

        self.embedding = take(vocab, dim)
        self.attention_norm = take(layers, dim)
        self.wq = take(layers, dim, dim)
        self.wk = take(layers, kv_dim, dim)
        self.wv = take(layers, kv_dim, dim)
        self.wo = take(layers, dim, dim)
        self.ffn_norm = take(layers, dim)
        self.w1 = take(layers, hidden, dim)
        self.w2 = take(layers, dim, hidden)
        self.w3 = take(layers, hidden, dim)
        self.final_norm = take(dim)
        self.cos = take(seq_len, self.head_size // 2)
        self.sin = take(seq_len, self.head_size // 2)
        self.classifier = self.embedding if self.shared else take(vocab, dim)
        assert offset == len(data), f"model.bin has {len(data) - offset} floats too many"
        self.reset()

    def reset(self):
        kv_dim = self.kv_heads * self.head_size
        self.keys = np.zeros((self.n_layers, self.seq_len, kv_dim), np.float32)
        self.values = np.zeros((self.n_layers, self.seq_len, kv_dim), np.float32)

    def check_rope_tables(self):
        pair = np.arange(self.head_size // 2)
        angle = np.arange(self.seq_len)[:, None] * 10000.0 ** (-2.0 * pair / self.head_size)
        return max(np.abs(self.cos - np.cos(angle)).max(), np.abs(self.sin - np.sin(angle)).max())

    @staticmethod
    def rmsnorm(x, weight):
        return weight * (x / np.sqrt(np.mean(x * x) + np.float32(1e-5)))

    def rotate(self, vector, pos):
        pairs = vector.reshape(-1, self.head_size // 2, 2)
        even, odd = pairs[..., 0], pairs[..., 1]
        c, s = self.cos[pos], self.sin[pos]
        return np.stack((even * c - odd * s, even * s + odd * c), axis=-1).reshape(-1)

    def forward(self, token, pos):
        """One position, as run.c: returns the logits for the next token."""
        x = self.embedding[token].copy()
        group = self.heads // self.kv_heads
        hs = self.head_size
        for layer in range(self.n_layers):
            xb = self.rmsnorm(x, self.attention_norm[layer])
            q = self.rotate(self.wq[layer] @ xb, pos)
            self.keys[layer, pos] = self.rotate(self.wk[layer] @ xb, pos)
            self.values[layer, pos] = self.wv[layer] @ xb
            out = np.empty(self.dim, np.float32)
            for h in range(self.heads):
                kv = (h // group) * hs
                keys = self.keys[layer, :pos + 1, kv:kv + hs]
                scores = keys @ q[h * hs:(h + 1) * hs] / np.float32(np.sqrt(hs))
                weights = np.exp(scores - scores.max())
                weights /= weights.sum()
                out[h * hs:(h + 1) * hs] = weights @ self.values[layer, :pos + 1, kv:kv + hs]
            x = x + self.wo[layer] @ out
            xb = self.rmsnorm(x, self.ffn_norm[layer])
            gate = self.w1[layer] @ xb
            x = x + self.w2[layer] @ (gate / (np.float32(1) + np.exp(-gate)) * (self.w3[layer] @ xb))
        return self.classifier @ self.rmsnorm(x, self.final_norm)


def read_golden(path):
    """golden.txt as a list of cases (dicts), plus its header fields."""
    header, cases = {}, []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            key, *fields = line.split()
            if key == "prompt":
                cases.append({"logits": []})
                cases[-1]["prompt"] = bytes.fromhex(fields[1]) if fields[0] != "0" else b""
            elif key in ("tokens", "greedy"):
                cases[-1][key] = [int(v) for v in fields[1:]]
                assert len(cases[-1][key]) == int(fields[0])
            elif key == "logits":
                cases[-1]["logits"].append(np.array(fields[1:], dtype=np.float32))
            elif key == "text":
                cases[-1]["text"] = bytes.fromhex(fields[1]) if fields[0] != "0" else b""
            else:
                header[key] = fields
    return header, cases


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="build/model")
    args = parser.parse_args()
    model_path = os.path.join(args.dir, "model.bin")
    tokenizer_path = os.path.join(args.dir, "tokenizer.bin")
    header, cases = read_golden(os.path.join(args.dir, "golden.txt"))
    failures = []

    def expect(condition, message):
        if not condition:
            failures.append(message)
            print(f"  FAIL {message}")

    expect(header["model"] == [sha256(model_path)], "golden.txt is for another model.bin")
    expect(header["tokenizer"] == [sha256(tokenizer_path)], "golden.txt is for another tokenizer")
    pieces, scores = read_tokenizer(tokenizer_path)
    model = Model(model_path)
    expect(len(pieces) == model.vocab, "tokenizer and model disagree on the vocabulary size")
    rope_error = model.check_rope_tables()
    expect(rope_error < 1e-5, f"freq_cis tables are off by {rope_error:.1e}")
    print(f"check: model.bin dim {model.dim}, hidden {model.hidden}, {model.n_layers} layers, "
          f"{model.heads} heads, {model.kv_heads} kv heads, vocab {model.vocab}, "
          f"seq_len {model.seq_len}, {'shared' if model.shared else 'separate'} classifier")

    worst = 0.0
    for case in cases:
        name = repr(case["prompt"].decode("utf-8"))
        tokens = encode(pieces, scores, case["prompt"])
        expect(tokens == case["tokens"], f"{name}: encodes to {tokens}, golden {case['tokens']}")
        tokens = case["tokens"]
        model.reset()
        for pos, token in enumerate(tokens):
            logits = model.forward(token, pos)
            if pos < len(case["logits"]):
                error = float(np.abs(logits - case["logits"][pos]).max())
                worst = max(worst, error)
                expect(error <= TOLERANCE, f"{name}: logits at position {pos} off by {error:.2e}")
        generated = []
        for pos in range(len(tokens), len(tokens) + len(case["greedy"])):
            generated.append(int(np.argmax(logits)))
            logits = model.forward(generated[-1], pos)
        expect(generated == case["greedy"], f"{name}: greedy {generated}, golden {case['greedy']}")
        text = decode(pieces, tokens[-1], generated)
        expect(text == case["text"], f"{name}: prints {text!r}, golden {case['text']!r}")
        print(f"  {name} -> {text.decode('utf-8', errors='replace')!r}")
    print(f"check: {len(cases)} prompts, largest logit difference {worst:.2e} "
          f"(tolerance {TOLERANCE:.0e})")
    if failures:
        print(f"check: {len(failures)} FAILED")
        sys.exit(1)
    print("check: the exported model matches the golden file")


if __name__ == "__main__":
    main()
