#!/usr/bin/python3
"""Train the fortune model: a small Llama on DIR/train.tok, checked on DIR/val.tok.

    train.py [--dir DIR] [--size full|tiny] [--steps N] [--seed S]

writes DIR/checkpoint.pt. Same seed, same thread count, same machine: the
same checkpoint, bit for bit (train.py prints a digest of the weights).
"""
import argparse
import hashlib
import math
import os
import time

# Waiting OpenMP threads spin by default; on a machine with other work that
# made every step several times slower. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402 (after the environment is set)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from model import Config, Transformer, parameter_count  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402

# The sizes: "full" is the model step 08 ships, "tiny" checks the pipeline in a minute.
SIZES = {
    "full": dict(config=dict(dim=128, n_layers=5, n_heads=4, n_kv_heads=2, hidden_dim=384,
                             seq_len=256),
                 steps=1600, batch_size=16, learning_rate=2e-3),
    "tiny": dict(config=dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=172,
                             seq_len=64),
                 steps=300, batch_size=16, learning_rate=3e-3),
}
WARMUP_FRACTION = 0.05
FINAL_LR_FRACTION = 0.1
WEIGHT_DECAY = 0.1
EVAL_EVERY = 100
EVAL_WINDOWS = 32


def load_tokens(path):
    return torch.from_numpy(np.fromfile(path, dtype="<u2").astype(np.int64))


def learning_rate(step, steps, peak):
    """Linear warm-up, then a cosine down to FINAL_LR_FRACTION of the peak."""
    warmup = max(1, int(steps * WARMUP_FRACTION))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    floor = peak * FINAL_LR_FRACTION
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def random_batch(data, batch_size, seq_len, generator):
    starts = torch.randint(0, len(data) - seq_len - 1, (batch_size,), generator=generator)
    x = torch.stack([data[s:s + seq_len] for s in starts.tolist()])
    y = torch.stack([data[s + 1:s + seq_len + 1] for s in starts.tolist()])
    return x, y


def validation_windows(data, seq_len):
    """The validation text cut into consecutive windows: the same every time."""
    count = (len(data) - 1) // seq_len
    x = torch.stack([data[i * seq_len:(i + 1) * seq_len] for i in range(count)])
    y = torch.stack([data[i * seq_len + 1:(i + 1) * seq_len + 1] for i in range(count)])
    return x, y


@torch.no_grad()
def evaluate(model, windows, limit=None, batch_size=16):
    model.eval()
    x, y = windows
    if limit is not None:
        x, y = x[:limit], y[:limit]
    total = 0.0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        total += F.cross_entropy(logits.flatten(0, 1), y[i:i + batch_size].flatten(),
                                 reduction="sum").item()
    model.train()
    return total / y.numel()


def make_optimizer(model, peak):
    """AdamW; matrices decay, norm weights do not."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": WEIGHT_DECAY},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=peak, betas=(0.9, 0.95), eps=1e-8)


def weights_digest(model):
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="build/model")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--steps", type=int, help="override the size's step count")
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args()
    size = SIZES[args.size]
    steps = args.steps or size["steps"]

    torch.manual_seed(args.seed)
    torch.set_num_threads(os.cpu_count())
    torch.use_deterministic_algorithms(True)

    tokenizer = Tokenizer.load(os.path.join(args.dir, "tokenizer.bin"))
    config = Config(vocab_size=len(tokenizer.pieces), **size["config"])
    train_data = load_tokens(os.path.join(args.dir, "train.tok"))
    val_windows = validation_windows(load_tokens(os.path.join(args.dir, "val.tok")),
                                     config.seq_len)

    generator = torch.Generator().manual_seed(args.seed)
    model = Transformer(config)
    model.initialise(generator)
    optimizer = make_optimizer(model, size["learning_rate"])
    tokens_per_step = size["batch_size"] * config.seq_len
    print(f"train: {args.size} model, {parameter_count(model)} parameters, {config}")
    print(f"train: {len(train_data)} training tokens, {steps} steps of {tokens_per_step} "
          f"tokens ({steps * tokens_per_step / len(train_data):.1f} epochs), "
          f"{torch.get_num_threads()} threads, seed {args.seed}")

    started = time.time()
    recent = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, size["learning_rate"])
        x, y = random_batch(train_data, size["batch_size"], config.seq_len, generator)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        recent.append(loss.item())
        if (step + 1) % EVAL_EVERY == 0 and step + 1 < steps:
            val = evaluate(model, val_windows, EVAL_WINDOWS)
            elapsed = time.time() - started
            print(f"step {step + 1:5d}/{steps}  train loss {sum(recent) / len(recent):.4f}  "
                  f"val loss {val:.4f}  lr {optimizer.param_groups[0]['lr']:.2e}  "
                  f"{elapsed:.0f} s ({1000 * elapsed / (step + 1):.0f} ms/step)", flush=True)
            recent = []

    elapsed = time.time() - started
    train_loss = sum(recent) / len(recent)
    val_loss = evaluate(model, val_windows)
    print(f"final: train loss {train_loss:.4f} (last {len(recent)} steps), val loss {val_loss:.4f} "
          f"(all {val_windows[1].numel()} validation tokens, perplexity {math.exp(val_loss):.1f})")
    print(f"final: {steps} steps in {elapsed:.0f} s ({1000 * elapsed / steps:.0f} ms/step), "
          f"weights digest {weights_digest(model)}")
    path = os.path.join(args.dir, "checkpoint.pt")
    torch.save({"config": vars(config), "model": model.state_dict(), "seed": args.seed,
                "steps": steps, "size": args.size, "train_loss": train_loss,
                "val_loss": val_loss}, path)
    print(f"train: wrote {path}")


if __name__ == "__main__":
    main()
