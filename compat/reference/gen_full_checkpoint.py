"""Full-size random SD1.5 checkpoints in the real single-file layout, on demand (never committed).

    make full-checkpoint                       # fp16 safetensors under .build-data/ (git-ignored)
    /work/refvenv/bin/python compat/reference/gen_full_checkpoint.py \\
        --dtype fp32|fp16|bf16 --format safetensors|ckpt [--seed N] OUT
    /work/refvenv/bin/python compat/reference/gen_full_checkpoint.py --stats [--tiny]

The file has the 1145 tensors of the released `v1-5-pruned-emaonly` checkpoint with their real
shapes (sd_layout.SD15_FULL): network weights in the chosen dtype, the 12 DDPM buffers in F32,
position_ids I64, model_ema.decay F32, model_ema.num_updates I32. `ckpt` is what real releases ship:
torch.save({"state_dict": ...}) as a zip pickle whose root folder is "archive/". Same seed, same
weights. Uses: benchmarks at the real size, loader proofs (safetensors / ckpt, fp32 / fp16 / bf16),
and the local A1111 reference (it needs a real-layout checkpoint and reads alphas_cumprod from it).

Weights are random but scaled (see sd_layout UNET_OUT_GAIN, CROSS_ATTN_VALUE_GAIN) so that images are
not saturated and change with the prompt; `--stats` measures that with a small Euler + CFG loop in
PyTorch and the model's own VAE.

Sizes: fp32 ~4.0 GiB, fp16 / bf16 ~2.0 GiB; building takes ~20 s and ~5 GiB of RAM.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_safetensors  # noqa: E402
import sd_layout as L  # noqa: E402

DEFAULT_SEED = 1505
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

BOS, EOS = 49406, 49407


def metadata(dtype_name: str, seed: int) -> Dict[str, str]:
    return {
        "format": "pt",
        "sdapi.description": (
            "RANDOM-WEIGHT TEST MODEL, not a trained model. Real SD1.5 single-file layout and sizes, "
            "for benchmarks and loader tests."
        ),
        "sdapi.generator": "compat/reference/gen_full_checkpoint.py (make full-checkpoint)",
        "sdapi.seed": str(seed),
        "sdapi.dtype": dtype_name,
    }


def write_checkpoint(out: Path, dtype_name: str, file_format: str, seed: int) -> None:
    model = L.build_sd1(L.SD15_FULL, seed)
    state = L.cast_weights(model.state_dict, DTYPES[dtype_name])
    out.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "safetensors":
        write_safetensors(out, state, metadata(dtype_name, seed))
    else:
        # A file object (not a path) makes torch name the zip root "archive/", as in real releases.
        with open(out, "wb") as handle:
            torch.save({"state_dict": state}, handle)
    print(f"{out}: {len(state)} tensors, {dtype_name} {file_format}, {out.stat().st_size / 2**30:.2f} GiB")


def _encode(text_encoder, ids: List[int]) -> torch.Tensor:
    # A1111 pads a chunk with EOS up to 77 tokens and uses the last hidden state (clip skip 1).
    padded = ids + [EOS] * (77 - len(ids))
    return text_encoder(torch.tensor([padded])).last_hidden_state  # [1, 77, C]


def sampling_stats(model: L.SD1Model, size: int, steps: int, cfg_scale: float = 7.0, seed: int = 0) -> dict:
    """Euler (eps, k-diffusion style c_in) with CFG on two random prompts; image spread and prompt effect."""
    generator = torch.Generator().manual_seed(seed)
    alphas_cumprod = model.state_dict["alphas_cumprod"].double()
    all_sigmas = ((1 - alphas_cumprod) / alphas_cumprod).sqrt()
    prompts = [[BOS] + torch.randint(300, 40000, (6,), generator=generator).tolist() + [EOS] for _ in range(2)]
    uncond = _encode(model.text_encoder, [BOS, EOS])
    conds = [_encode(model.text_encoder, p) for p in prompts]
    latent = size // 8
    noise = torch.randn(1, 4, latent, latent, generator=generator)  # [1, 4, h, w]
    timesteps = torch.linspace(999, 0, steps).round().long()
    sigmas = torch.cat([all_sigmas[timesteps], torch.zeros(1)]).float()
    images, first_step = [], []
    for cond in conds:
        x = noise * sigmas[0]
        for i in range(steps):
            sigma = sigmas[i]
            c_in = 1 / (sigma**2 + 1).sqrt()
            eps = model.unet(torch.cat([x, x]) * c_in, timesteps[i], encoder_hidden_states=torch.cat([uncond, cond])).sample
            eps_u, eps_c = eps.chunk(2)
            if i == 0:
                first_step.append({"eps_std": eps_c.std().item(), "cond_change": ((eps_c - eps_u).norm() / eps_u.norm()).item()})
            x = x + (eps_u + cfg_scale * (eps_c - eps_u)) * (sigmas[i + 1] - sigma)
        images.append(model.vae.decode(x / model.config.vae.scale_factor).sample.clamp(-1, 1))  # [1, 3, H, W]
    return {
        "first_step": first_step,
        "saturated_fraction": [((img <= -1) | (img >= 1)).float().mean().item() for img in images],
        "pixel_std_0_255": [img.std().item() * 127.5 for img in images],
        "prompt_pixel_diff_0_255": (images[0] - images[1]).abs().mean().item() * 127.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, help="output file (.safetensors or .ckpt)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp16")
    parser.add_argument("--format", choices=["safetensors", "ckpt"], default="safetensors")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--stats", action="store_true", help="print sampling statistics instead of writing")
    parser.add_argument("--tiny", action="store_true", help="with --stats: the tiny config")
    args = parser.parse_args()
    with torch.no_grad():
        if args.stats:
            config = L.SD15_TINY if args.tiny else L.SD15_FULL
            model = L.build_sd1(config, args.seed)
            steps = 20 if args.tiny else 10
            print(json.dumps(sampling_stats(model, size=64, steps=steps), indent=2))
            return
        if args.out is None:
            parser.error("OUT is required unless --stats")
        write_checkpoint(args.out, args.dtype, args.format, args.seed)


if __name__ == "__main__":
    main()
