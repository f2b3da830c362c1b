"""Cases that need txt2img to make images; they skip while the build has no generation engine."""
import base64
import io

import pytest
import requests
import webuiapi
from PIL import Image

from corpus import GENERATION_CASES

SMALL = {"steps": 2, "width": 64, "height": 64}


@pytest.mark.parametrize("case", GENERATION_CASES, ids=[c["id"] for c in GENERATION_CASES])
def test_generation_case(base, needs_generation, case):
    r = requests.post(base + "/sdapi/v1/txt2img", json=case["json"], timeout=600)
    assert r.status_code == 200, r.text[:500]
    assert case["check"](r.json())


def test_response_shape_and_png_text(base, needs_generation):
    r = requests.post(base + "/sdapi/v1/txt2img", json={**SMALL, "prompt": "a cat", "seed": 5}, timeout=600)
    body = r.json()
    assert list(body) == ["images", "parameters", "info"]
    assert isinstance(body["info"], str)
    raw = base64.b64decode(body["images"][0])
    img = Image.open(io.BytesIO(raw))
    assert img.size == (64, 64) and img.mode == "RGB"
    assert list(img.info) == ["parameters"]
    assert img.info["parameters"].startswith("a cat\nSteps: 2, Sampler: Euler, Schedule type: Automatic, CFG scale: 7.0, Seed: 5")
    params = body["parameters"]
    assert params["sampler_index"] == "Euler" and params["sampler_name"] is None and params["steps"] == 2
    info = __import__("json").loads(body["info"])
    assert info["seed"] == 5 and info["all_seeds"] == [5] and info["sampler_name"] == "Euler"
    assert info["infotexts"][0] == img.info["parameters"]
    roundtrip = requests.post(base + "/sdapi/v1/png-info", json={"image": body["images"][0]}, timeout=30).json()
    assert roundtrip["parameters"]["Seed"] == "5"


def test_webuiapi_txt2img(server, needs_generation):
    api = webuiapi.WebUIApi(host="127.0.0.1", port=server.port)
    result = api.txt2img(prompt="a dog", seed=7, steps=2, width=64, height=64, sampler_name="Euler a")
    assert result.image.size == (64, 64)
    assert result.info["seed"] == 7
    assert "Sampler: Euler a" in result.info["infotexts"][0]


def test_sd_parsers_reads_our_png(base, needs_generation, tmp_path):
    from sd_parsers import ParserManager
    r = requests.post(base + "/sdapi/v1/txt2img", json={**SMALL, "prompt": "a cat", "negative_prompt": "dog"},
                      timeout=600)
    path = tmp_path / "ours.png"
    path.write_bytes(base64.b64decode(r.json()["images"][0]))
    info = ParserManager().parse(str(path))
    assert info is not None and info.generator.name == "AUTOMATIC1111"
    assert info.full_prompt == "a cat" and info.full_negative_prompt == "dog"
    assert [m.name for m in info.models] == ["sdapi-random-test-tiny-sd15"]


def test_batch_seeds(base, needs_generation):
    r = requests.post(base + "/sdapi/v1/txt2img", json={**SMALL, "seed": 10, "batch_size": 2, "n_iter": 2},
                      timeout=600)
    info = __import__("json").loads(r.json()["info"])
    assert info["all_seeds"] == [10, 11, 12, 13]
    assert len(r.json()["images"]) == 4


def test_infotext_field_fills_unset_fields(base, needs_generation):
    text = "pasted prompt\nSteps: 3, Sampler: DPM++ 2M Karras, CFG scale: 5.0, Seed: 99, Size: 64x64"
    r = requests.post(base + "/sdapi/v1/txt2img", json={"infotext": text, "steps": 2}, timeout=600)
    params = r.json()["parameters"]
    assert params["prompt"] == "pasted prompt" and params["steps"] == 2 and params["seed"] == 99
    assert params["sampler_name"] == "DPM++ 2M" and params["scheduler"] == "Automatic"
    assert params["width"] == 64 and params["cfg_scale"] == 5.0
