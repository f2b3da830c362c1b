"""Real clients from PyPI against the server: webuiapi, aaa1111, sd-parsers."""
import base64
import io

import pytest
import webuiapi
from PIL import Image

from conftest import png_with_text


@pytest.fixture
def webui(server):
    return webuiapi.WebUIApi(host="127.0.0.1", port=server.port)


def test_webuiapi_lists(webui):
    assert webui.get_options()["CLIP_stop_at_last_layers"] in (1, 2)
    assert [m.split(" [")[0] for m in webui.util_get_model_names()] == ["sdapi-random-test-tiny-sd15.safetensors"]
    assert "Euler a" in webui.util_get_sampler_names()
    assert "karras" in webui.util_get_scheduler_names()
    assert [u["name"] for u in webui.get_upscalers()][:3] == ["None", "Lanczos", "Nearest"]
    assert webui.get_loras() == []
    assert webui.get_progress()["progress"] == 0


def test_webuiapi_set_model_and_options(webui):
    webui.util_set_model("sdapi-random-test-tiny-sd15")
    assert webui.util_get_current_model().startswith("sdapi-random-test-tiny-sd15.safetensors")
    webui.set_options({"eta_noise_seed_delta": 31337})
    assert webui.get_options()["eta_noise_seed_delta"] == 31337
    webui.set_options({"eta_noise_seed_delta": 0})


def test_webuiapi_png_info(webui):
    img = Image.open(io.BytesIO(base64.b64decode(png_with_text("a\nSteps: 3, Sampler: Euler, Seed: 9"))))
    res = webui.png_info(img)
    assert res.info == "a\nSteps: 3, Sampler: Euler, Seed: 9"
    assert res.parameters["Steps"] == "3"


def test_aaa1111_info_routes(server):
    from aaa1111 import AAA1111
    api = AAA1111(base_url=server.url)
    assert [s.name for s in api.samplers()][0] == "DPM++ 2M"
    assert api.sd_models()[0].model_name == "sdapi-random-test-tiny-sd15"
    assert api.progress().progress == 0
    assert api.embeddings().loaded == {}
    assert isinstance(api.cmd_flags(), dict)
    api.refresh_checkpoints()


def test_aaa1111_png_info_matches_a1111_shape(server):
    """aaa1111's PNGInfoResponse lacks `parameters`, which A1111 v1.10 returns: the client raises TypeError on
    A1111 itself, and must do the same here (we keep A1111's shape)."""
    from aaa1111 import AAA1111
    api = AAA1111(base_url=server.url)
    img = Image.open(io.BytesIO(base64.b64decode(png_with_text("x\nSteps: 3, Sampler: Euler, Seed: 9"))))
    with pytest.raises(TypeError, match="parameters"):
        api.png_info(img)


def test_sd_parsers_reads_a1111_infotext(tmp_path):
    from sd_parsers import ParserManager
    text = "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7.0, Seed: 5, Size: 64x64, " \
           "Model hash: 0123456789, Model: m"
    path = tmp_path / "x.png"
    path.write_bytes(base64.b64decode(png_with_text(text)))
    info = ParserManager().parse(str(path))
    assert info is not None and info.generator.name == "AUTOMATIC1111"
    assert info.full_prompt == "a cat" and info.full_negative_prompt == "dog"
    assert info.samplers[0].name == "Euler a" and info.samplers[0].parameters["seed"] == "5"
    assert [m.name for m in info.models] == ["m"]
