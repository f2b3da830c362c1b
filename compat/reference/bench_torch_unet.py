"""PyTorch CPU anchor for the network benchmarks (`make bench`; Sources/sdbench/NetworkBenchmarks.swift runs it).

    /work/refvenv/bin/python compat/reference/bench_torch_unet.py --stage unet --size 512 --threads 2
    /work/refvenv/bin/python compat/reference/bench_torch_unet.py --stage vae --size 512 --threads 2

Builds the full-size SD1.5 diffusers module (sd_layout.SD15_FULL configuration, library random init, fp32,
eval, no_grad) and times, best of --repeats after one warm-up:
- unet: one CFG step, batch 2, latent size/8, timesteps [500, 500], context [2, 77, 768];
- vae: decode of one latent [1, 4, size/8, size/8].
Prints one JSON line: {"stage", "size", "threads", "seconds", "torch"}. Weights are random: speed does not
depend on their values.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sd_layout as L  # noqa: E402


def best_of(repeats: int, fn) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=["unet", "vae"], required=True)
    parser.add_argument("--size", type=int, default=512, help="image size in pixels (latent = size / 8)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    latent = args.size // 8
    config = L.SD15_FULL
    with torch.no_grad():
        if args.stage == "unet":
            model = UNet2DConditionModel(**L.diffusers_unet_kwargs(config.unet)).eval()
            x = torch.randn(2, 4, latent, latent)
            t = torch.tensor([500.0, 500.0])
            context = torch.randn(2, 77, config.unet.context_dim)
            seconds = best_of(args.repeats, lambda: model(x, t, encoder_hidden_states=context))
        else:
            model = AutoencoderKL(**L.diffusers_vae_kwargs(config.vae)).eval()
            z = torch.randn(1, 4, latent, latent)
            seconds = best_of(args.repeats, lambda: model.decode(z))
    print(json.dumps({"stage": args.stage, "size": args.size, "threads": args.threads, "seconds": seconds,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
