"""Writes the SD1.5 key manifest and the embedded tiny random checkpoint.

    REF_PY=/work/refvenv/bin/python ./compat/reference/make_fixtures.sh   # runs this script
    /work/refvenv/bin/python compat/reference/gen_checkpoint.py            # alone

Outputs (deterministic: same bytes on every run with the pinned torch):
- fixtures/sd15/manifest.json: every tensor of the released `v1-5-pruned-emaonly.safetensors`
  (fp32) with its safetensors dtype and shape, 1145 entries. The key set is checked here against the
  byte size of the released file (4,265,146,304 bytes): a safetensors file's size is 8 + header +
  data, the data size follows from shapes and dtypes, and the header from names, shapes and
  offsets. With all 1145 tensors (incl. position_ids I64 and model_ema.decay F32 /
  model_ema.num_updates I32), offsets in name order and `{"format":"pt"}` metadata, the size matches
  to the byte; without the two model_ema scalars it is 182 bytes short, without position_ids 744.
- fixtures/sd15/tiny_manifest.json: the same for the tiny model (shapes differ, keys are identical).
- Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors: the tiny random model
  (sd_layout.SD15_TINY, seed sd_layout.TINY_SEED): weights F16, DDPM buffers F32, position_ids I64,
  EMA scalars F32/I32. Its __metadata__ says it is a random-weight test model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, Mapping, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, write_json, write_safetensors  # noqa: E402
import sd_layout as L  # noqa: E402

TINY_CHECKPOINT = REPO_ROOT / "Models" / "Stable-diffusion" / "sdapi-random-test-tiny-sd15.safetensors"

# runwayml/stable-diffusion-v1-5, v1-5-pruned-emaonly.safetensors (git-lfs pointer size).
RELEASED_FILE = "v1-5-pruned-emaonly.safetensors"
RELEASED_FILE_BYTES = 4265146304
RELEASED_METADATA = {"format": "pt"}

SAFETENSORS_DTYPE = {
    torch.float32: ("F32", 4),
    torch.float16: ("F16", 2),
    torch.bfloat16: ("BF16", 2),
    torch.int64: ("I64", 8),
    torch.int32: ("I32", 4),
}


class CheckpointError(Exception):
    """The generated layout disagrees with the released file, or a file could not be written."""


def dtype_name(dtype: torch.dtype) -> str:
    if dtype not in SAFETENSORS_DTYPE:
        raise CheckpointError(f"no safetensors dtype for {dtype}")
    return SAFETENSORS_DTYPE[dtype][0]


def safetensors_file_size(shapes: Mapping[str, Tuple[Tuple[int, ...], torch.dtype]], metadata: Mapping[str, str]) -> int:
    """Byte size of a safetensors file holding these tensors, laid out in name order with an
    unpadded compact JSON header (the writer of the 2022 SD1.5 release)."""
    header: Dict[str, object] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for key in sorted(shapes):
        shape, dtype = shapes[key]
        count = 1
        for dim in shape:
            count *= dim
        nbytes = count * SAFETENSORS_DTYPE[dtype][1]
        header[key] = {"dtype": dtype_name(dtype), "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    return 8 + len(json.dumps(header, separators=(",", ":"))) + offset


def manifest(shapes: Mapping[str, Tuple[Tuple[int, ...], torch.dtype]], name: str, extra: Mapping[str, object]) -> dict:
    return {
        "model": name,
        "tensor_count": len(shapes),
        "tensors": {key: {"dtype": dtype_name(d), "shape": list(s)} for key, (s, d) in sorted(shapes.items())},
        **extra,
    }


def write_manifests() -> Dict[str, Tuple[Tuple[int, ...], torch.dtype]]:
    full = L.key_shapes(L.SD15_FULL)
    size = safetensors_file_size(full, RELEASED_METADATA)
    if size != RELEASED_FILE_BYTES:
        raise CheckpointError(f"full layout gives a {size}-byte {RELEASED_FILE}, the release has {RELEASED_FILE_BYTES}")
    write_json(
        "sd15",
        "manifest.json",
        manifest(
            full,
            "sd15-full",
            {
                "released_file": RELEASED_FILE,
                "released_file_bytes": RELEASED_FILE_BYTES,
                "note": "fp32 release; size check in compat/reference/gen_checkpoint.py",
            },
        ),
    )
    tiny = L.key_shapes(L.SD15_TINY)
    if set(tiny) != set(full):
        raise CheckpointError(f"tiny and full key sets differ: {sorted(set(tiny) ^ set(full))[:5]}")
    write_json("sd15", "tiny_manifest.json", manifest(tiny, "sd15-tiny", {"note": "shapes of the F32 layout"}))
    return full


def tiny_metadata() -> Dict[str, str]:
    cfg = L.SD15_TINY
    return {
        "format": "pt",
        "sdapi.description": (
            "RANDOM-WEIGHT TEST MODEL, not a trained model: its images are noise-like. Real SD1.5 single-file "
            "layout (ldm keys) with tiny channel counts, for tests and for running the server out of the box."
        ),
        "sdapi.generator": "compat/reference/gen_checkpoint.py (make fixtures)",
        "sdapi.seed": str(L.TINY_SEED),
        "sdapi.config": json.dumps(
            {
                "unet": {"model_channels": cfg.unet.model_channels, "channel_mult": list(cfg.unet.channel_mult),
                         "num_res_blocks": cfg.unet.num_res_blocks, "num_heads": cfg.unet.num_heads,
                         "context_dim": cfg.unet.context_dim},
                "vae": {"ch": cfg.vae.ch, "ch_mult": list(cfg.vae.ch_mult), "z_channels": cfg.vae.z_channels},
                "clip": {"width": cfg.clip.width, "layers": cfg.clip.layers, "heads": cfg.clip.heads,
                         "intermediate": cfg.clip.intermediate, "vocab_size": cfg.clip.vocab_size,
                         "max_positions": cfg.clip.max_positions},
            },
            sort_keys=True,
        ),
    }


def write_tiny_checkpoint() -> Path:
    model = L.tiny_sd1()
    state = L.cast_weights(model.state_dict, torch.float16)
    # tiny_sd1() rounded the weights through fp16 already: the cast must be exact.
    for key, value in state.items():
        if value.dtype == torch.float16 and not torch.equal(value.float(), model.state_dict[key]):
            raise CheckpointError(f"{key} changed when cast to fp16")
    return write_safetensors(TINY_CHECKPOINT, state, tiny_metadata())


def main() -> None:
    full = write_manifests()
    path = write_tiny_checkpoint()
    print(f"manifest: {len(full)} tensors; tiny checkpoint {path.relative_to(REPO_ROOT)} "
          f"({path.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
