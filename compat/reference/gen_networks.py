"""Parity fixtures for the Swift UNet and VAE (Sources/Networks), computed with diffusers modules.

    REF_PY=/work/refvenv/bin/python ./compat/reference/make_fixtures.sh   # runs this script
    /work/refvenv/bin/python compat/reference/gen_networks.py              # alone

The weights are those of the committed tiny checkpoint
(Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors, built by sd_layout.tiny_sd1(): real SD1.5
key layout, UNet model_channels 32 / 8 heads / context 32, VAE ch 32, fp16-rounded). The Swift tests load that
file through its ldm keys; this script runs diffusers' UNet2DConditionModel / AutoencoderKL holding the very
same numbers (sd_layout converts their state dicts to ldm keys), so agreement checks the Swift key mapping and
every layer at once. Only inputs and outputs are stored here.

Outputs in fixtures/networks/ (F32 safetensors, fixed seeds):
- unet_tiny.safetensors: x [2,4,16,16], timesteps [2] (non-integer, as k-diffusion samplers give),
  context [2,77,32], eps = unet(x, t, context); and with ControlNet-style residuals: down_0..down_11
  (shaped like the 12 input-block outputs), mid, eps_residual = unet(..., down/mid residuals).
- vae_tiny.safetensors: latent [1,4,8,8] (scaled, as samplers produce), decoded = vae.decode(latent / 0.18215);
  image [1,3,64,64] in [-1,1], mean / logvar of the posterior, noise, sample = 0.18215 (mean + std noise).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_tensors, seed_everything  # noqa: E402
import sd_layout as L  # noqa: E402

SEED = 2024


def unet_fixture(model: L.SD1Model, gen: torch.Generator) -> dict:
    cfg = model.config.unet
    x = torch.randn(2, cfg.in_channels, 16, 16, generator=gen)
    timesteps = torch.tensor([999.0, 17.625])
    context = torch.randn(2, 77, cfg.context_dim, generator=gen)
    with torch.no_grad():
        eps = model.unet(x, timesteps, encoder_hidden_states=context).sample
        # Shapes of the 12 input-block outputs (conv_in, then resnets/attention and downsamplers per level).
        shapes = []
        size, levels = 16, len(cfg.channel_mult)
        shapes.append((2, cfg.model_channels, size, size))
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                shapes.append((2, cfg.model_channels * mult, size, size))
            if level != levels - 1:
                size //= 2
                shapes.append((2, cfg.model_channels * mult, size, size))
        downs = [0.5 * torch.randn(*s, generator=gen) for s in shapes]
        width = cfg.model_channels * cfg.channel_mult[-1]
        mid = 0.5 * torch.randn(2, width, size, size, generator=gen)
        eps_residual = model.unet(
            x, timesteps, encoder_hidden_states=context,
            down_block_additional_residuals=tuple(downs), mid_block_additional_residual=mid,
        ).sample
    tensors = {"x": x, "timesteps": timesteps, "context": context, "eps": eps, "mid": mid, "eps_residual": eps_residual}
    tensors.update({f"down_{i}": d for i, d in enumerate(downs)})
    return tensors


def vae_fixture(model: L.SD1Model, gen: torch.Generator) -> dict:
    scale = model.config.vae.scale_factor
    latent = torch.randn(1, 4, 8, 8, generator=gen)
    image = torch.rand(1, 3, 64, 64, generator=gen) * 2 - 1
    noise = torch.randn(1, 4, 8, 8, generator=gen)
    with torch.no_grad():
        decoded = model.vae.decode(latent / scale).sample
        posterior = model.vae.encode(image).latent_dist
        sample = scale * (posterior.mean + posterior.std * noise)
    return {
        "latent": latent, "decoded": decoded, "image": image, "mean": posterior.mean,
        "logvar": posterior.logvar, "noise": noise, "sample": sample,
    }


def main() -> None:
    model = L.tiny_sd1()
    gen = seed_everything(SEED)
    meta = {"checkpoint": "Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors", "seed": str(SEED)}
    save_tensors("networks", "unet_tiny.safetensors", unet_fixture(model, gen), metadata=meta)
    save_tensors("networks", "vae_tiny.safetensors", vae_fixture(model, gen), metadata=meta)


if __name__ == "__main__":
    main()
