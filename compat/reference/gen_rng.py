"""Bit-exact random-stream fixtures for Sources/TensorCore/Random*.swift and Sources/Pipeline/Noise/.

Made with:  cd compat/reference && /work/refvenv/bin/python gen_rng.py
Writes only fixtures/rng/. Needs A1111 v1.10.1 `modules/` (env A1111_MODULES, else /tmp/a1111/modules or
/work/a1111-reference/stable-diffusion-webui/modules, whichever exists;
kklouzal/stable-diffusion-webui tag v1.10.1): its rng.py and rng_philox.py run unmodified here, with stub
`modules.shared` (the randn_source and eta_noise_seed_delta options) and `modules.devices` (CPU device).

torch_randn*.safetensors   torch.Generator().manual_seed(s); torch.randn(size, generator=g) for each size, a fresh
                           generator per (seed, size); "seq.*" draws several sizes in turn from one generator.
                           The default file uses the kernel this torch dispatches on x86 with AVX2/AVX512
                           (normal_fill_AVX2); torch_randn_generic uses ATEN_CPU_CAPABILITY=default (run in a
                           child process), torch's portable normal_fill.
philox_randn.safetensors   rng_philox.Generator(s).randn(size), same seeds and sizes, and "seq.*" likewise.
mt19937.json               raw engine words from numpy RandomState (legacy init_genrand), as an independent check.
image_rng.safetensors/json rng.ImageRNG cases (CPU and NV): first() then next() calls, with subseeds and
                           strength (slerp), seed_resize_from_w/h, eta_noise_seed_delta, short subseed lists.
"""
import importlib.util
import os
import pathlib
import subprocess
import sys
import types

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import save_tensors, write_json  # noqa: E402

A1111 = pathlib.Path(os.environ.get("A1111_MODULES") or next(
    (p for p in ("/tmp/a1111/modules", "/work/a1111-reference/stable-diffusion-webui/modules")
     if pathlib.Path(p, "rng.py").is_file()), "/tmp/a1111/modules"))
AREA = "rng"
SEEDS = [0, 1, 42, 12345, 2**32 - 1, 2**32 + 12345]
SIZES = [[1], [15], [16], [17], [40], [4, 9, 7], [4, 64, 64]]
SEQUENCE = [[1], [15], [3], [17], [4, 8, 8], [16], [2]]


def size_name(size):
    return "x".join(map(str, size))


# ---------------------------------------------------------------- A1111 modules with stubbed options and devices
def _package(name):
    mod = types.ModuleType(name)
    mod.__path__ = []
    sys.modules[name] = mod
    return mod


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    parent, _, leaf = name.rpartition(".")
    setattr(sys.modules[parent], leaf, mod)
    return mod


def load_a1111():
    pkg = _package("modules")
    shared = types.ModuleType("modules.shared")
    shared.opts = types.SimpleNamespace(randn_source="CPU", eta_noise_seed_delta=0)
    shared.device = torch.device("cpu")
    devices = types.ModuleType("modules.devices")
    devices.device = torch.device("cpu")
    devices.cpu = torch.device("cpu")
    for mod in (shared, devices):
        sys.modules[mod.__name__] = mod
        setattr(pkg, mod.__name__.rpartition(".")[2], mod)
    philox = _load("modules.rng_philox", A1111 / "rng_philox.py")
    rng = _load("modules.rng", A1111 / "rng.py")
    return shared, philox, rng


# ---------------------------------------------------------------- plain streams
def torch_streams():
    out = {}
    for seed in SEEDS:
        for size in SIZES:
            g = torch.Generator().manual_seed(seed)
            out[f"s{seed}.{size_name(size)}"] = torch.randn(size, generator=g)
        g = torch.Generator().manual_seed(seed)
        for i, size in enumerate(SEQUENCE):
            out[f"seq.s{seed}.{i}"] = torch.randn(size, generator=g)
    return out


def mt19937_words():
    """Raw tempered mt19937 outputs from numpy's legacy RandomState (same init_genrand seeding), an independent
    reference for the engine: for each seed the first 700 words (past one twist) and word 10000."""
    import numpy as np
    out = {}
    for seed in [5489, 42, 2**32 - 1]:
        words = np.random.RandomState(seed).randint(0, 2**32, size=10000, dtype=np.uint32)
        out[str(seed)] = {"first": words[:700].tolist(), "word10000": int(words[9999])}
    return out


def philox_streams(philox):
    out = {}
    for seed in SEEDS:
        for size in SIZES:
            out[f"s{seed}.{size_name(size)}"] = torch.from_numpy(philox.Generator(seed).randn(size))
        g = philox.Generator(seed)
        for i, size in enumerate(SEQUENCE):
            out[f"seq.s{seed}.{i}"] = torch.from_numpy(g.randn(size))
    return out


def generic_kernel_child():
    """Runs in a child with ATEN_CPU_CAPABILITY=default; writes torch's portable-kernel streams."""
    assert torch.backends.cpu.get_cpu_capability() == "DEFAULT", torch.backends.cpu.get_cpu_capability()
    out = {}
    for seed in [0, 42, 2**32 - 1]:
        for size in [[16], [17], [40], [4, 64, 64]]:
            g = torch.Generator().manual_seed(seed)
            out[f"s{seed}.{size_name(size)}"] = torch.randn(size, generator=g)
    save_tensors(AREA, "torch_randn_generic.safetensors", out)


# ---------------------------------------------------------------- ImageRNG cases
IMAGE_CASES = [
    # name, source, seeds, subseeds, strength, resize (w, h), ensd, next calls after first()
    ("cpu_plain", "CPU", [42, 43], None, 0.0, (0, 0), 0, 3),
    ("cpu_ensd", "CPU", [42, 43], None, 0.0, (0, 0), 31337, 2),
    ("cpu_subseed", "CPU", [1000, 1001], [7, 8], 0.3, (0, 0), 0, 1),
    ("cpu_subseed_short", "CPU", [1, 2, 3], [9], 0.7, (0, 0), 0, 1),
    ("cpu_subseed_same", "CPU", [5], [5], 0.5, (0, 0), 0, 1),
    ("cpu_resize_mixed", "CPU", [77], None, 0.0, (64, 128), 0, 1),
    ("cpu_resize_larger", "CPU", [78, 79], [11, 12], 0.6, (128, 160), 5, 2),
    ("cpu_resize_smaller", "CPU", [2**32 - 1], None, 0.0, (48, 64), 0, 1),
    ("nv_plain", "NV", [42, 43], None, 0.0, (0, 0), 0, 3),
    ("nv_ensd", "NV", [42, 43], None, 0.0, (0, 0), 31337, 2),
    ("nv_subseed", "NV", [1000, 1001], [7, 8], 0.3, (0, 0), 0, 1),
    ("nv_resize_mixed", "NV", [77, 78], [3, 4], 0.9, (64, 128), 0, 2),
    ("nv_big_seed", "NV", [2**32 + 12345], None, 0.0, (0, 0), 0, 1),
]
IMAGE_SHAPE = [4, 12, 10]


def image_rng_cases(shared, rng):
    tensors, meta = {}, []
    for name, source, seeds, subseeds, strength, (rw, rh), ensd, nexts in IMAGE_CASES:
        shared.opts.randn_source = source
        shared.opts.eta_noise_seed_delta = ensd
        g = rng.ImageRNG(IMAGE_SHAPE, seeds, subseeds=subseeds, subseed_strength=strength,
                         seed_resize_from_h=rh, seed_resize_from_w=rw)
        tensors[f"{name}.first"] = g.next()
        for i in range(nexts):
            tensors[f"{name}.next{i + 1}"] = g.next()
        meta.append({"name": name, "source": source, "seeds": seeds, "subseeds": subseeds or [],
                     "subseed_strength": strength, "seed_resize_from_w": rw, "seed_resize_from_h": rh,
                     "eta_noise_seed_delta": ensd, "next_calls": nexts})
    return tensors, {"shape": IMAGE_SHAPE, "cases": meta}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--generic-child":
        generic_kernel_child()
        return
    torch.set_num_threads(1)
    shared, philox, rng = load_a1111()
    save_tensors(AREA, "torch_randn.safetensors", torch_streams(),
                 metadata={"cpu_capability": torch.backends.cpu.get_cpu_capability()})
    save_tensors(AREA, "philox_randn.safetensors", philox_streams(philox))
    tensors, meta = image_rng_cases(shared, rng)
    save_tensors(AREA, "image_rng.safetensors", tensors)
    write_json(AREA, "image_rng.json", meta)
    write_json(AREA, "streams.json", {"seeds": SEEDS, "sizes": SIZES, "sequence": SEQUENCE,
                                      "generic_seeds": [0, 42, 2**32 - 1],
                                      "generic_sizes": [[16], [17], [40], [4, 64, 64]]})
    write_json(AREA, "mt19937.json", mt19937_words())
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    subprocess.run([sys.executable, __file__, "--generic-child"], env=env, check=True)


if __name__ == "__main__":
    main()
