"""Pipeline fixtures: hires-fix latent upscaling as A1111 calls torch.nn.functional.interpolate.

    REF_PY=/work/refvenv/bin/python ./compat/reference/make_fixtures.sh     (or run this file with that python)

Writes fixtures/pipeline/latent_upscale.safetensors: an input latent `x` [1, 4, 5, 7] and, for every A1111
latent upscale mode (modules/shared.py latent_upscale_modes) and target size HxW, `<mode>@<H>x<W>`.
"""
import torch
import torch.nn.functional as F

from common import save_tensors, seed_everything

MODES = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
SIZES = [(10, 14), (11, 13), (8, 9), (3, 4)]


def main() -> None:
    g = seed_everything(4242)
    x = torch.randn((1, 4, 5, 7), generator=g)
    out = {"x": x}
    for name, (mode, aa) in MODES.items():
        for h, w in SIZES:
            out[f"{name}@{h}x{w}"] = F.interpolate(x, size=(h, w), mode=mode, antialias=aa)
    save_tensors("pipeline", "latent_upscale.safetensors", out)


if __name__ == "__main__":
    main()
