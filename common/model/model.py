"""The Llama architecture in PyTorch, laid out the way llama2.c's run.c computes it.

Every choice here is one the kernel's C code has to make the same way:
  - RMSNorm with epsilon 1e-5, weight applied after normalising;
  - rotary embeddings that rotate ADJACENT pairs (x[2i], x[2i+1]) of each
    head by the angle pos * 10000^(-2i/head_size), like multiplying the
    complex number x[2i] + j*x[2i+1] by e^(j*angle);
  - grouped-query attention: query head h reads key/value head
    h // (n_heads // n_kv_heads), so consecutive query heads share one;
  - a SwiGLU feed-forward w2(silu(w1 x) * w3 x);
  - no biases anywhere; nn.Linear stores weights as (out, in), which is the
    row-major (d, n) matrix run.c's matmul expects.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

ROPE_THETA = 10000.0
NORM_EPS = 1e-5


@dataclass
class Config:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    hidden_dim: int
    vocab_size: int
    seq_len: int
    shared_classifier: bool = True

    @property
    def head_size(self):
        return self.dim // self.n_heads


def rope_tables(head_size, seq_len):
    """cos and sin of every (position, pair) angle: (seq_len, head_size/2) each."""
    exponents = torch.arange(0, head_size, 2, dtype=torch.float32) / head_size
    frequencies = 1.0 / (ROPE_THETA ** exponents)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), frequencies)
    return torch.cos(angles), torch.sin(angles)


def rotate(x, cos, sin):
    """x: (batch, time, heads, head_size); rotates adjacent pairs in place of complex numbers."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    even, odd = pairs[..., 0], pairs[..., 1]
    cos = cos[: x.shape[1]].view(1, x.shape[1], 1, -1)
    sin = sin[: x.shape[1]].view(1, x.shape[1], 1, -1)
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2)


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS))


class Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_size = config.head_size
        kv_dim = config.n_kv_heads * config.head_size
        self.wq = nn.Linear(config.dim, config.n_heads * config.head_size, bias=False)
        self.wk = nn.Linear(config.dim, kv_dim, bias=False)
        self.wv = nn.Linear(config.dim, kv_dim, bias=False)
        self.wo = nn.Linear(config.n_heads * config.head_size, config.dim, bias=False)

    def forward(self, x, cos, sin, mask):
        batch, time, _ = x.shape
        q = self.wq(x).view(batch, time, self.n_heads, self.head_size)
        k = self.wk(x).view(batch, time, self.n_kv_heads, self.head_size)
        v = self.wv(x).view(batch, time, self.n_kv_heads, self.head_size)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        # repeat_interleave gives kv heads 0,0,1,1,...: query head h gets h // group.
        group = self.n_heads // self.n_kv_heads
        k = k.repeat_interleave(group, dim=2)
        v = v.repeat_interleave(group, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (batch, heads, time, head_size)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_size)
        scores = scores.masked_fill(mask[:time, :time], float("-inf"))
        out = F.softmax(scores, dim=-1) @ v
        return self.wo(out.transpose(1, 2).reshape(batch, time, -1))


class FeedForward(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.w1 = nn.Linear(config.dim, config.hidden_dim, bias=False)
        self.w2 = nn.Linear(config.hidden_dim, config.dim, bias=False)
        self.w3 = nn.Linear(config.dim, config.hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attention_norm = RMSNorm(config.dim)
        self.attention = Attention(config)
        self.ffn_norm = RMSNorm(config.dim)
        self.feed_forward = FeedForward(config)

    def forward(self, x, cos, sin, mask):
        x = x + self.attention(self.attention_norm(x), cos, sin, mask)
        return x + self.feed_forward(self.ffn_norm(x))


class Transformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.dim % config.n_heads or config.n_heads % config.n_kv_heads:
            raise ValueError("dim must divide into heads, heads into kv heads")
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.dim)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
        if config.shared_classifier:
            self.output.weight = self.tok_embeddings.weight
        cos, sin = rope_tables(config.head_size, config.seq_len)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        mask = torch.triu(torch.ones(config.seq_len, config.seq_len, dtype=torch.bool), 1)
        self.register_buffer("causal_mask", mask, persistent=False)

    def initialise(self, generator):
        """GPT-2's scheme: N(0, 0.02), residual outputs scaled by 1/sqrt(2 layers)."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layers)
        for name, parameter in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(parameter)
            else:
                std = residual_std if name.endswith(("wo.weight", "w2.weight")) else 0.02
                with torch.no_grad():
                    parameter.normal_(0.0, std, generator=generator)

    def forward(self, tokens):
        """tokens: (batch, time) → logits (batch, time, vocab)."""
        x = self.tok_embeddings(tokens)
        for layer in self.layers:
            x = layer(x, self.rope_cos, self.rope_sin, self.causal_mask)
        return self.output(self.norm(x))


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())
