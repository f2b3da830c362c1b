"""Fixtures for the ModelIO readers and hashes (fixtures/modelio/).

    REF_PY=/work/refvenv/bin/python ./compat/reference/make_fixtures.sh      (runs this with the others)
    /work/refvenv/bin/python compat/reference/gen_modelio.py                 (this area only)

Writes, deterministically (fixed seed, byte-stable writers):
- values_{f32,f16,bf16}.safetensors: the same values in three dtypes (each value is exactly representable in
  all three), plus an I64 and a U8 tensor, a 0-d and an empty tensor; values.json holds the expected numbers.
- nested_p2.ckpt: torch.save (protocol 2) of {"state_dict": {...}, "global_step", "epoch"} with a transposed
  (non-contiguous) tensor, offset views, two views sharing one storage, fp16, bf16, int64, a Parameter, a 0-d
  tensor and an inner "state_dict" that A1111 drops; flat_p4.ckpt: protocol 4, no state_dict, a nested
  embedding-style dict; lightning.ckpt: the layout of the original SD release files (Lightning callback state
  keyed by the ModelCheckpoint class, numpy scalars, optimizer state) with lightning_expected.safetensors;
  deflated.ckpt: nested_p2.ckpt re-packed with deflate. ckpt_expected.safetensors holds every expected tensor as contiguous F32 and
  ckpt_expected.json the keys, dtypes and scalar metadata.
- hostile_*.ckpt: zip checkpoints whose data.pkl calls os.system / builtins.exec / posix.system /
  an unknown class. Each payload would create /tmp/sdapi-modelio-hostile-<name>; this script proves that
  torch.load(weights_only=False) really runs it (then removes the marker), so a reader that leaves the marker
  absent has executed nothing. hostile.json lists the global each must be refused for.
- bad_view.ckpt, missing_storage.ckpt, complex_storage.ckpt: well-formed pickles with a view past its
  storage, a storage with no archive entry, and an unsupported storage type.
- hashes.json: hashlib results (sha256, A1111 shorthash, legacy model hash, addnet hash) for the committed
  fixtures and for synthetic files described by a formula (byte i = ((i * 2654435761) >> 13) & 0xff), so the
  legacy hash's 64 KiB window at 1 MiB is exercised without committing megabytes.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from common import fixture_path, seed_everything, write_json, write_safetensors

AREA = "modelio"
SEED = 20241205


def bf16_exact(t: torch.Tensor) -> torch.Tensor:
    """Rounds to bfloat16 and keeps magnitudes where float16 is exact too (normal range, 7-bit mantissa)."""
    t = t.to(torch.bfloat16).to(torch.float32)
    t = torch.where(t.abs() < 2.0 ** -14, torch.zeros_like(t), t)
    return t.clamp(-60000.0, 60000.0)


def safetensors_fixtures() -> None:
    g = torch.Generator().manual_seed(SEED)
    values = {
        "model.a.weight": bf16_exact(torch.randn(4, 3, generator=g) * 3),
        "model.b.bias": bf16_exact(torch.tensor([0.0, -0.0, 1.5, -65504.0 / 2, 2.0 ** -14])),
        "model.c.scale": bf16_exact(torch.tensor(0.375)),
        "model.d.empty": torch.zeros(0, 3),
        "model.e.conv": bf16_exact(torch.randn(2, 2, 3, 3, generator=g)),
    }
    extras = {
        "ids.long": torch.tensor([0, -7, 1 << 40, 49407], dtype=torch.int64),
        "mask.u8": torch.tensor([0, 1, 255, 128], dtype=torch.uint8),
    }
    meta = {"format": "pt", "ss_output_name": "modelio-fixture"}
    for name, dtype in (("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)):
        converted = {k: v.to(dtype) for k, v in values.items()}
        assert all(torch.equal(converted[k].float(), values[k]) for k in values), f"values not exact in {name}"
        write_safetensors(fixture_path(AREA, f"values_{name}.safetensors"), {**converted, **extras}, meta)
    write_json(AREA, "values.json", {
        "metadata": meta,
        "tensors": {k: {"shape": list(v.shape), "values": v.reshape(-1).tolist()}
                    for k, v in {**values, **{k: v.double() for k, v in extras.items()}}.items()},
    })


def checkpoint_fixtures() -> None:
    g = torch.Generator().manual_seed(SEED + 1)
    base = torch.randn(3, 5, generator=g)
    flat = torch.randn(24, generator=g)
    grid = torch.randn(4, 6, generator=g)
    shared = torch.randn(10, generator=g)
    inner = collections.OrderedDict()
    inner["first.weight"] = torch.randn(4, 3, generator=g)
    inner["first.bias"] = torch.randn(4, generator=g)
    inner["trans.weight"] = base.t()                           # [5, 3], strides (1, 5)
    inner["slice.weight"] = flat[6:18].view(3, 4)              # offset 6
    inner["strided.weight"] = grid[1:, 1::2]                   # offset 7, strides (6, 2)
    inner["shared.a"] = shared[:4]
    inner["shared.b"] = shared[4:].view(2, 3)                  # same storage, offset 4
    inner["half.weight"] = torch.randn(2, 3, generator=g).half()
    inner["half.transposed"] = torch.randn(3, 2, generator=g).half().t()
    inner["bf16.weight"] = torch.randn(3, generator=g).bfloat16()
    inner["long.ids"] = torch.tensor([3, -1, 1 << 33, 0], dtype=torch.int64)
    inner["param.weight"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    inner["scalar"] = torch.tensor(2.5)
    inner["state_dict"] = {"dropped.weight": torch.ones(2)}     # A1111 pops a nested state_dict
    assert not inner["trans.weight"].is_contiguous() and inner["slice.weight"].storage_offset() == 6
    nested = {"state_dict": inner, "global_step": 1234, "epoch": 7}
    with open(fixture_path(AREA, "nested_p2.ckpt"), "wb") as handle:
        torch.save(nested, handle, pickle_protocol=2)

    embedding = torch.randn(2, 8, generator=g)
    flat_ckpt = {
        "string_to_param": {"*": embedding},
        "string_to_token": {"*": 265},
        "name": "fixture-embedding",
        "step": 99,
        "weight": torch.randn(3, 3, generator=g).t().contiguous().t(),
    }
    with open(fixture_path(AREA, "flat_p4.ckpt"), "wb") as handle:
        torch.save(flat_ckpt, handle, pickle_protocol=4)

    expected = {k: v.detach().float().contiguous() for k, v in inner.items() if isinstance(v, torch.Tensor)}
    expected.update({"string_to_param.*": embedding, "weight": flat_ckpt["weight"].contiguous()})
    write_safetensors(fixture_path(AREA, "ckpt_expected.safetensors"), expected)
    dtypes = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}
    write_json(AREA, "ckpt_expected.json", {
        "nested_p2": {
            "keys": sorted(k for k, v in inner.items() if isinstance(v, torch.Tensor)),
            "dtypes": {k: dtypes[v.dtype] for k, v in inner.items() if isinstance(v, torch.Tensor)},
            "metadata": {"global_step": "1234", "epoch": "7"},
        },
        "flat_p4": {
            "keys": ["string_to_param.*", "weight"],
            "metadata": {"name": "fixture-embedding", "step": "99"},
        },
    })

    # The same archive re-packed with deflate (torch.load reads it too).
    with zipfile.ZipFile(fixture_path(AREA, "nested_p2.ckpt")) as src, \
            zipfile.ZipFile(fixture_path(AREA, "deflated.ckpt"), "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), src.read(info.filename),
                         compress_type=zipfile.ZIP_DEFLATED)

    # What torch itself reads back, as a cross-check of the expectations above.
    for name in ("nested_p2.ckpt", "deflated.ckpt"):
        loaded = torch.load(fixture_path(AREA, name), weights_only=True)["state_dict"]
        for key, value in expected.items():
            if key in loaded:
                assert torch.equal(loaded[key].float(), value), (name, key)


def lightning_fixture() -> None:
    """A training checkpoint laid out like the original SD releases' full files: Lightning callback state keyed
    by the ModelCheckpoint class, numpy scalars, optimizer and scheduler state beside the state_dict."""
    import sys
    import types

    names = ["pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"]
    modules = {name: types.ModuleType(name) for name in names}

    class ModelCheckpoint:  # stands in for the Lightning class; pickled by its qualified name only
        pass

    ModelCheckpoint.__module__ = names[2]
    ModelCheckpoint.__qualname__ = "ModelCheckpoint"
    modules[names[2]].ModelCheckpoint = ModelCheckpoint
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update(modules)
    try:
        g = torch.Generator().manual_seed(SEED + 2)
        state = collections.OrderedDict([
            ("model.diffusion_model.out.2.weight", torch.randn(4, 3, 1, 1, generator=g)),
            ("model.diffusion_model.out.2.bias", torch.randn(4, generator=g)),
            ("model_ema.num_updates", torch.tensor(470000, dtype=torch.int32)),
        ])
        obj = {
            "epoch": 6,
            "global_step": 470000,
            "pytorch-lightning_version": "1.4.2",
            "state_dict": state,
            "callbacks": {ModelCheckpoint: {"monitor": None, "best_model_score": np.float64(0.25),
                                            "best_model_path": "/logs/last.ckpt", "dirpath": "/logs"}},
            "optimizer_states": [{"state": {0: {"step": 10, "exp_avg": torch.zeros(2)}},
                                  "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0]}]}],
            "lr_schedulers": [{"base_lrs": [1e-4], "last_epoch": 5, "_step_count": 6}],
        }
        path = fixture_path(AREA, "lightning.ckpt")
        with open(path, "wb") as handle:
            torch.save(obj, handle)
        loaded = torch.load(path, weights_only=False)["state_dict"]
        assert all(torch.equal(loaded[k], v) for k, v in state.items())
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    write_safetensors(fixture_path(AREA, "lightning_expected.safetensors"), {k: v.float() for k, v in state.items()})


def write_zip_checkpoint(filename: str, pickle_bytes: bytes, storages: dict[str, bytes] | None = None) -> Path:
    """A torch-style zip checkpoint with a hand-made data.pkl (fixed timestamps: byte-stable)."""
    path = fixture_path(AREA, filename)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(f"archive/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, data)
        add("data.pkl", pickle_bytes)
        add("byteorder", b"little")
        for key, data in (storages or {}).items():
            add(f"data/{key}", data)
        add("version", b"3\n")
    return path


HOSTILE_MARKER = "/tmp/sdapi-modelio-hostile-{}"


class _Reduce:
    """Pickles as `func(*args)` (the way a malicious __reduce__ would)."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class _Storage:
    """Stands for a storage; the pickler below writes it as torch's persistent id."""

    def __init__(self, type_, key, numel):
        self.type_, self.key, self.numel = type_, key, numel


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", obj.type_, obj.key, "cpu", obj.numel)
        return None


def torch_pickle(obj, protocol: int = 2) -> bytes:
    buffer = io.BytesIO()
    _TorchPickler(buffer, protocol=protocol).dump(obj)
    return buffer.getvalue()


def tensor_ref(storage: _Storage, offset: int, size: tuple, stride: tuple) -> _Reduce:
    return _Reduce(torch._utils._rebuild_tensor_v2, (storage, offset, size, stride, False, collections.OrderedDict()))


def hostile_fixtures() -> None:
    cases = {}

    def shell(name: str) -> str:
        return f"touch {HOSTILE_MARKER.format(name)}"

    # Protocol 0, hand-assembled so the global is spelt `os.system` (pickle itself would write posix.system).
    cmd = shell("os_system").encode()
    cases["os_system"] = ("os.system", b"cos\nsystem\n(V" + cmd + b"\ntR.")
    # Protocol 4 (STACK_GLOBAL, framing, memoize) calling builtins.exec.
    code = f"open({HOSTILE_MARKER.format('builtins_exec')!r}, 'w').write('ran')"
    cases["builtins_exec"] = ("builtins.exec", pickle.dumps(_Reduce(exec, (code,)), protocol=4))
    # What pickle writes for os.system on Linux, hidden inside an otherwise valid state dict.
    storage = _Storage(torch.FloatStorage, "0", 4)
    state = collections.OrderedDict([("ok.weight", tensor_ref(storage, 0, (2, 2), (2, 1))),
                                     ("evil", _Reduce(os.system, (shell("posix_system"),)))])
    cases["posix_system"] = ("posix.system", torch_pickle({"state_dict": state}))
    # eval of an expression with a side effect, protocol 2.
    expr = f"open({HOSTILE_MARKER.format('builtins_eval')!r}, 'w').write('ran')"
    cases["builtins_eval"] = ("builtins.eval", pickle.dumps(_Reduce(eval, (expr,)), protocol=2))

    listing = {}
    for name, (global_name, payload) in cases.items():
        path = write_zip_checkpoint(f"hostile_{name}.ckpt", payload, {"0": np.zeros(4, np.float32).tobytes()})
        marker = Path(HOSTILE_MARKER.format(name))
        marker.unlink(missing_ok=True)
        try:
            torch.load(path, weights_only=False)
        except Exception:
            pass  # the payload's return value is not a valid checkpoint; what matters is that it ran
        assert marker.exists(), f"payload {name} did not run under torch.load; the fixture proves nothing"
        marker.unlink()
        listing[f"hostile_{name}.ckpt"] = {"global": global_name, "marker": str(marker)}
    write_json(AREA, "hostile.json", listing)

    # Well-formed pickles that describe impossible tensors.
    four = np.arange(4, dtype=np.float32).tobytes()
    bad_view = {"state_dict": {"w": tensor_ref(_Storage(torch.FloatStorage, "0", 4), 2, (3, 3), (3, 1))}}
    write_zip_checkpoint("bad_view.ckpt", torch_pickle(bad_view), {"0": four})
    missing = {"state_dict": {"w": tensor_ref(_Storage(torch.FloatStorage, "7", 4), 0, (4,), (1,))}}
    write_zip_checkpoint("missing_storage.ckpt", torch_pickle(missing), {"0": four})
    complex_ = {"state_dict": {"z": tensor_ref(_Storage(torch.ComplexFloatStorage, "0", 2), 0, (2,), (1,))}}
    write_zip_checkpoint("complex_storage.ckpt", torch_pickle(complex_), {"0": four})


def pattern_bytes(n: int) -> bytes:
    i = np.arange(n, dtype=np.uint64)
    return (((i * np.uint64(2654435761)) >> np.uint64(13)) & np.uint64(0xFF)).astype(np.uint8).tobytes()


def hashes_of(data: bytes) -> dict:
    sha = hashlib.sha256(data).hexdigest()
    n = int.from_bytes(data[:8], "little")
    addnet = hashlib.sha256(data[n + 8:]).hexdigest()
    return {
        "sha256": sha,
        "shorthash": sha[0:10],
        "legacy": hashlib.sha256(data[0x100000:0x110000]).hexdigest()[0:8],
        "addnet": addnet,
        "addnet_short": addnet[0:12],
    }


def hash_fixtures() -> None:
    files = {}
    for name in ("values_f32.safetensors", "values_f16.safetensors", "values_bf16.safetensors", "nested_p2.ckpt"):
        files[name] = hashes_of(fixture_path(AREA, name).read_bytes())
    synthetic = {}
    for n in (0, 5, 1000, 0x100000 + 777, 0x110000 + 12345):
        synthetic[str(n)] = hashes_of(pattern_bytes(n))
    # A safetensors-shaped synthetic file: 8-byte length 16, then the pattern, so addnet skips 24 bytes.
    lora_like = (16).to_bytes(8, "little") + pattern_bytes(0x100400)
    write_json(AREA, "hashes.json", {
        "files": files,
        "pattern": {"formula": "byte i = ((i * 2654435761) >> 13) & 0xff", "sizes": synthetic},
        "lora_like": {"header_length": 16, "pattern_bytes": 0x100400, **hashes_of(lora_like)},
    })


def main() -> None:
    seed_everything(SEED)
    safetensors_fixtures()
    checkpoint_fixtures()
    lightning_fixture()
    hostile_fixtures()
    hash_fixtures()


if __name__ == "__main__":
    main()
