"""Shared helpers for the reference fixture generators (compat/reference/gen_*.py).

Every generator writes only into fixtures/<area>/ with fixed seeds, so that
`./compat/reference/make_fixtures.sh` is idempotent. Tensors go to F32 safetensors,
small facts go to JSON (sorted keys, 2-space indent, trailing newline).

Usage from a generator in this folder:

    from common import seed_everything, save_tensors, write_json
    seed_everything(1234)
    save_tensors("unet", "resblock.safetensors", {"x": x, "y": y})
    write_json("unet", "resblock.json", {"eps": 1e-5})
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_ROOT / "fixtures"

# Fixtures are read by tests that must stay fast; the rules cap a file at 4 MiB.
MAX_FIXTURE_BYTES = 4 * 1024 * 1024


class FixtureError(Exception):
    """A fixture could not be written as asked (bad name, bad tensor, too large)."""


def seed_everything(seed: int) -> torch.Generator:
    """Seeds Python, NumPy and torch (CPU) and asks torch for deterministic kernels (warns otherwise).

    Returns a torch.Generator seeded with the same value, for code that wants an explicit one.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    return generator


def fixture_path(area: str, filename: str) -> Path:
    """Path of fixtures/<area>/<filename>, creating the folder. Rejects names that escape it."""
    if not area or "/" in area or area.startswith("."):
        raise FixtureError(f"bad fixture area {area!r}")
    if not filename or "/" in filename or filename.startswith("."):
        raise FixtureError(f"bad fixture file name {filename!r} in area {area!r}")
    folder = FIXTURES_DIR / area
    folder.mkdir(parents=True, exist_ok=True)
    return folder / filename


def _as_f32(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise FixtureError(f"tensor {name!r} is a {type(value).__name__}, not a tensor")
    if value.is_complex():
        raise FixtureError(f"tensor {name!r} is complex")
    return value.detach().to(device="cpu", dtype=torch.float32).contiguous()


def save_tensors(
    area: str,
    filename: str,
    tensors: Mapping[str, Any],
    metadata: Mapping[str, str] | None = None,
    max_bytes: int = MAX_FIXTURE_BYTES,
) -> Path:
    """Saves tensors (torch or numpy, any real dtype) as F32 safetensors in fixtures/<area>/<filename>.

    Integer tensors are stored as F32 too (exact up to 2**24); keep integer facts in JSON if larger.
    Raises FixtureError when the file would exceed max_bytes.
    """
    if not filename.endswith(".safetensors"):
        raise FixtureError(f"fixture {filename!r} must end in .safetensors")
    converted = {name: _as_f32(name, value) for name, value in tensors.items()}
    size = sum(t.numel() * 4 for t in converted.values())
    if size > max_bytes:
        raise FixtureError(f"fixture {area}/{filename} would hold {size} bytes (> {max_bytes})")
    return write_safetensors(fixture_path(area, filename), converted, metadata)


def write_json(area: str, filename: str, obj: Any) -> Path:
    """Writes obj as stable JSON (sorted keys, indent 2, newline) to fixtures/<area>/<filename>.

    torch tensors and numpy arrays inside obj are written as (nested) lists of numbers.
    """
    if not filename.endswith(".json"):
        raise FixtureError(f"fixture {filename!r} must end in .json")

    def default(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().tolist()
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, (np.floating, np.integer)):
            return value.item()
        raise TypeError(f"{type(value).__name__} is not JSON serialisable in {filename}")

    path = fixture_path(area, filename)
    text = json.dumps(obj, indent=2, sort_keys=True, default=default, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


_SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def write_safetensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> Path:
    """Writes a safetensors file byte-for-byte deterministically, keeping every tensor's dtype.

    The safetensors library stores __metadata__ from a hash map, so its key order (and the file's
    bytes) change from run to run. Here: metadata keys sorted, tensors laid out in name order (as
    in the SD1.5 release), compact JSON header padded with spaces to a multiple of 8 bytes.
    Tensors are written one at a time, so multi-GiB state dicts do not need a second copy.
    """
    header: dict = {}
    if metadata:
        header["__metadata__"] = {key: str(metadata[key]) for key in sorted(metadata)}
    offset = 0
    names = sorted(tensors)
    for name in names:
        tensor = tensors[name]
        if tensor.dtype not in _SAFETENSORS_DTYPES:
            raise FixtureError(f"tensor {name!r} has dtype {tensor.dtype}, which safetensors cannot hold")
        nbytes = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(len(text).to_bytes(8, "little"))
        handle.write(text)
        for name in names:
            flat = tensors[name].detach().cpu().contiguous().reshape(-1)
            handle.write(flat.view(torch.uint8).numpy().tobytes())
    return path


# ---------------------------------------------------------------- running A1111's own modules
def stub_module(name: str, **attrs):
    """A stand-in module registered under `name` (and as an attribute of its parent package)."""
    import sys
    import types
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    parent, _, leaf = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], leaf, mod)
    return mod


def load_module(name: str, path):
    """Executes the source file `path` as module `name` (e.g. an A1111 `modules.x` file), registered first so that
    its own imports of itself resolve."""
    import importlib.util
    import sys
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    parent, _, leaf = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], leaf, mod)
    spec.loader.exec_module(mod)
    return mod


def clip_tokenizer_from_merges(merges, **kwargs):
    """transformers' CLIPTokenizer for CLIP's BPE `merges` (lines "a b"), with the vocabulary CLIP's
    SimpleTokenizer enumerates: the byte symbols, the same with </w>, one per merge, then the two special tokens."""
    import tempfile
    from transformers import CLIPTokenizer
    byte_chars = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    extra = [b for b in range(256) if b not in byte_chars]
    symbols = [chr(b) for b in byte_chars] + [chr(256 + i) for i in range(len(extra))]
    vocab = symbols + [v + "</w>" for v in symbols] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder = Path(tempfile.mkdtemp())
    (folder / "vocab.json").write_text(json.dumps({v: i for i, v in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), **kwargs)

