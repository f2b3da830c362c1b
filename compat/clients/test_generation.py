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


def test_save_images_writes_files_and_returns_the_grid_first(server, needs_generation):
    """A1111's API: save_images saves every image (NNNNN-seed.png in outputs/txt2img-images/<date>/) and, for more
    than one image, a grid that is saved and returned first with index_of_first_image 1; without it, neither."""
    import datetime
    import pathlib
    out = pathlib.Path(server.data) / "outputs"
    r = requests.post(server.url + "/sdapi/v1/txt2img", json={**SMALL, "seed": 40, "batch_size": 2},
                      timeout=600).json()
    assert len(r["images"]) == 2 and not out.exists()

    r = requests.post(server.url + "/sdapi/v1/txt2img",
                      json={**SMALL, "seed": 40, "batch_size": 2, "n_iter": 2, "save_images": True}, timeout=600).json()
    info = __import__("json").loads(r["info"])
    assert len(r["images"]) == 5 and info["index_of_first_image"] == 1 and len(info["infotexts"]) == 5
    grid = Image.open(io.BytesIO(base64.b64decode(r["images"][0])))
    assert grid.size == (128, 128)
    # The returned grid's infotext is that of the last batch's first image (A1111's infotext() default).
    assert grid.info["parameters"] == info["infotexts"][0] == info["infotexts"][3]
    day = datetime.date.today().isoformat()
    samples = sorted(p.name for p in (out / "txt2img-images" / day).iterdir())
    assert samples == ["00000-40.png", "00001-41.png", "00002-42.png", "00003-43.png"]
    saved = Image.open(out / "txt2img-images" / day / "00001-41.png")
    assert saved.info["parameters"] == info["infotexts"][2]
    assert [p.name for p in (out / "txt2img-grids" / day).iterdir()] == ["grid-0000.png"]

    r = requests.post(server.url + "/sdapi/v1/txt2img", json={**SMALL, "seed": 50, "save_images": True},
                      timeout=600).json()
    assert len(r["images"]) == 1 and __import__("json").loads(r["info"])["index_of_first_image"] == 0
    assert (out / "txt2img-images" / day / "00004-50.png").exists()
