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

Writes fixtures/txt2img/cases.json (the requests) and fixtures/txt2img/<case>.safetensors (`latent` before
decoding [B, 4, h, w], `image` [B, 3, H, W] in [0, 1]).
"""
from pathlib import Path

import torch
from transformers import CLIPTokenizer

from common import save_tensors, write_json
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
]


def tokenizer() -> CLIPTokenizer:
    """CLIP's tokenizer built from the BPE merges that ship in open_clip_torch (vocabulary as CLIP's
    SimpleTokenizer enumerates it: bytes, bytes + </w>, merges, then the two special tokens)."""
    import gzip
    import json
    import tempfile
    from importlib.util import find_spec

    bpe = Path(find_spec("open_clip").origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    byte_chars = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    extra = [b for b in range(256) if b not in byte_chars]
    symbols = [chr(b) for b in byte_chars] + [chr(256 + i) for i in range(len(extra))]
    vocab = symbols + [v + "</w>" for v in symbols] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder = Path(tempfile.mkdtemp())
    (folder / "vocab.json").write_text(json.dumps({v: i for i, v in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))


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
    cond = encode(model, tok, case["prompt"]).expand(b, -1, -1)
    uncond = encode(model, tok, case["negative_prompt"]).expand(b, -1, -1)
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
        latent, image = run(case, model, tok)
        save_tensors("txt2img", f"{case['name']}.safetensors", {"latent": latent, "image": image})
    write_json("txt2img", "cases.json", CASES)


if __name__ == "__main__":
    main()
