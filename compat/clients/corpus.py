"""Table of malformed and edge-case requests for the client suite.

Each case: id, method, path, and one of `json` (a Python value sent as JSON), `raw` (bytes sent as is, with
`content_type`), plus `expect` = (status, text that must appear in the response body). `a1111` is filled from
fixtures/api/a1111_corpus.json (what the real A1111 v1.10.1 answered, recorded by record_a1111_corpus.py):
where A1111 answers a validation error (422) we must answer byte-identical JSON; where A1111 answers 500 for bad
input we answer the 4xx in `expect` instead. Cases marked `generation=True` need a working txt2img.
"""

TXT2IMG = "/sdapi/v1/txt2img"

INT_FIELDS = ["seed", "subseed", "seed_resize_from_h", "seed_resize_from_w", "batch_size", "n_iter", "steps",
              "width", "height", "firstphase_width", "firstphase_height", "hr_second_pass_steps", "hr_resize_x",
              "hr_resize_y"]
FLOAT_FIELDS = ["subseed_strength", "cfg_scale", "eta", "denoising_strength", "s_min_uncond", "s_churn", "s_tmax",
                "s_tmin", "s_noise", "refiner_switch_at", "hr_scale"]
BOOL_FIELDS = ["restore_faces", "tiling", "do_not_save_samples", "do_not_save_grid",
               "override_settings_restore_afterwards", "disable_extra_networks", "enable_hr", "send_images",
               "save_images"]
STR_FIELDS = ["prompt", "negative_prompt", "sampler_name", "scheduler", "hr_upscaler", "hr_prompt",
              "sampler_index", "script_name", "infotext"]


def _cases():
    cases = []

    def add(cid, method, path, expect, **kw):
        cases.append(dict(id=cid, method=method, path=path, expect=expect, **kw))

    for f in INT_FIELDS:
        add(f"int-{f}-word", "POST", TXT2IMG, (422, "value is not a valid integer"), json={f: "abc"})
        add(f"int-{f}-list", "POST", TXT2IMG, (422, "value is not a valid integer"), json={f: [1]})
        add(f"int-{f}-fractional-string", "POST", TXT2IMG, (422, "value is not a valid integer"), json={f: "1.5"})
    for f in FLOAT_FIELDS:
        add(f"float-{f}-word", "POST", TXT2IMG, (422, "value is not a valid float"), json={f: "abc"})
        add(f"float-{f}-object", "POST", TXT2IMG, (422, "value is not a valid float"), json={f: {"a": 1}})
    for f in BOOL_FIELDS:
        add(f"bool-{f}-word", "POST", TXT2IMG, (422, "value could not be parsed to a boolean"), json={f: "maybe"})
        add(f"bool-{f}-two", "POST", TXT2IMG, (422, "value could not be parsed to a boolean"), json={f: 2})
    for f in STR_FIELDS:
        add(f"str-{f}-list", "POST", TXT2IMG, (422, "str type expected"), json={f: ["a"]})
        add(f"str-{f}-object", "POST", TXT2IMG, (422, "str type expected"), json={f: {"a": "b"}})

    add("list-styles-string", "POST", TXT2IMG, (422, "value is not a valid list"), json={"styles": "abc"})
    add("list-styles-items", "POST", TXT2IMG, (422, "str type expected"), json={"styles": ["a", ["b"]]})
    add("list-script-args-string", "POST", TXT2IMG, (422, "value is not a valid list"), json={"script_args": "x"})
    add("dict-override-settings-string", "POST", TXT2IMG, (422, "value is not a valid dict"),
        json={"override_settings": "x"})
    add("dict-alwayson-list", "POST", TXT2IMG, (422, "value is not a valid dict"), json={"alwayson_scripts": [1]})
    add("dict-comments-number", "POST", TXT2IMG, (422, "value is not a valid dict"), json={"comments": 5})
    add("two-errors-in-order", "POST", TXT2IMG, (422, '"loc":["body","steps"]'), json={"width": "b", "steps": "a"})

    add("body-array", "POST", TXT2IMG, (422, "value is not a valid dict"), json=[1, 2])
    add("body-string", "POST", TXT2IMG, (422, "value is not a valid dict"), json="hello")
    add("body-number", "POST", TXT2IMG, (422, "value is not a valid dict"), json=5)
    add("body-empty", "POST", TXT2IMG, (422, "field required"), raw=b"", content_type="application/json")
    add("body-null", "POST", TXT2IMG, (422, "field required"), raw=b"null", content_type="application/json")
    add("body-text-plain", "POST", TXT2IMG, (422, "value is not a valid dict"), raw=b"{}", content_type="text/plain")
    add("int-seed-beyond-64-bit", "POST", TXT2IMG, (422, "too large"), raw=b'{"seed": 99999999999999999999999}',
        content_type="application/json")
    add("float-cfg-nan", "POST", TXT2IMG, (422, "finite"), raw=b'{"cfg_scale": NaN}', content_type="application/json")
    add("float-cfg-infinity-string", "POST", TXT2IMG, (422, "finite"), json={"cfg_scale": "inf"})
    add("deeply-nested-json", "POST", TXT2IMG, (400, "There was an error parsing the body"),
        raw=b'{"comments": ' + b"[" * 1000 + b"]" * 1000 + b"}", content_type="application/json")
    add("body-truncated-json", "POST", TXT2IMG, (422, "value_error.jsondecode"), raw=b'{"steps":',
        content_type="application/json")
    add("body-trailing-garbage", "POST", TXT2IMG, (422, "value_error.jsondecode"), raw=b'{"steps":1} x',
        content_type="application/json")
    add("body-form-encoded", "POST", TXT2IMG, (422, "value is not a valid dict"), raw=b"steps=1",
        content_type="application/x-www-form-urlencoded")
    add("body-single-quotes", "POST", TXT2IMG, (422, "value_error.jsondecode"), raw=b"{'steps': 1}",
        content_type="application/json")

    # Values A1111 accepts at validation but fails on later with a 500 (or worse): we answer 422.
    for f, v, msg in [("steps", 0, "greater than or equal to 1"), ("steps", -1, "greater than or equal to 1"),
                      ("steps", 1000000000, "less than or equal to"), ("width", 0, "greater than or equal to"),
                      ("height", -8, "greater than or equal to"), ("width", 100000, "less than or equal to"),
                      ("n_iter", 0, "greater than or equal to 1"), ("batch_size", 0, "greater than or equal to 1"),
                      ("batch_size", 100000, "less than or equal to"), ("steps", None, "none is not an allowed"),
                      ("width", None, "none is not an allowed"), ("cfg_scale", None, "none is not an allowed"),
                      ("denoising_strength", 1.5, "less than or equal to 1"),
                      ("subseed_strength", -0.5, "greater than or equal to 0"),
                      ("hr_scale", 0, "greater than 0"), ("hr_second_pass_steps", -1, "greater than or equal to 0")]:
        add(f"range-{f}-{v}", "POST", TXT2IMG, (422, msg), json={f: v})
    add("range-pixels-budget", "POST", TXT2IMG, (422, "too large"),
        json={"width": 4096, "height": 4096, "batch_size": 64})
    add("range-hires-target", "POST", TXT2IMG, (422, "too large"),
        json={"enable_hr": True, "width": 4096, "height": 4096, "hr_scale": 4})

    add("script-unknown", "POST", TXT2IMG, (422, "Script 'nope' not found"), json={"script_name": "nope"})
    add("script-path-traversal", "POST", TXT2IMG, (422, "not found"), json={"script_name": "../../etc/passwd"})
    add("alwayson-unknown", "POST", TXT2IMG, (422, "Script 'nope' not found"),
        json={"alwayson_scripts": {"nope": {"args": []}}})
    add("hr-upscaler-unknown", "POST", TXT2IMG, (422, "hr_upscaler"), json={"enable_hr": True, "hr_upscaler": "Nope"})
    add("override-unknown-key", "POST", TXT2IMG, (422, "no_such_option"),
        json={"override_settings": {"no_such_option": 1}})
    add("override-wrong-type", "POST", TXT2IMG, (422, "CLIP_stop_at_last_layers"),
        json={"override_settings": {"CLIP_stop_at_last_layers": "two"}})
    add("hr-checkpoint-unknown", "POST", TXT2IMG, (404, "hr_checkpoint_name"),
        json={"enable_hr": True, "denoising_strength": 0.5, "hr_checkpoint_name": "../../etc/passwd"})
    add("hr-without-denoising", "POST", TXT2IMG, (422, "denoising_strength"), json={"enable_hr": True})
    add("refiner-unsupported", "POST", TXT2IMG, (422, "refiner_checkpoint"), json={"refiner_checkpoint": "x"})
    add("alwayson-selectable-name", "POST", TXT2IMG, (422, "not found"),
        json={"alwayson_scripts": {"x/y/z plot": {"args": []}}})
    add("firstpass-image-bad-base64", "POST", TXT2IMG, (400, "Invalid encoded image"),
        json={"firstpass_image": "!!!notbase64", "enable_hr": True, "denoising_strength": 0.5})

    add("options-unknown-key", "POST", "/sdapi/v1/options", (400, "no_such_option"), json={"no_such_option": 1})
    add("options-checkpoint-unknown", "POST", "/sdapi/v1/options", (404, "not found"),
        json={"sd_model_checkpoint": "nope.safetensors"})
    add("options-checkpoint-traversal", "POST", "/sdapi/v1/options", (404, "not found"),
        json={"sd_model_checkpoint": "../../../../etc/passwd"})
    add("options-checkpoint-absolute", "POST", "/sdapi/v1/options", (404, "not found"),
        json={"sd_model_checkpoint": "/etc/passwd"})
    add("options-wrong-type", "POST", "/sdapi/v1/options", (400, "CLIP_stop_at_last_layers"),
        json={"CLIP_stop_at_last_layers": "abc"})
    add("options-body-array", "POST", "/sdapi/v1/options", (422, "value is not a valid dict"), json=[1])
    add("options-bad-json", "POST", "/sdapi/v1/options", (422, "value_error.jsondecode"), raw=b"{",
        content_type="application/json")

    add("pnginfo-missing-image", "POST", "/sdapi/v1/png-info", (422, "field required"), json={})
    add("pnginfo-image-number", "POST", "/sdapi/v1/png-info", (422, "str type expected"), json={"image": [1]})
    add("pnginfo-empty", "POST", "/sdapi/v1/png-info", (400, "Invalid encoded image"), json={"image": ""})
    add("pnginfo-bad-base64", "POST", "/sdapi/v1/png-info", (400, "Invalid encoded image"), json={"image": "!!!"})
    add("pnginfo-not-an-image", "POST", "/sdapi/v1/png-info", (400, "Invalid encoded image"),
        json={"image": "aGVsbG8gd29ybGQ="})
    add("pnginfo-truncated-png", "POST", "/sdapi/v1/png-info", (400, "Invalid encoded image"),
        json={"image": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"})
    add("pnginfo-data-url-garbage", "POST", "/sdapi/v1/png-info", (400, "Invalid encoded image"),
        json={"image": "data:image/png;base64,@@@@"})

    add("progress-bad-bool", "GET", "/sdapi/v1/progress?skip_current_image=maybe", (422, "type_error.bool"))
    add("unknown-route", "GET", "/sdapi/v1/nope", (404, "Not Found"))
    add("wrong-method", "POST", "/sdapi/v1/sd-models", (405, "Method Not Allowed"))
    add("wrong-method-txt2img", "GET", TXT2IMG, (405, "Method Not Allowed"))
    add("huge-body", "POST", TXT2IMG, (413, "too large"), raw=b'{"prompt":"' + b"a" * (65 * 1024 * 1024) + b'"}',
        content_type="application/json")
    return cases


CASES = _cases()

# Requests that must succeed once txt2img generates (pydantic-v1 coercions as A1111 applies them).
GENERATION_CASES = [
    dict(id="coerce-prompt-number", json={"prompt": 123, "steps": 2, "width": 64, "height": 64},
         check=lambda r: r["parameters"]["prompt"] == "123"),
    dict(id="coerce-seed-fraction", json={"seed": 1.5, "steps": 2, "width": 64, "height": 64},
         check=lambda r: r["parameters"]["seed"] == 1),
    dict(id="coerce-steps-string", json={"steps": "2", "width": 64, "height": 64},
         check=lambda r: r["parameters"]["steps"] == 2),
    dict(id="coerce-cfg-int", json={"cfg_scale": 7, "steps": 2, "width": 64, "height": 64},
         check=lambda r: r["parameters"]["cfg_scale"] == 7.0 and "CFG scale: 7.0" in r["info"]),
    dict(id="unknown-sampler-falls-back", json={"sampler_name": "nope", "steps": 2, "width": 64, "height": 64},
         check=lambda r: "Sampler: DPM++ 2M" in r["info"]),
    dict(id="override-checkpoint-unknown-dropped",
         json={"override_settings": {"sd_model_checkpoint": "../../../etc/passwd"}, "steps": 2, "width": 64,
               "height": 64},
         check=lambda r: "Model: sdapi-random-test-tiny-sd15" in r["info"]),
    dict(id="unknown-field-ignored", json={"no_such_field": 1, "steps": 2, "width": 64, "height": 64},
         check=lambda r: "no_such_field" not in r["parameters"]),
]
