"""Self-check of the SD1 layout code (run by make_fixtures.sh after the generators; no Swift needed).

    /work/refvenv/bin/python compat/reference/check_layout.py

Asserts:
1. The tiny and the full layouts have identical key sets, dtypes and tensor ranks.
2. Our diffusers -> ldm key mapping agrees with diffusers' own ldm -> diffusers single-file converter
   (an independent implementation): converting our tiny ldm dict back gives every module weight, unchanged.
3. The DDPM buffers agree with diffusers' DDPMScheduler "scaled_linear" alphas_cumprod.
4. The committed tiny checkpoint and fixtures/sd15/manifest.json equal what the code builds now.
Exits non-zero with the first mismatch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from diffusers import DDPMScheduler
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
)
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FIXTURES_DIR  # noqa: E402
import sd_layout as L  # noqa: E402
from gen_checkpoint import TINY_CHECKPOINT, dtype_name  # noqa: E402


class LayoutMismatch(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise LayoutMismatch(message)


def check_tiny_vs_full() -> None:
    full = L.key_shapes(L.SD15_FULL)
    tiny = L.key_shapes(L.SD15_TINY)
    check(set(full) == set(tiny), f"key sets differ: {sorted(set(full) ^ set(tiny))[:5]}")
    for key, (shape, dtype) in full.items():
        check(tiny[key][1] == dtype, f"{key}: dtype {tiny[key][1]} (tiny) vs {dtype} (full)")
        check(len(tiny[key][0]) == len(shape), f"{key}: rank {len(tiny[key][0])} (tiny) vs {len(shape)} (full)")
    print(f"tiny vs full: {len(full)} keys, same dtypes and ranks")


def check_against_diffusers_converter(model: L.SD1Model) -> None:
    ldm = model.state_dict
    pairs = (
        ("unet", convert_ldm_unet_checkpoint(ldm, dict(model.unet.config)), model.unet.state_dict()),
        ("vae", convert_ldm_vae_checkpoint(ldm, dict(model.vae.config)), model.vae.state_dict()),
        ("clip", convert_ldm_clip_checkpoint(ldm), model.text_encoder.state_dict()),
    )
    for name, converted, expected in pairs:
        converted = {k: v for k, v in converted.items() if not k.endswith("position_ids")}
        check(set(converted) == set(expected), f"{name}: diffusers' converter gives other keys: "
              f"{sorted(set(converted) ^ set(expected))[:5]}")
        for key, value in expected.items():
            other = converted[key].reshape(value.shape)
            check(torch.equal(other, value), f"{name}: {key} differs after diffusers' ldm conversion")
        print(f"{name}: diffusers' ldm converter recovers all {len(expected)} weights")


def check_schedule() -> None:
    scheduler = DDPMScheduler(num_train_timesteps=L.NUM_TIMESTEPS, beta_start=L.LINEAR_START,
                              beta_end=L.LINEAR_END, beta_schedule="scaled_linear")
    ours = L.ddpm_schedule_buffers()
    diff = (ours["alphas_cumprod"] - scheduler.alphas_cumprod).abs().max().item()
    check(diff < 1e-6, f"alphas_cumprod differs from diffusers' scaled_linear by {diff}")
    check(all(v.dtype == torch.float32 and v.shape == (L.NUM_TIMESTEPS,) for v in ours.values()), "DDPM buffer dtype/shape")
    print(f"DDPM buffers: alphas_cumprod within {diff:.1e} of diffusers' scaled_linear")


def check_committed_files(model: L.SD1Model) -> None:
    manifest = json.loads((FIXTURES_DIR / "sd15" / "manifest.json").read_text())
    full = L.key_shapes(L.SD15_FULL)
    check(manifest["tensor_count"] == len(full), "manifest tensor_count")
    for key, (shape, dtype) in full.items():
        entry = manifest["tensors"].get(key)
        check(entry == {"dtype": dtype_name(dtype), "shape": list(shape)}, f"manifest entry of {key}")
    with safe_open(str(TINY_CHECKPOINT), framework="pt") as handle:
        keys = set(handle.keys())
        check(keys == set(full), f"tiny checkpoint keys differ: {sorted(keys ^ set(full))[:5]}")
        check("random" in handle.metadata().get("sdapi.description", "").lower(), "tiny checkpoint metadata")
        for key in sorted(keys):
            stored = handle.get_tensor(key)
            wanted = model.state_dict[key]
            expected_dtype = wanted.dtype if key in L.NON_WEIGHT_KEYS else torch.float16
            check(stored.dtype == expected_dtype, f"tiny checkpoint {key}: dtype {stored.dtype}")
            check(torch.equal(stored.to(wanted.dtype), wanted), f"tiny checkpoint {key}: values differ")
    print(f"committed: manifest ({len(full)} entries) and {TINY_CHECKPOINT.name} match the code")


def main() -> None:
    with torch.no_grad():
        check_tiny_vs_full()
        model = L.tiny_sd1()
        check_against_diffusers_converter(model)
        check_schedule()
        check_committed_files(model)


if __name__ == "__main__":
    try:
        main()
    except LayoutMismatch as error:
        print(f"check_layout: FAILED: {error}", file=sys.stderr)
        sys.exit(1)
