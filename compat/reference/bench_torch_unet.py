"""PyTorch CPU anchor for the network benchmarks (`make bench`; Sources/sdbench/NetworkBenchmarks.swift runs it).

    /work/refvenv/bin/python compat/reference/bench_torch_unet.py --stage unet --size 512 --threads 2
    /work/refvenv/bin/python compat/reference/bench_torch_unet.py --stage vae --size 512 --threads 2
    /work/refvenv/bin/python compat/reference/bench_torch_unet.py --stage clip --threads 2
    /work/refvenv/bin/python compat/reference/bench_torch_unet.py --stage image --size 512 --steps 20 --threads 2

Builds the full-size SD1.5 diffusers / transformers modules (sd_layout.SD15_FULL configuration, library random
init, fp32, eval, no_grad) and times, best of --repeats after one warm-up:
- unet: one CFG step, batch 2, latent size/8, timesteps [500, 500], context [2, 77, 768];
- vae: decode of one latent [1, 4, size/8, size/8];
- clip: the text model's forward on one [2, 77] batch of token ids (prompt and negative prompt, CFG's cond and
  uncond), with the attention transformers picks by default (sdpa);
- image: one whole txt2img image through diffusers' StableDiffusionPipeline (tokenizer, CLIP encode of prompt
  and negative prompt, --steps Euler steps each one UNet call at batch 2 with CFG 7, VAE decode, conversion to
  an array). The warm-up is a 1-step image and a single image is timed (--repeats is ignored: one image takes
  minutes).
The tokenizer is transformers' CLIPTokenizer over the BPE merges the Swift tokenizer ships
(Sources/Tokenizer/Resources/clip_merges.txt), the vocabulary enumerated as CLIP's SimpleTokenizer does.
Prints one JSON line: {"stage", "size", "threads", "seconds", "torch"} (and "steps" for image). Weights are
random: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sd_layout as L  # noqa: E402
from common import clip_tokenizer_from_merges  # noqa: E402

# The prompts Sources/sdbench/ImageBenchmarks.swift encodes and generates with.
PROMPT = "a photograph of an astronaut riding a horse on the moon, highly detailed, sharp focus"
NEGATIVE = "blurry, low quality, watermark"
MERGES = Path(__file__).resolve().parents[2] / "Sources" / "Tokenizer" / "Resources" / "clip_merges.txt"


def best_of(repeats: int, fn) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def tokenizer(max_length: int) -> CLIPTokenizer:
    """CLIP's tokenizer from the repository's BPE merges."""
    merges = [line for line in MERGES.read_text(encoding="utf-8").split("\n") if line]
    return clip_tokenizer_from_merges(merges, model_max_length=max_length)


def text_model(config: L.SD1Config) -> CLIPTextModel:
    return CLIPTextModel._from_config(L.transformers_clip_config(config.clip), attn_implementation="sdpa").eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=["unet", "vae", "clip", "image"], required=True)
    parser.add_argument("--size", type=int, default=512, help="image size in pixels (latent = size / 8)")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps of the image stage")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    latent = args.size // 8
    config = L.SD15_FULL
    result = {"stage": args.stage, "size": args.size, "threads": args.threads}
    with torch.no_grad():
        if args.stage == "unet":
            model = UNet2DConditionModel(**L.diffusers_unet_kwargs(config.unet)).eval()
            x = torch.randn(2, 4, latent, latent)
            t = torch.tensor([500.0, 500.0])
            context = torch.randn(2, 77, config.unet.context_dim)
            seconds = best_of(args.repeats, lambda: model(x, t, encoder_hidden_states=context))
        elif args.stage == "vae":
            model = AutoencoderKL(**L.diffusers_vae_kwargs(config.vae)).eval()
            z = torch.randn(1, 4, latent, latent)
            seconds = best_of(args.repeats, lambda: model.decode(z))
        elif args.stage == "clip":
            model = text_model(config)
            tok = tokenizer(config.clip.max_positions)
            ids = tok([PROMPT, NEGATIVE], padding="max_length", max_length=config.clip.max_positions,
                      truncation=True, return_tensors="pt").input_ids
            seconds = best_of(args.repeats, lambda: model(ids))
        else:
            pipe = StableDiffusionPipeline(
                vae=AutoencoderKL(**L.diffusers_vae_kwargs(config.vae)).eval(),
                text_encoder=text_model(config),
                tokenizer=tokenizer(config.clip.max_positions),
                unet=UNet2DConditionModel(**L.diffusers_unet_kwargs(config.unet)).eval(),
                scheduler=EulerDiscreteScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                                 beta_schedule="scaled_linear", steps_offset=1,
                                                 timestep_spacing="leading"),
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)

            def image(steps: int) -> None:
                pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=steps, guidance_scale=7.0,
                     height=args.size, width=args.size, generator=torch.Generator().manual_seed(1),
                     output_type="np")

            image(1)
            start = time.perf_counter()
            image(args.steps)
            seconds = time.perf_counter() - start
            result["steps"] = args.steps
    result.update(seconds=seconds, torch=torch.__version__)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
