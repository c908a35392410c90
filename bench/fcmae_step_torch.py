#!/usr/bin/python3
"""PyTorch side of bench/fcmae_step.ts: one FCMAE pretraining step (dense-masked encoder, decoder,
norm-pix loss, backward, AdamW betas (0.9, 0.95)) with the same architecture, float32, on CPU.

The model is the reference of test/fcmae/make_fcmae_fixtures.py (the parity tests' PyTorch side),
instantiated at the requested size. Prints one JSON object: images_per_s (median of --repeats runs
of --steps steps after --warmup), threads, peak RSS.

Usage: /usr/bin/python3 bench/fcmae_step_torch.py [--arch atto] [--batch 8] [--size 224] [--steps 3]
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "fcmae"))
sys.path.insert(0, os.path.join(HERE, "..", "test", "parity"))
sys.dont_write_bytecode = True

import torch  # noqa: E402

import make_fcmae_fixtures as ref  # noqa: E402

ARCHS = {"atto": ([2, 2, 6, 2], [40, 80, 160, 320]), "femto": ([2, 2, 6, 2], [48, 96, 192, 384]),
         "pico": ([2, 2, 6, 2], [64, 128, 256, 512]), "nano": ([2, 2, 8, 2], [80, 160, 320, 640]),
         "tiny": ([3, 3, 9, 3], [96, 192, 384, 768])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="atto", choices=sorted(ARCHS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--decoder-dim", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--grn-stats", default="image", choices=["image", "batch"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ref.DEPTHS, ref.DIMS = ARCHS[a.arch]
    ref.DEC_DIM, ref.DEC_DEPTH = a.decoder_dim, 1
    gen = torch.Generator().manual_seed(0)
    params = {k: v.float().requires_grad_(True) for k, v in ref.random_weights(gen).items()}
    opt = torch.optim.AdamW(list(params.values()), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    x = torch.randn((a.batch, 3, a.size, a.size), generator=gen)
    l = (a.size // 32) ** 2
    keep = int(l * (1 - 0.6))
    mask = torch.ones(a.batch, l)
    for i in range(a.batch):
        mask[i, torch.randperm(l, generator=gen)[:keep]] = 0

    def step():
        opt.zero_grad()
        loss, _, _ = ref.forward(params, x, mask, a.grn_stats)
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(a.warmup):
        step()
    rates = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        rates.append(a.batch * a.steps / (time.perf_counter() - t0))
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "arch": a.arch, "batch": a.batch, "size": a.size,
                      "threads": a.threads, "images_per_s": statistics.median(rates), "runs": rates,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
