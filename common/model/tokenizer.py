#!/usr/bin/python3
"""A byte-fallback BPE tokenizer, trained on the fortunes, in llama2.c's format.

The vocabulary, by id:
    0           <unk>   (never produced; kept so ids match llama2.c's layout)
    1           <s>     BOS: starts every fortune; generation stops when it comes out
    2           </s>    EOS (unused by the fortunes, kept for the layout)
    3 .. 258    <0x00> .. <0xFF>   byte fallback: id 3+b stands for the byte b
    259 .. 354  the 95 printable ASCII characters and "\\n", one token each
    355 ..      merged tokens, in the order training created them

Encoding is llama2.c's algorithm, and the kernel's must be the same one:
put a space before the text (the "dummy prefix"), turn every character into
its token, or into the byte tokens of its UTF-8 bytes when it has none, then
repeatedly merge the adjacent pair whose concatenated text is a token with
the highest score, the leftmost such pair on a tie, until no pair merges.
Scores are 0 for single tokens and -k for the k-th merge, so merges happen
in training order.

Training is plain BPE (Sennrich et al., 2016) over "words": the text is cut
into runs of letters, of digits, of punctuation (each may carry one leading
space) and of whitespace, and pairs are merged only inside a word, so no
token mixes those kinds. That keeps the special and byte-token spellings
("<s>", "<0x41>") out of reach of any merge.

    tokenizer.py train [--dir DIR] [--vocab-size N]   DIR/train.txt -> DIR/tokenizer.bin
    tokenizer.py encode [--dir DIR]                   DIR/{train,val}.txt -> DIR/{train,val}.tok
    tokenizer.py show [--dir DIR] TEXT                the tokens of TEXT

A .tok file is the fortunes' token ids, each fortune starting with BOS, as
little-endian uint16.
"""
import argparse
import array
import heapq
import os
import re
import struct
import sys
from collections import Counter, defaultdict

import corpus

UNK, BOS, EOS = 0, 1, 2
SPECIALS = ["<unk>", "<s>", "</s>"]
BYTE_BASE = len(SPECIALS)
CHARACTERS = [chr(c) for c in range(0x20, 0x7F)] + ["\n"]
VOCAB_SIZE = 1024

WORD = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


def byte_piece(b):
    return f"<0x{b:02X}>"


def base_vocabulary():
    return SPECIALS + [byte_piece(b) for b in range(256)] + CHARACTERS


class Tokenizer:
    def __init__(self, pieces, scores):
        self.pieces = pieces
        self.scores = scores
        self.ids = {piece: i for i, piece in enumerate(pieces)}
        if len(self.ids) != len(pieces):
            raise ValueError("tokenizer: two tokens share a spelling")

    # llama2.c's tokenizer.bin: int32 max_token_length, then per token
    # float32 score, int32 length, the bytes (no terminator).
    def save(self, path):
        encoded = [piece.encode("utf-8") for piece in self.pieces]
        with open(path, "wb") as f:
            f.write(struct.pack("<i", max(len(e) for e in encoded)))
            for data, score in zip(encoded, self.scores):
                f.write(struct.pack("<fi", score, len(data)))
                f.write(data)

    @classmethod
    def load(cls, path):
        with open(path, "rb") as f:
            data = f.read()
        offset = 4
        pieces, scores = [], []
        while offset < len(data):
            score, length = struct.unpack_from("<fi", data, offset)
            offset += 8
            pieces.append(data[offset:offset + length].decode("utf-8"))
            scores.append(score)
            offset += length
        return cls(pieces, scores)

    def initial_tokens(self, text):
        tokens = []
        for ch in text:
            if ch in self.ids:
                tokens.append(self.ids[ch])
            else:
                tokens.extend(BYTE_BASE + b for b in ch.encode("utf-8"))
        return tokens

    def encode(self, text, bos=True, eos=False):
        """llama2.c's encode; a heap finds the best pair instead of a scan.

        Heap entries are (-score, position, left token, right token); the
        position of a token is the index of its first character, which
        never changes, so the smallest position is the leftmost pair. An
        entry whose tokens no longer sit at that position is stale.
        """
        tokens = self.initial_tokens(" " + text) if text else []
        following = list(range(1, len(tokens))) + [-1]
        preceding = list(range(-1, len(tokens) - 1))
        heap = []

        def offer(i):
            j = following[i] if i >= 0 else -1
            if i < 0 or j < 0:
                return
            merged = self.ids.get(self.pieces[tokens[i]] + self.pieces[tokens[j]])
            if merged is not None:
                heapq.heappush(heap, (-self.scores[merged], i, tokens[i], tokens[j], merged))

        for i in range(len(tokens) - 1):
            offer(i)
        while heap:
            _, i, left, right, merged = heapq.heappop(heap)
            j = following[i]
            if tokens[i] != left or j < 0 or tokens[j] != right:
                continue
            tokens[i] = merged
            tokens[j] = -1
            following[i] = following[j]
            if following[j] >= 0:
                preceding[following[j]] = i
            offer(preceding[i])
            offer(i)
        ids = [t for t in tokens if t >= 0]
        return ([BOS] if bos else []) + ids + ([EOS] if eos else [])

    def piece_bytes(self, previous, token):
        """What the kernel prints for token after previous (llama2.c's decode)."""
        if BYTE_BASE <= token < BYTE_BASE + 256:
            return bytes([token - BYTE_BASE])
        piece = self.pieces[token]
        if previous == BOS and piece.startswith(" "):
            piece = piece[1:]
        return piece.encode("utf-8")

    def decode(self, tokens):
        out, previous = b"", BOS
        for token in tokens:
            if token in (BOS, EOS):
                previous = token
                continue
            out += self.piece_bytes(previous, token)
            previous = token
        return out.decode("utf-8", errors="replace")


def word_counts(fortunes):
    counts = Counter()
    for fortune in fortunes:
        counts.update(WORD.findall(" " + fortune))
    return counts


def train(fortunes, vocab_size):
    """Plain BPE with incremental pair counts: merge the most frequent pair
    (ties: the smallest pair in string order) until the vocabulary is full."""
    pieces = base_vocabulary()
    scores = [0.0] * len(pieces)
    known = set(pieces)
    mergeable = set(CHARACTERS)
    words, freqs = [], []
    for word, count in sorted(word_counts(fortunes).items()):
        split = []
        for ch in word:
            split += [ch] if ch in known else [byte_piece(b) for b in ch.encode("utf-8")]
        words.append(split)
        freqs.append(count)

    pair_counts = Counter()
    where = defaultdict(set)

    def count_pairs(w, sign):
        split = words[w]
        for a, b in zip(split, split[1:]):
            if a in mergeable and b in mergeable:
                pair_counts[a, b] += sign * freqs[w]
                if sign > 0:
                    where[a, b].add(w)

    for w in range(len(words)):
        count_pairs(w, +1)

    merges = 0
    while len(pieces) < vocab_size:
        best = min((pair for pair, n in pair_counts.items() if n > 0),
                   key=lambda pair: (-pair_counts[pair], pair), default=None)
        if best is None or pair_counts[best] < 2:
            break
        merged = best[0] + best[1]
        mergeable.add(merged)
        for w in sorted(where.pop(best)):
            count_pairs(w, -1)
            words[w] = merge_pair(words[w], best, merged)
            count_pairs(w, +1)
        del pair_counts[best]
        if merged not in known:
            known.add(merged)
            pieces.append(merged)
            scores.append(float(-merges))
            merges += 1
    return Tokenizer(pieces, scores)


def merge_pair(split, pair, merged):
    out, i = [], 0
    while i < len(split):
        if i + 1 < len(split) and (split[i], split[i + 1]) == pair:
            out.append(merged)
            i += 2
        else:
            out.append(split[i])
            i += 1
    return out


def encode_file(tokenizer, text_path, token_path):
    ids = array.array("H")
    for fortune in corpus.read_fortune_file(text_path):
        ids.extend(tokenizer.encode(fortune))
    if sys.byteorder != "little":
        ids.byteswap()
    with open(token_path, "wb") as f:
        ids.tofile(f)
    return len(ids)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["train", "encode", "show"])
    parser.add_argument("text", nargs="?")
    parser.add_argument("--dir", default="build/model")
    parser.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    args = parser.parse_intermixed_args()  # lets TEXT come after --dir
    path = os.path.join(args.dir, "tokenizer.bin")
    if args.command == "train":
        fortunes = corpus.read_fortune_file(os.path.join(args.dir, "train.txt"))
        tokenizer = train(fortunes, args.vocab_size)
        tokenizer.save(path)
        print(f"tokenizer: {len(tokenizer.pieces)} tokens, "
              f"longest {max(len(p.encode()) for p in tokenizer.pieces)} bytes -> {path}")
    elif args.command == "encode":
        tokenizer = Tokenizer.load(path)
        for split in ("train", "val"):
            text_path = os.path.join(args.dir, f"{split}.txt")
            n = encode_file(tokenizer, text_path, os.path.join(args.dir, f"{split}.tok"))
            chars = sum(len(f) for f in corpus.read_fortune_file(text_path))
            print(f"tokenizer: {split}: {n} tokens, {chars / n:.2f} characters per token")
    else:
        tokenizer = Tokenizer.load(path)
        ids = tokenizer.encode(args.text or "")
        print(ids)
        print([tokenizer.pieces[i] for i in ids])
        print(repr(tokenizer.decode(ids)))


if __name__ == "__main__":
    main()
