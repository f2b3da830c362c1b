"""Random-number fixtures: torch.randn on seeded CPU generators, A1111's Philox "NV" stream, and A1111's ImageRNG.

    REF_PY=/work/refvenv/bin/python ./compat/reference/make_fixtures.sh     (or run this file with that python)

torch.randn takes ATen's AVX2 kernel on any x86-64 CPU with AVX2 (AVX-512 included) — the path A1111 users get —
so run this on such a CPU. The Philox and ImageRNG cases run A1111's own modules/rng_philox.py and modules/rng.py
(v1.10.1) from an A1111 checkout at generation time (env A1111_WEBUI, default
/work/a1111-reference/stable-diffusion-webui; nothing of it is copied into the project), with `modules.shared` /
`modules.devices` replaced by minimal stand-ins for the options those files read.

Writes fixtures/rng/torch_randn.safetensors, philox.safetensors, image_rng.safetensors.
"""
import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch

from common import save_tensors

SEEDS = [0, 1, 42, 12345, 2**32 - 1]
SIZES = {"1": (1,), "15": (15,), "16": (16,), "17": (17,), "4x64x64": (4, 64, 64)}
WEBUI = Path(os.environ.get("A1111_WEBUI", "/work/a1111-reference/stable-diffusion-webui"))


def torch_streams() -> None:
    out = {}
    for seed in SEEDS:
        for name, shape in SIZES.items():
            g = torch.Generator().manual_seed(seed)
            out[f"{seed}/{name}"] = torch.randn(shape, generator=g)
        # Successive draws from one generator, as A1111 draws the initial latent and then step noise.
        g = torch.Generator().manual_seed(seed)
        out[f"{seed}/seq"] = torch.cat([torch.randn((3,), generator=g), torch.randn((4, 8, 8), generator=g).flatten(),
                                        torch.randn((5,), generator=g), torch.randn((33,), generator=g)])
    save_tensors("rng", "torch_randn.safetensors", out)


def load_a1111_modules(randn_source: str, ensd: int):
    """Imports A1111's rng_philox.py and rng.py with stand-ins for the two modules they consult."""
    modules = types.ModuleType("modules")
    modules.__path__ = []
    shared = types.ModuleType("modules.shared")
    shared.opts = types.SimpleNamespace(randn_source=randn_source, eta_noise_seed_delta=ensd)
    shared.device = torch.device("cpu")
    devices = types.ModuleType("modules.devices")
    devices.device = torch.device("cpu")
    devices.cpu = torch.device("cpu")
    sys.modules.update({"modules": modules, "modules.shared": shared, "modules.devices": devices})
    loaded = {}
    for name in ("rng_philox", "rng"):
        spec = importlib.util.spec_from_file_location(f"modules.{name}", WEBUI / "modules" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"modules.{name}"] = module
        setattr(modules, name, module)
        spec.loader.exec_module(module)
        loaded[name] = module
    return loaded["rng_philox"], loaded["rng"]


def philox_streams() -> None:
    philox, _ = load_a1111_modules("NV", 0)
    out = {}
    for seed in SEEDS + [2**40 + 7]:
        g = philox.Generator(seed)
        for name, shape in SIZES.items():
            out[f"{seed}/{name}"] = torch.from_numpy(np.asarray(g.randn(shape), dtype=np.float32))
    save_tensors("rng", "philox.safetensors", out)


CASES = {
    # name: (seeds, subseeds, subseed_strength, resize_h, resize_w, shape [4, h, w], ensd)
    "plain": ([42, 43], [7, 8], 0.0, 0, 0, (4, 8, 8), 0),
    "subseed": ([42, 42], [7, 8], 0.3, 0, 0, (4, 8, 8), 0),
    "resize_smaller": ([5], [0], 0.0, 48, 40, (4, 8, 8), 0),
    "resize_larger": ([5], [0], 0.0, 80, 96, (4, 8, 8), 0),
    "resize_subseed": ([9], [11], 0.5, 48, 80, (4, 8, 8), 0),
    "ensd": ([42, 43], [7, 8], 0.0, 0, 0, (4, 8, 8), 31337),
}


def image_rng() -> None:
    out = {}
    for source in ("CPU", "NV"):
        for name, (seeds, subseeds, strength, rh, rw, shape, ensd) in CASES.items():
            _, rng = load_a1111_modules(source, ensd)
            image = rng.ImageRNG(shape, seeds, subseeds=subseeds, subseed_strength=strength,
                                 seed_resize_from_h=rh, seed_resize_from_w=rw)
            out[f"{source}/{name}/first"] = image.next()
            out[f"{source}/{name}/next1"] = image.next()
            out[f"{source}/{name}/next2"] = image.next()
    save_tensors("rng", "image_rng.safetensors", out)


if __name__ == "__main__":
    torch_streams()
    philox_streams()
    image_rng()
