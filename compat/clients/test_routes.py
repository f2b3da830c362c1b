"""Plain-HTTP cases for every route we serve, shapes compared with what the real A1111 v1.10.1 answered
(fixtures/api/a1111_get/*.json)."""
import json
from pathlib import Path

import pytest
import requests

from conftest import png_with_text

FIX = Path(__file__).resolve().parents[2] / "fixtures/api/a1111_get"


def a1111(name):
    return json.loads((FIX / f"{name}.json").read_text())


def get(base, route, **kw):
    r = requests.get(f"{base}/sdapi/v1/{route}", timeout=30, **kw)
    assert r.status_code == 200, r.text
    assert float(r.headers["X-Process-Time"]) >= 0
    return r.json()


def same_shape(ours, theirs, path="$"):
    """Same JSON types and, for objects, the same keys; lists compare their first items."""
    if theirs is None or ours is None:
        return
    if isinstance(theirs, bool) or isinstance(ours, bool):
        assert isinstance(ours, bool) == isinstance(theirs, bool), path
    elif isinstance(theirs, (int, float)):
        assert isinstance(ours, (int, float)), path
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict), path
        assert set(ours) == set(theirs), f"{path}: {set(ours) ^ set(theirs)}"
    elif isinstance(theirs, list):
        assert isinstance(ours, list), path
        if ours and theirs and isinstance(theirs[0], dict):
            for item in ours:
                same_shape(item, theirs[0], path + "[]")
    else:
        assert type(ours) is type(theirs), path


LISTS = ["upscalers", "latent-upscale-modes", "sd-models", "sd-vae", "hypernetworks", "face-restorers",
         "realesrgan-models", "prompt-styles", "loras", "script-info"]


@pytest.mark.parametrize("route", LISTS)
def test_list_routes(base, route):
    ours = get(base, route)
    assert isinstance(ours, list)
    same_shape(ours, a1111(route))


@pytest.mark.parametrize("route", ["embeddings", "scripts", "progress", "memory"])
def test_object_routes(base, route):
    ours = get(base, route)
    theirs = a1111(route) if route != "memory" else {"ram": {}, "cuda": {}}
    assert set(ours) == set(theirs)
    if route == "progress":
        same_shape(ours["state"], theirs["state"])
        assert ours["progress"] == 0 and ours["current_image"] is None


def test_latent_modes_equal_a1111(base):
    assert get(base, "latent-upscale-modes") == a1111("latent-upscale-modes")


def test_samplers_and_schedulers_equal_a1111(base):
    assert get(base, "samplers") == a1111("samplers")
    assert get(base, "schedulers") == a1111("schedulers")


def test_options_keys_and_defaults(base):
    ours, theirs = get(base, "options"), a1111("options")
    assert list(ours) == list(theirs)
    runtime = {"sd_model_checkpoint", "sd_checkpoint_hash", "profiling_explanation", "sd_vae_explanation",
               "infotext_explanation", "settings_in_ui"}
    for k, v in theirs.items():
        if k in runtime or (isinstance(v, str) and v.startswith("/")):
            continue
        assert ours[k] == v and type(ours[k]) is type(v), k
    assert ours["sd_model_checkpoint"].startswith("sdapi-random-test-tiny-sd15.safetensors [")


def test_cmd_flags_keys(base):
    ours = get(base, "cmd-flags")
    assert set(ours) == set(a1111("cmd-flags"))
    assert ours["api"] is True and ours["nowebui"] is True and ours["api_auth"] is None


def test_options_post_one_key_and_whole_dict(base):
    r = requests.post(base + "/sdapi/v1/options", json={"CLIP_stop_at_last_layers": 2}, timeout=30)
    assert r.status_code == 200 and r.json() is None
    opts = get(base, "options")
    assert opts["CLIP_stop_at_last_layers"] == 2
    opts["CLIP_stop_at_last_layers"] = 1
    r = requests.post(base + "/sdapi/v1/options", json=opts, timeout=30)
    assert r.status_code == 200, r.text
    assert get(base, "options")["CLIP_stop_at_last_layers"] == 1


def test_checkpoint_aliases(base):
    model = get(base, "sd-models")[0]
    for alias in [model["title"], model["title"].split(" [")[0], model["model_name"], model["hash"], model["sha256"]]:
        r = requests.post(base + "/sdapi/v1/options", json={"sd_model_checkpoint": alias}, timeout=30)
        assert r.status_code == 200, (alias, r.text)
        assert get(base, "options")["sd_model_checkpoint"] == model["title"]


@pytest.mark.parametrize("route,expected", [("refresh-checkpoints", None), ("refresh-vae", None),
                                            ("refresh-loras", None), ("refresh-embeddings", None),
                                            ("interrupt", {}), ("skip", None), ("unload-checkpoint", {}),
                                            ("reload-checkpoint", {})])
def test_post_actions(base, route, expected):
    r = requests.post(f"{base}/sdapi/v1/{route}", timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == expected


def test_server_stop_routes_absent_without_flag(base):
    for route in ["server-kill", "server-restart", "server-stop"]:
        assert requests.post(f"{base}/sdapi/v1/{route}", timeout=30).status_code == 404


def test_progress_skip_current_image(base):
    for value in ["true", "false", "1", "0"]:
        r = requests.get(base + "/sdapi/v1/progress", params={"skip_current_image": value}, timeout=30)
        assert r.status_code == 200


def test_png_info_roundtrip(base):
    text = "a cat, (sitting:1.2)\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, " \
           "CFG scale: 7.0, Seed: 5, Size: 512x512, Lora hashes: \"x: 0123456789ab\", Version: v1.10.1"
    r = requests.post(base + "/sdapi/v1/png-info", json={"image": png_with_text(text)}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["info"] == text
    assert body["items"] == {}
    p = body["parameters"]
    assert p["Prompt"] == "a cat, (sitting:1.2)" and p["Negative prompt"] == "dog"
    assert p["Size-1"] == "512" and p["Lora hashes"] == "x: 0123456789ab" and p["Emphasis"] == "Original"
    assert p["Clip skip"] == "1" and p["Hires resize-1"] == 0 and p["RNG"] == "GPU"


def test_png_info_without_parameters(base):
    for mode in ["RGB", "L"]:
        r = requests.post(base + "/sdapi/v1/png-info", json={"image": png_with_text(None, mode=mode)}, timeout=30)
        assert r.status_code == 200
        assert r.json()["info"] == "" and r.json()["parameters"]["Prompt"] == ""


def test_openapi_lists_what_we_serve(base):
    doc = requests.get(base + "/openapi.json", timeout=30).json()
    paths = doc["paths"]
    for route in ["txt2img", "options", "png-info", "progress", "sd-models", "loras"]:
        assert f"/sdapi/v1/{route}" in paths
    assert "/sdapi/v1/img2img" not in paths
    props = paths["/sdapi/v1/txt2img"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert props["steps"]["default"] == 50 and props["sampler_index"]["default"] == "Euler"
