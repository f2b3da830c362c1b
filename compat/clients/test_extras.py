"""LoRA, textual inversion and external VAE through a live server, and the infotext round trip: every image's
infotext, fed back through the `infotext` field (A1111's way of pasting parameters), must make the same pixels.

The models folder is built per session: the embedded tiny checkpoint, fixtures/lora/tiny_lora.safetensors
(alias "tinyAlias", addnet hash from compat/reference/gen_lora.py), a width-32 embedding and a brighter copy of the
checkpoint's VAE, both written here with the standard library only (no torch in this venv).
"""
import base64
import hashlib
import io
import json
import random
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
import requests
from PIL import Image

from conftest import ROOT, Server

TINY = ROOT / "Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors"
LORA = ROOT / "fixtures/lora/tiny_lora.safetensors"
LORA_SHORT = json.loads((ROOT / "fixtures/lora/cases.json").read_text())["addnet_hash"][:12]


def write_safetensors(path, tensors):
    """tensors: name -> (dtype, shape, raw bytes)."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in sorted(tensors.items()):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def read_safetensors(path):
    data = Path(path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    return {k: (v["dtype"], v["shape"], data[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
            for k, v in header.items()}


def brighter_vae(path):
    """The checkpoint's own VAE keys without the first_stage_model. prefix, decoder output bias + 0.25."""
    out = {}
    for name, (dtype, shape, raw) in read_safetensors(TINY).items():
        if not name.startswith("first_stage_model."):
            continue
        key = name[len("first_stage_model."):]
        if key == "decoder.conv_out.bias":
            fmt = {"F32": "f", "F16": "e"}[dtype]
            values = struct.unpack(f"<{len(raw) // struct.calcsize(fmt)}{fmt}", raw)
            raw = struct.pack(f"<{len(values)}{fmt}", *[v + 0.25 for v in values])
        out[key] = (dtype, shape, raw)
    write_safetensors(path, out)


def embedding(path, vectors, width=32, seed=3):
    rng = random.Random(seed)
    values = [rng.gauss(0, 0.05) for _ in range(vectors * width)]
    write_safetensors(path, {"emb_params": ("F32", [vectors, width], struct.pack(f"<{len(values)}f", *values))})


@pytest.fixture(scope="module")
def extras():
    models = Path(tempfile.mkdtemp(prefix="sdapi-extras-models-"))
    for sub in ["Stable-diffusion", "Lora", "embeddings", "VAE"]:
        (models / sub).mkdir()
    shutil.copy(TINY, models / "Stable-diffusion" / TINY.name)
    shutil.copy(LORA, models / "Lora/tiny_lora.safetensors")
    embedding(models / "embeddings/embT.safetensors", 2)
    embedding(models / "embeddings/wide.safetensors", 1, width=768)
    brighter_vae(models / "VAE/bright.safetensors")
    s = Server(models=str(models))
    yield s, models
    s.stop()
    shutil.rmtree(models, ignore_errors=True)


def txt2img(url, body):
    r = requests.post(url + "/sdapi/v1/txt2img", json=body, timeout=600)
    assert r.status_code == 200, r.text[:500]
    out = r.json()
    return out, json.loads(out["info"])


def pixels(b64):
    return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB").tobytes()


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_lists_show_the_extra_models(extras):
    server, models = extras
    loras = requests.get(server.url + "/sdapi/v1/loras").json()
    assert [(l["name"], l["alias"]) for l in loras] == [("tiny_lora", "tinyAlias")]
    assert loras[0]["metadata"]["ss_output_name"] == "tinyAlias"
    emb = requests.get(server.url + "/sdapi/v1/embeddings").json()
    assert emb["loaded"] == {"embT": {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None,
                                      "shape": 32, "vectors": 2}}
    assert list(emb["skipped"]) == ["wide"] and emb["skipped"]["wide"]["shape"] == 768
    vaes = requests.get(server.url + "/sdapi/v1/sd-vae").json()
    assert [v["model_name"] for v in vaes] == ["bright.safetensors"]


def test_lora_changes_the_image_and_is_recorded(extras):
    server, _ = extras
    base = {"prompt": "a fox", "steps": 3, "width": 64, "height": 64, "seed": 21}
    plain, _ = txt2img(server.url, base)
    lora, info = txt2img(server.url, {**base, "prompt": "a fox <lora:tinyAlias:0.7:1.3>"})
    assert pixels(lora["images"][0]) != pixels(plain["images"][0])
    assert f'Lora hashes: "tinyAlias: {LORA_SHORT}"' in info["infotexts"][0]
    assert info["extra_generation_params"]["Lora hashes"] == f"tinyAlias: {LORA_SHORT}"
    # A name no file answers to is skipped, as A1111 skips it: same image as without the tag.
    missing, info = txt2img(server.url, {**base, "prompt": "a fox <lora:nobody:1>"})
    assert pixels(missing["images"][0]) == pixels(plain["images"][0])
    assert "Lora hashes" not in info["infotexts"][0]


def test_embedding_and_vae_are_recorded(extras):
    server, models = extras
    base = {"prompt": "a photo of embT", "negative_prompt": "embT, blurry", "steps": 3, "width": 64,
            "height": 64, "seed": 8}
    _, info = txt2img(server.url, base)
    short = file_sha256(models / "embeddings/embT.safetensors")[:12]
    # The negative prompt is encoded first, then the prompt; each call puts its own entries first.
    assert f'TI hashes: "embT: {short}, embT: {short}"' in info["infotexts"][0]
    _, info = txt2img(server.url, {**base, "override_settings": {"sd_vae": "bright.safetensors"}})
    vae_short = file_sha256(models / "VAE/bright.safetensors")[:10]
    assert f"VAE hash: {vae_short}, VAE: bright.safetensors" in info["infotexts"][0]
    assert info["sd_vae_name"] == "bright.safetensors" and info["sd_vae_hash"] == vae_short


ROUND_TRIP = [
    ("euler", {"prompt": "a red fox", "steps": 3, "seed": 11}),
    ("dpmpp_2m_karras", {"prompt": "old sailor, (oil painting:1.2)", "negative_prompt": "blurry",
                         "sampler_name": "DPM++ 2M", "scheduler": "Karras", "cfg_scale": 5.5, "steps": 4,
                         "seed": 12}),
    ("euler_a_ensd", {"prompt": "city at night", "sampler_name": "Euler a", "steps": 3, "seed": 13,
                      "override_settings": {"eta_noise_seed_delta": 31337}}),
    ("hires", {"prompt": "a castle", "steps": 3, "seed": 14, "enable_hr": True, "hr_scale": 1.5,
               "denoising_strength": 0.6, "hr_upscaler": "Latent (nearest)", "hr_second_pass_steps": 2}),
    ("hires_other_sampler", {"prompt": "a bridge", "steps": 3, "seed": 15, "enable_hr": True,
                             "denoising_strength": 0.5, "hr_sampler_name": "DPM++ 2M", "hr_prompt": "a stone bridge"}),
    ("lora", {"prompt": "a fox <lora:tinyAlias:0.7:1.3>", "steps": 3, "seed": 16}),
    ("embedding", {"prompt": "a photo of embT", "negative_prompt": "embT", "steps": 3, "seed": 17}),
    ("clip_skip_cpu_rng", {"prompt": "a tree", "steps": 3, "seed": 18,
                           "override_settings": {"CLIP_stop_at_last_layers": 2, "randn_source": "CPU"}}),
    ("variation_seed", {"prompt": "a lake", "steps": 3, "seed": 19, "subseed": 5, "subseed_strength": 0.3,
                        "seed_resize_from_w": 96, "seed_resize_from_h": 64}),
    ("vae", {"prompt": "a boat", "steps": 3, "seed": 20, "override_settings": {"sd_vae": "bright.safetensors"}}),
    ("batch", {"prompt": "a cat [dog:cow:2]", "steps": 4, "seed": 22, "batch_size": 2}),
]


@pytest.mark.parametrize("case", ROUND_TRIP, ids=[c[0] for c in ROUND_TRIP])
def test_infotext_round_trip_makes_the_same_pixels(extras, case):
    server, _ = extras
    name, body = case
    first, info = txt2img(server.url, {"width": 64, "height": 64, **body})
    for i, text in enumerate(info["infotexts"]):
        # The PNG carries the same text, and /png-info reads it back.
        parsed = requests.post(server.url + "/sdapi/v1/png-info", json={"image": first["images"][i]}).json()
        assert parsed["info"] == text
        again, info2 = txt2img(server.url, {"infotext": text})
        assert info2["infotexts"][0] == text, name
        assert pixels(again["images"][0]) == pixels(first["images"][i]), f"{name}: image {i} differs after the round trip"
