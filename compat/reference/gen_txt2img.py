"""Whole txt2img runs on the tiny SD1 checkpoint with A1111 v1.10.1 semantics, for end-to-end parity.

    REF_PY=/work/refvenv/bin/python ./compat/reference/make_fixtures.sh     (or run this file with that python)

A1111's processing is restated here on top of the real building blocks: transformers' CLIPTokenizer and
CLIPTextModel, diffusers' UNet and VAE (tiny_sd1() weights, exactly the embedded default model's), k-diffusion's
samplers and CompVis eps wrapper (ab527a9, through kdiffusion.py), and A1111's CPU noise (torch generators seeded
per image; the extra ancestral noise drawn from the same generators, as A1111's ImageRNG.next()). What is
restated, with its A1111 source:
- cond/uncond batched into one UNet call and combined on x0: sd_samplers_cfg_denoiser.py CFGDenoiser
- x = noise · sigmas[0] and the sigma schedules: sd_samplers_kdiffusion.py KDiffusionSampler.sample/get_sigmas
- prompts without emphasis or scheduling: BOS + tokens + EOS, padded with EOS to 77 (sd_hijack_clip.py)
- decode: first_stage_model.decode(latent / 0.18215), clamp((x + 1) / 2, 0, 1)
- extra-network tags: every `<name:args>` (regex `<(\w+):([^>]+)>`) is cut out of the (positive) prompt text,
  which is otherwise left as it is (modules/extra_networks.py parse_prompt, called by processing.py
  parse_extra_network_prompts on the prompts only); a `<lora:NAME:TE:UNET>` tag merges the LoRA file listed
  under the case's "loras" into the UNet and CLIP weights before sampling, with gen_lora.py's restatement of
  A1111's extensions-builtin/Lora (networks.py network_apply_weights, CPU / float32 path)

Writes fixtures/txt2img/cases.json (the requests; a case with LoRA tags also has "loras": {name: path of the
file, relative to the repository}: what the Lora folder holds under that name) and
fixtures/txt2img/<case>.safetensors (`latent` before decoding [B, 4, h, w], `image` [B, 3, H, W] in [0, 1]).
The LoRA file is read as committed (gen_lora.py, which make_fixtures.sh runs first, writes it).
"""
import copy
import re
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import CLIPTokenizer

import gen_lora
import sd_layout
from common import REPO_ROOT, clip_tokenizer_from_merges, save_tensors, write_json
from kdiffusion import external, sampling
from sd_layout import tiny_sd1

CASES = [
    {"name": "euler_a", "prompt": "a red fox in the snow", "negative_prompt": "", "sampler_name": "Euler a",
     "scheduler": "Automatic", "steps": 8, "cfg_scale": 7.0, "seed": 42, "width": 64, "height": 64,
     "batch_size": 2},
    {"name": "dpmpp_2m_karras", "prompt": "portrait of an old sailor, oil painting",
     "negative_prompt": "blurry, lowres", "sampler_name": "DPM++ 2M", "scheduler": "Karras", "steps": 6,
     "cfg_scale": 5.5, "seed": 1234567, "width": 64, "height": 128, "batch_size": 1},
    {"name": "euler", "prompt": "city skyline at night", "negative_prompt": "fog", "sampler_name": "Euler",
     "scheduler": "Automatic", "steps": 5, "cfg_scale": 3.0, "seed": 4294967294, "width": 128, "height": 64,
     "batch_size": 1},
    {"name": "euler_lora", "prompt": "a red fox in the snow <lora:tiny_lora:0.7:1.3>", "negative_prompt": "",
     "sampler_name": "Euler", "scheduler": "Automatic", "steps": 6, "cfg_scale": 6.0, "seed": 7, "width": 64,
     "height": 64, "batch_size": 1, "loras": {"tiny_lora": "fixtures/lora/tiny_lora.safetensors"}},
]

RE_EXTRA_NET = re.compile(r"<(\w+):([^>]+)>")


def parse_prompt(prompt: str):
    """(prompt without extra-network tags, [(network type, [args])]). Matches: modules/extra_networks.py parse_prompt."""
    found = []

    def cut(m):
        found.append((m.group(1), m.group(2).split(":")))
        return ""

    return RE_EXTRA_NET.sub(cut, prompt), found


def with_loras(model, case):
    """The model with the case's <lora:...> tags merged into its UNet and text-encoder weights (a copy).

    The patched ldm weights come from gen_lora.patched_weights (A1111's CPU merge, restated there); they are
    written into the diffusers UNet / transformers CLIP through sd_layout's key mapping, then the modules'
    ldm state dict is rebuilt and compared with the patched one.
    """
    _, tags = parse_prompt(case["prompt"])
    loras = [gen_lora.parse_lora_tag(args) for kind, args in tags if kind == "lora"]
    if not loras:
        return model
    model = copy.deepcopy(model)
    state = dict(model.state_dict)
    for name, te, unet in loras:
        lora = load_file(str(REPO_ROOT / case["loras"][name]))
        state.update(gen_lora.patched_weights(lora, state, te, unet))
    model.state_dict = state
    unet_keys = {sd_layout.UNET_PREFIX + sd_layout.unet_key_to_ldm(k, model.config.unet): k for k in model.unet.state_dict()}
    unet_params = dict(model.unet.named_parameters())
    clip_params = dict(model.text_encoder.named_parameters())
    with torch.no_grad():
        for key, value in state.items():
            if key in unet_keys:
                param = unet_params[unet_keys[key]]
            elif key.startswith(sd_layout.CLIP_PREFIX) and key[len(sd_layout.CLIP_PREFIX):] in clip_params:
                param = clip_params[key[len(sd_layout.CLIP_PREFIX):]]
            else:
                continue
            param.copy_(value.reshape(param.shape))
    rebuilt = sd_layout.ldm_state_dict(model.config, model.text_encoder, model.unet, model.vae)
    for key, value in state.items():
        if not torch.equal(rebuilt[key], value):
            raise AssertionError(f"{key}: the modules do not hold the patched weight")
    return model


def tokenizer() -> CLIPTokenizer:
    """CLIP's tokenizer built from the BPE merges that ship in open_clip_torch."""
    import gzip
    from importlib.util import find_spec

    bpe = Path(find_spec("open_clip").origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    return clip_tokenizer_from_merges(gzip.open(bpe).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1])


def encode(model, tok, prompt: str) -> torch.Tensor:
    ids = tok(prompt, add_special_tokens=False)["input_ids"][:75]
    ids = [49406] + ids + [49407] * (76 - len(ids))
    with torch.no_grad():
        return model.text_encoder(torch.tensor([ids])).last_hidden_state[0]  # [77, C]


class EpsUNet(external.DiscreteEpsDDPMDenoiser):
    def __init__(self, unet, alphas_cumprod):
        super().__init__(unet, alphas_cumprod, quantize=False)

    def get_eps(self, x, t, cond):
        return self.inner_model(x, t, encoder_hidden_states=cond).sample


def run(case, model, tok):
    b, h, w = case["batch_size"], case["height"] // 8, case["width"] // 8
    alphas = model.state_dict["alphas_cumprod"].float()
    denoiser = EpsUNet(model.unet, alphas)
    cond = encode(model, tok, parse_prompt(case["prompt"])[0]).expand(b, -1, -1)
    uncond = encode(model, tok, case["negative_prompt"]).expand(b, -1, -1)  # A1111 parses tags in prompts only
    scale = case["cfg_scale"]

    def cfg(x, sigma, **_):
        x_in = torch.cat([x, x])
        sigma_in = torch.cat([sigma, sigma])
        x0 = denoiser(x_in, sigma_in, cond=torch.cat([cond, uncond]))
        x0_cond, x0_uncond = x0[:b], x0[b:]
        return x0_uncond + (x0_cond - x0_uncond) * scale

    seeds = [case["seed"] + i for i in range(b)]
    generators = [torch.Generator().manual_seed(s) for s in seeds]

    def next_noise(*_):
        return torch.stack([torch.randn((4, h, w), generator=g) for g in generators])

    steps = case["steps"]
    if case["scheduler"] == "Karras":
        sigmas = sampling.get_sigmas_karras(steps, denoiser.sigmas[0].item(), denoiser.sigmas[-1].item())
    else:
        sigmas = denoiser.get_sigmas(steps)
    x = next_noise() * sigmas[0]
    with torch.no_grad():
        if case["sampler_name"] == "Euler a":
            latent = sampling.sample_euler_ancestral(cfg, x, sigmas, disable=True, noise_sampler=next_noise)
        elif case["sampler_name"] == "DPM++ 2M":
            latent = sampling.sample_dpmpp_2m(cfg, x, sigmas, disable=True)
        else:
            latent = sampling.sample_euler(cfg, x, sigmas, disable=True)
        image = model.vae.decode(latent / 0.18215).sample
    return latent, torch.clamp((image + 1) / 2, 0, 1)


def main() -> None:
    model, tok = tiny_sd1(), tokenizer()
    for case in CASES:
        latent, image = run(case, with_loras(model, case), tok)
        save_tensors("txt2img", f"{case['name']}.safetensors", {"latent": latent, "image": image})
    write_json("txt2img", "cases.json", CASES)


if __name__ == "__main__":
    main()
