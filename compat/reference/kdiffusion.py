"""Imports crowsonkb/k-diffusion's `sampling` and `external` modules in the reference venv.

k-diffusion's package __init__ (and k_diffusion.utils) import torchvision, whose PyPI wheels are CUDA builds that
do not load against the CPU torch wheel this venv pins. The sampler code we compare against never touches
torchvision, so torchvision is left uninstalled (see `make reference-venv`) and an empty placeholder module is
registered for the one import k_diffusion.utils performs at import time. The samplers run unmodified.

Usage: `from kdiffusion import sampling, external`
"""
import importlib.util
import pathlib
import sys
import types

_placeholder = []
if "torchvision" not in sys.modules:
    try:
        import torchvision  # noqa: F401  (a working install is used as is)
    except Exception:
        _placeholder = ["torchvision", "torchvision.transforms", "torchvision.transforms.functional"]
        tv = types.ModuleType("torchvision")
        tv.transforms = types.ModuleType("torchvision.transforms")
        tv.transforms.functional = types.ModuleType("torchvision.transforms.functional")
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms,
                            "torchvision.transforms.functional": tv.transforms.functional})

_spec = importlib.util.find_spec("k_diffusion")
_pkg = types.ModuleType("k_diffusion")
_pkg.__path__ = [str(pathlib.Path(_spec.origin).parent)]
_pkg.__spec__ = _spec  # so importlib.util.find_spec("k_diffusion") (diffusers asks) keeps working
sys.modules["k_diffusion"] = _pkg

from k_diffusion import sampling, external  # noqa: E402

# Take the placeholder away again so that other libraries (diffusers) still see torchvision as absent.
for _name in _placeholder:
    sys.modules.pop(_name, None)

__all__ = ["sampling", "external"]
