"""Golden infotext fixtures from A1111 v1.10.1's own code (fixtures/api/infotext_parse.json, infotext_create.json).

Runs the real `parse_generation_parameters` (modules/infotext_utils.py, with the real prompt_parser.py and
infotext_versions.py) and the real `create_infotext` (modules/processing.py) on tables of inputs. Only the
functions are taken from A1111's files; the rest of A1111 (torch, gradio, options) is replaced by small stubs
holding A1111's option defaults. Nothing of A1111 is copied into the project: the source is read at run time.

Made with:
    A1111_MODULES=/tmp/a1111/modules /work/refvenv/bin/python compat/reference/gen_api.py
(A1111_MODULES = the `modules/` folder of kklouzal/stable-diffusion-webui at tag v1.10.1; skipped when absent.)
"""
import ast
import json
import os
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "fixtures" / "api"
SRC = Path(os.environ.get("A1111_MODULES", "/tmp/a1111/modules"))


class Opts(types.SimpleNamespace):
    pass


OPTS = dict(infotext_styles="Apply if any", infotext_skip_pasting=[], use_old_hires_fix_width_height=False,
            auto_backcompat=True, CLIP_stop_at_last_layers=1, eta_noise_seed_delta=0, face_restoration_model="CodeFormer",
            add_model_hash_to_info=True, add_model_name_to_info=True, add_vae_hash_to_info=True,
            add_vae_name_to_info=True, add_version_to_infotext=True, add_user_name_to_info=False,
            randn_source="GPU", fp8_storage="Disable", cache_fp16_weight=False, inpainting_mask_weight=1.0)


def stub(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def load_source(name, path):
    m = types.ModuleType(name)
    m.__file__ = str(path)
    sys.modules[name] = m
    exec(compile(path.read_text(), str(path), "exec"), m.__dict__)
    return m


def function_from(path, fname, namespace):
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == fname)
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), namespace)
    return namespace[fname]


def setup():
    opts = Opts(**OPTS)
    styles = types.SimpleNamespace(extract_styles_from_prompt=lambda p, n: ([], p, n))
    shared = stub("modules.shared", opts=opts, prompt_styles=styles)
    gradio = stub("gradio")
    gradio.update = lambda **kw: dict(kw, __type__="generic_update")
    pkg = stub("modules")
    pkg.__path__ = []
    pkg.shared = shared
    proc_ns = {"math": __import__("math")}
    old_dims = function_from(SRC / "processing.py", "old_hires_fix_first_pass_dimensions", proc_ns)
    for name, attrs in [("paths", dict(data_path="/tmp")), ("ui_tempdir", {}), ("script_callbacks", {}),
                        ("processing", dict(old_hires_fix_first_pass_dimensions=old_dims)), ("images", {}),
                        ("errors", dict(report=lambda *a, **k: None))]:
        setattr(pkg, name, stub(f"modules.{name}", **attrs))
    for name in ["prompt_parser", "infotext_versions", "infotext_utils"]:
        setattr(pkg, name, load_source(f"modules.{name}", SRC / f"{name}.py"))
    return pkg, opts


PARSE_CASES = [
    "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7.0, Seed: 1, Size: 512x512",
    "a cat\nNegative prompt: ugly\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7.0, Seed: 1, "
    "Size: 512x768, Model hash: 0123456789, Model: sd15, Version: v1.10.1",
    "line one\nline two\nNegative prompt: bad\nmore bad\nSteps: 4, Sampler: DPM++ 2M, Schedule type: Karras, "
    "CFG scale: 5.5, Seed: 42, Size: 64x64",
    "a <lora:x:0.8>\nSteps: 20, Sampler: Euler, CFG scale: 7.0, Seed: 3, Size: 512x512, "
    "Lora hashes: \"x: abcdef123456, y: 0123456789ab\", Version: v1.10.1",
    "q\nSteps: 20, Sampler: Euler, CFG scale: 7.0, Seed: 3, Hires upscale: 2.0, Hires steps: 10, "
    "Hires upscaler: Latent, Denoising strength: 0.7, Size: 512x512",
    "q\nSteps: 20, Sampler: Euler, CFG scale: 7.0, Seed: 3, Size: 512x512, Hires resize: 1024x768, "
    "Denoising strength: 0.5, Hires upscaler: Latent (nearest)",
    "q\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 1024x1024, First pass size: 0x0, "
    "Denoising strength: 0.6",
    "q\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 1024x768, First pass size: 512x384",
    "[a:b:0.5] cat\nSteps: 20, Sampler: DDIM, CFG scale: 7, Seed: 3, Size: 512x512, Version: v1.5.1",
    "cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 512x512, Version: v1.7.0-225-g1a2b3c4",
    "cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 512x512, Version: v1.7.0-224-g1a2b3c4",
    "cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 512x512, Version: 1.6.0-RC",
    "cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 512x512, Refiner: sdxl_ref, "
    "Refiner switch at: 0.8, Version: v1.7.0",
    "cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 512x512, Version: f0.0.17v1.8.0rc-latest-276-g29be1da7",
    "(a cat:1.2)\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512",
    "(a cat:1.0)\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512",
    "[(a cat)]\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512",
    "\\(a cat\\) BREAK dog\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512",
    "a cat\nNegative prompt: [blurry]\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512",
    "a BREAK BREAK b :1.5) x\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512",
    "((unclosed\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512",
    "just a prompt",
    "just a prompt\nwith two lines",
    "prompt\nSteps: 20, Sampler: Euler",
    "",
    "Negative prompt: only negative\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512",
    "prompt\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512, Clip skip: 2, RNG: CPU, ENSD: 31337, "
    "Eta: 0.5, Tiling: True",
    "prompt\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512, Hypernet: hn1, Hypernet strength: 0.5",
    "prompt\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512, Hypernet: hn1",
    "prompt\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: , Size: 512x512, Model: a",
    "prompt\nSteps: 20,Sampler: Euler,CFG scale: 7,Seed: 3",
    "prompt\nSteps : 20, Sampler:Euler a, CFG scale:   7, Seed: 3",
    "prompt\nSteps: 20, Sampler: Euler, Note: \"quoted, \\\"escaped\\\" and \\u00e9\", CFG scale: 7, Seed: 3",
    "prompt\nSteps: 20, Sampler: Euler, Bad: \"unterminated, CFG scale: 7, Seed: 3",
    "prompt\nSteps: 20, Sampler: Euler, Odd: \"a\" b, CFG scale: 7, Seed: 3",
    "prompt\nSteps: 20, Sampler: Euler, Empty: \"\", CFG scale: 7, Seed: 3",
    "prompt\nSteps: 20, Sampler: Euler, Steps: 30, CFG scale: 7, Seed: 3",
    "prompt\nSteps: 20, Sampler: Euler, x: 1, CFG scale: 7, Seed: 3, Size: 0x0",
    "prompt\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512, FP8 weight: Enable for SDXL",
    "prompt\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512, Schedule type: Exponential, "
    "Schedule max sigma: 14.6, Schedule rho: 7",
    "prompt with trailing spaces   \n\n  Steps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512  \n",
    "chat café 漢字\nNegative prompt: ñ\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512, "
    "Model: modèle",
    "prompt\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512, Hires sampler: DPM++ 2M, "
    "Hires schedule type: Karras, Hires checkpoint: other, Hires prompt: \"hr, prompt\", Hires negative prompt: neg",
    "prompt\nsteps 20 sampler euler: a, b: c, d: e",
    "prompt\nNegative prompt: n\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512, "
    "Mask mode: Inpaint not masked, Masked area padding: 16",
]


def create_cases():
    """(settings, p/opts description) rows; each becomes one create_infotext call."""
    base = dict(prompt="a cat", negative_prompt="", steps=20, sampler_name="Euler a", scheduler="Automatic",
                cfg_scale=7.0, seed=1, width=512, height=512, sd_model_hash="0123456789", sd_model_name="model",
                sd_vae_hash=None, sd_vae_name=None, subseed=-1, subseed_strength=0.0, seed_resize_from_w=-1,
                seed_resize_from_h=-1, restore_faces=False, tiling=False, eta=None, extra={}, clip_skip=1,
                opts={})
    rows = [
        {},
        dict(negative_prompt="ugly, blurry"),
        dict(prompt="multi\nline prompt", negative_prompt="neg\nline"),
        dict(sampler_name="DPM++ 2M", scheduler="Karras", cfg_scale=5.5, steps=4, seed=4294967293),
        dict(subseed=77, subseed_strength=0.25),
        dict(seed_resize_from_w=256, seed_resize_from_h=384),
        dict(seed_resize_from_w=256, seed_resize_from_h=0),
        dict(clip_skip=2),
        dict(opts=dict(eta_noise_seed_delta=31337)),
        dict(opts=dict(eta_noise_seed_delta=31337), sampler_name="Euler"),
        dict(opts=dict(eta_noise_seed_delta=31337), eta=0.0),
        dict(opts=dict(randn_source="CPU")),
        dict(opts=dict(randn_source="NV", add_model_hash_to_info=False, add_model_name_to_info=False)),
        dict(opts=dict(add_version_to_infotext=False)),
        dict(tiling=True),
        dict(sd_vae_name="vae.safetensors", sd_vae_hash="abcdef0123"),
        dict(sd_model_name="my, model: v1", sd_model_hash=None),
        dict(extra={"Denoising strength": 0.7, "Hires upscale": 2.0, "Hires steps": 10, "Hires upscaler": "Latent"}),
        dict(extra={"Eta": 0.5, "Lora hashes": "x: abcdef123456, y: 0123456789ab", "Emphasis": "No norm"}),
        dict(extra={"Hires prompt": "has \"quotes\" and \\ back, slash", "Tiling": "Tiling"}),
        dict(prompt="  padded prompt  ", negative_prompt=""),
        dict(prompt="", negative_prompt=""),
        dict(prompt="café 漢字, ok", negative_prompt="ñ"),
        dict(restore_faces=True),
        dict(extra={"Version": "custom"}),
        dict(cfg_scale=0.1 + 0.2, steps=150),
    ]
    return [{**base, **r, "opts": {**base["opts"], **r.get("opts", {})}} for r in rows]


SAMPLER_OPTIONS = {"Euler a": {"uses_ensd": True}, "Euler": {}, "DPM++ 2M": {"scheduler": "karras"},
                   "DDIM": {"default_eta_is_0": True}}


def run_create(pkg, opts, row):
    ns = {}
    sd_samplers = types.SimpleNamespace(
        find_sampler_config=lambda name: types.SimpleNamespace(options=SAMPLER_OPTIONS.get(name, {})))
    ns["sd_samplers"] = sd_samplers
    uses = function_from(SRC / "sd_samplers_common.py", "is_sampler_using_eta_noise_seed_delta", ns)
    for k, v in {**OPTS, **row["opts"]}.items():
        setattr(opts, k, v)
    env = {"opts": opts, "shared": pkg.shared, "infotext_utils": pkg.infotext_utils, "errors": pkg.errors,
           "devices": types.SimpleNamespace(fp8=False), "program_version": lambda: "v1.10.1",
           "sd_samplers_common": types.SimpleNamespace(is_sampler_using_eta_noise_seed_delta=uses)}
    create = function_from(SRC / "processing.py", "create_infotext", env)
    p = types.SimpleNamespace(
        steps=row["steps"], sampler_name=row["sampler_name"], scheduler=row["scheduler"], cfg_scale=row["cfg_scale"],
        all_seeds=[row["seed"]], restore_faces=row["restore_faces"], width=row["width"], height=row["height"],
        sd_model_hash=row["sd_model_hash"], sd_model_name=row["sd_model_name"], sd_vae_hash=row["sd_vae_hash"],
        sd_vae_name=row["sd_vae_name"], subseed_strength=row["subseed_strength"], all_subseeds=[row["subseed"]],
        seed_resize_from_w=row["seed_resize_from_w"], seed_resize_from_h=row["seed_resize_from_h"],
        extra_generation_params=dict(row["extra"]), is_using_inpainting_conditioning=False, tiling=row["tiling"],
        clip_skip=row["clip_skip"], enable_hr=False, eta=row["eta"], sampler=None, batch_size=1,
        all_negative_prompts=[row["negative_prompt"]], get_token_merging_ratio=lambda for_hr=False: 0,
        user=None)
    return create(p, [row["prompt"]], [row["seed"]], [row["subseed"]])


def typed(v):
    """[type, text] so that Swift can rebuild the exact Python value (int vs float vs bool vs str)."""
    if isinstance(v, bool):
        return ["bool", str(v)]
    if isinstance(v, int):
        return ["int", str(v)]
    if isinstance(v, float):
        return ["float", repr(v)]
    return ["str", str(v)]


def png_fixtures():
    """Small PNGs written by Pillow in several colour types, with text chunks, and the RGB pixels expected
    (8-bit values exact, alpha dropped, 16-bit scaled as round(v * 255 / 65535))."""
    import numpy as np
    from PIL import Image, PngImagePlugin
    rng = np.random.default_rng(7)
    out = OUT / "png"
    out.mkdir(parents=True, exist_ok=True)
    expected = {}

    def save(name, img, rgb, texts=()):
        info = PngImagePlugin.PngInfo()
        for kind, key, value in texts:
            if kind == "tEXt":
                info.add_text(key, value)
            elif kind == "zTXt":
                info.add_text(key, value, zip=True)
            else:
                info.add_itxt(key, value, zip=(kind == "iTXt-z"))
        img.save(out / f"{name}.png", pnginfo=info)
        expected[name] = {"width": img.width, "height": img.height, "rgb": [int(x) for x in rgb.reshape(-1)],
                          "texts": [[k, v] for _, k, v in texts]}

    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    save("rgb8", Image.fromarray(rgb, "RGB"), rgb,
         [("tEXt", "parameters", "a cat\nSteps: 20, Sampler: Euler"), ("zTXt", "comment", "zipped, text" * 20),
          ("iTXt", "title", "漢字 ünïcode"), ("iTXt-z", "note", "compressed itxt ✓" * 10)])
    rgba = rng.integers(0, 256, (4, 6, 4), dtype=np.uint8)
    save("rgba8", Image.fromarray(rgba, "RGBA"), rgba[..., :3])
    gray = rng.integers(0, 256, (6, 3), dtype=np.uint8)
    save("gray8", Image.fromarray(gray, "L"), np.repeat(gray[..., None], 3, axis=2))
    la = rng.integers(0, 256, (3, 3, 2), dtype=np.uint8)
    save("graya8", Image.fromarray(la, "LA"), np.repeat(la[..., :1], 3, axis=2))
    gray16 = rng.integers(0, 65536, (4, 5), dtype=np.uint16)
    save("gray16", Image.fromarray(gray16),
         np.repeat(np.round(gray16.astype(np.float64) * 255 / 65535).astype(np.uint8)[..., None], 3, axis=2))
    pal = Image.fromarray(rng.integers(0, 4, (3, 4), dtype=np.uint8), "P")
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
    pal.putpalette(palette)
    idx = np.array(pal)
    save("palette", pal, np.array(palette, dtype=np.uint8).reshape(4, 3)[idx])
    # 16-bit RGB (Pillow cannot write it): raw chunks, filter 0 rows, big-endian samples.
    import struct
    import zlib
    rgb16 = rng.integers(0, 65536, (3, 4, 3), dtype=np.uint16)
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 3, 16, 2, 0, 0, 0))
            + chunk(b"tEXt", b"parameters\x00sixteen bit") + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    (out / "rgb16.png").write_bytes(data)
    expected["rgb16"] = {"width": 4, "height": 3,
                         "rgb": [int(x) for x in np.round(rgb16.astype(np.float64) * 255 / 65535).reshape(-1)],
                         "texts": [["parameters", "sixteen bit"]]}
    (OUT / "png_expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")


def main():
    png_fixtures()
    if not (SRC / "infotext_utils.py").exists():
        print(f"gen_api.py: A1111 modules not found at {SRC} (set A1111_MODULES); fixtures left as committed")
        return
    pkg, opts = setup()
    parsed = []
    for text in PARSE_CASES:
        res = pkg.infotext_utils.parse_generation_parameters(text)
        parsed.append({"infotext": text, "parameters": [[k, *typed(v)] for k, v in res.items()]})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "infotext_parse.json").write_text(json.dumps(parsed, indent=1, ensure_ascii=False) + "\n")
    created = []
    for row in create_cases():
        text = run_create(pkg, opts, row)
        settings = {**row, "extra": [[k, *typed(v)] for k, v in row["extra"].items()], "opts": {**OPTS, **row["opts"]}}
        created.append({"settings": settings, "infotext": text})
    (OUT / "infotext_create.json").write_text(json.dumps(created, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(parsed)} parse and {len(created)} create cases to {OUT}")


if __name__ == "__main__":
    main()
