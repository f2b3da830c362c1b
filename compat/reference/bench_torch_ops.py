"""PyTorch CPU anchor for `sdbench ops` (Sources/sdbench/OpsBenchmarks.swift runs it in the same `make bench`).

    /work/refvenv/bin/python compat/reference/bench_torch_ops.py --threads 2 --repeats 3

Times the same ops at the same shapes in fp32 with torch.set_num_threads(threads), best of --repeats after one
warm-up, and prints one JSON object {op name: seconds}. The names must equal OpsBenchmarks.ops().
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def best_of(repeats, fn):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    out = {}
    with torch.no_grad():
        for m, n, k in [(4096, 2880, 320), (4096, 320, 320), (1024, 1280, 1280)]:
            a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
            out[f"sgemm {m}x{n}x{k}"] = best_of(args.repeats, lambda: a @ b)
        x, w, bias = torch.randn(1, 320, 64, 64, generator=g), torch.randn(320, 320, 3, 3, generator=g), torch.randn(320, generator=g)
        out["conv3x3 320->320 64x64"] = best_of(args.repeats, lambda: F.conv2d(x, w, bias, padding=1))
        q, k, v = (torch.randn(1, 8, 4096, 40, generator=g) for _ in range(3))
        out["attention 4096x4096 8x40"] = best_of(args.repeats, lambda: F.scaled_dot_product_attention(q, k, v))
        kc, vc = torch.randn(1, 8, 77, 40, generator=g), torch.randn(1, 8, 77, 40, generator=g)
        out["attention 4096x77 8x40"] = best_of(args.repeats, lambda: F.scaled_dot_product_attention(q, kc, vc))
        gw, gb = torch.randn(320, generator=g), torch.randn(320, generator=g)
        out["groupnorm 32g 320ch 64x64"] = best_of(args.repeats, lambda: F.group_norm(x, 32, gw, gb))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
