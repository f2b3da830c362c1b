"""SD1.x single-file checkpoints in the real (ldm / CompVis) key layout, with random weights.

What a real `v1-5-pruned-emaonly` file holds, and what this module builds (same keys, shapes, dtypes):

    model.diffusion_model.*                      UNet (ldm openaimodel names)        F32
    first_stage_model.*                          AutoencoderKL (ldm names)           F32
    cond_stage_model.transformer.text_model.*    CLIP ViT-L/14 text (HF names)       F32
    cond_stage_model.transformer.text_model.embeddings.position_ids   [1, 77]      I64
    betas, alphas_cumprod, ... (12 DDPM buffers)  [1000]                             F32
    model_ema.decay                               []                                 F32
    model_ema.num_updates                         []                                 I32

Evidence for the non-weight entries (see also gen_checkpoint.py, which checks the byte size):
- The 12 DDPM buffers are what ldm's DDPM.register_schedule registers as persistent buffers
  (`lvlb_weights` is registered with persistent=False, `logvar` is a plain attribute).
- `position_ids` was a persistent buffer of transformers' CLIPTextEmbeddings when SD1 was trained
  (it is non-persistent since transformers 4.31, so we add it by hand); stable-diffusion.cpp's
  first converter lists it, with `model_ema.decay` / `model_ema.num_updates`, as tensors present in
  the files it converted but unused. Those two scalars are the LitEma bookkeeping buffers that the
  EMA-only pruning kept; A1111 strips them from VAE files (`vae_ignore_keys`).
- Key names: diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py mapping, with the
  VAE mid-block attention as 1x1 convolutions ([C, C, 1, 1]) named q / k / v / proj_out.

Python API (import from compat/reference/):

    from sd_layout import SD15_TINY, SD15_FULL, TINY_SEED, build_sd1, tiny_sd1
    model = tiny_sd1()                 # == the committed Models/Stable-diffusion tiny checkpoint
    model.state_dict                   # ldm-keyed dict, weights F32 (fp16-representable for tiny_sd1)
    model.unet, model.vae, model.text_encoder   # diffusers / transformers modules, same weights, eval()

The diffusers modules run the forward passes that parity fixtures need; their weights are exactly the
ones in `model.state_dict` (build_sd1(..., weight_dtype=torch.float16) rounds them through fp16 first,
so a Swift loader reading the fp16 file sees the same numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Tuple

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UNetConfig:
    """ldm openaimodel.UNetModel hyper-parameters (SD1: v1-inference.yaml)."""

    model_channels: int = 320
    channel_mult: Tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_levels: Tuple[int, ...] = (0, 1, 2)  # levels with a SpatialTransformer
    num_heads: int = 8
    context_dim: int = 768
    in_channels: int = 4
    out_channels: int = 4
    norm_groups: int = 32


@dataclass(frozen=True)
class VAEConfig:
    """ldm AutoencoderKL ddconfig (SD1: ch 128, ch_mult 1,2,4,4, z 4, no attention but the mid block)."""

    ch: int = 128
    ch_mult: Tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 4
    in_channels: int = 3
    out_ch: int = 3
    norm_groups: int = 32
    scale_factor: float = 0.18215


@dataclass(frozen=True)
class CLIPConfig:
    """CLIP ViT-L/14 text transformer as used by SD1 (HF CLIPTextModel, quick_gelu, causal mask)."""

    width: int = 768
    layers: int = 12
    heads: int = 12
    intermediate: int = 3072
    vocab_size: int = 49408
    max_positions: int = 77


@dataclass(frozen=True)
class SD1Config:
    name: str
    unet: UNetConfig = field(default_factory=UNetConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    clip: CLIPConfig = field(default_factory=CLIPConfig)


# The real Stable Diffusion 1.5 size.
SD15_FULL = SD1Config(name="sd15-full")

# Same keys (same block counts and names), few channels. GroupNorm has 32 groups, so every channel
# count stays a multiple of 32. CLIP heads follow the Swift rule heads = max(1, width / 64).
SD15_TINY = SD1Config(
    name="sd15-tiny",
    unet=UNetConfig(model_channels=32, num_heads=8, context_dim=32),
    vae=VAEConfig(ch=32),
    clip=CLIPConfig(width=32, layers=12, heads=1, intermediate=128),
)

# Seed of the committed tiny checkpoint (Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors).
TINY_SEED = 1505

# ldm LatentDiffusion schedule of SD1 (v1-inference.yaml).
LINEAR_START = 0.00085
LINEAR_END = 0.012
NUM_TIMESTEPS = 1000

DDPM_BUFFER_NAMES = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."
POSITION_IDS_KEY = CLIP_PREFIX + "text_model.embeddings.position_ids"
EMA_DECAY_KEY = "model_ema.decay"
EMA_NUM_UPDATES_KEY = "model_ema.num_updates"
# LitEma's decay (0.9999) and a step count; the values carry no meaning for inference.
EMA_DECAY_VALUE = 0.9999
EMA_NUM_UPDATES_VALUE = 0

# Keys that are not network weights: they keep their own dtype when a file is cast to fp16/bf16.
NON_WEIGHT_KEYS = frozenset(DDPM_BUFFER_NAMES) | {POSITION_IDS_KEY, EMA_DECAY_KEY, EMA_NUM_UPDATES_KEY}


class LayoutError(Exception):
    """A module key had no ldm equivalent, or two keys collided."""


# --------------------------------------------------------------------------------------------
# Diffusers / transformers modules from explicit configs (no downloads)
# --------------------------------------------------------------------------------------------


def diffusers_unet_kwargs(cfg: UNetConfig) -> dict:
    levels = range(len(cfg.channel_mult))
    down = tuple("CrossAttnDownBlock2D" if i in cfg.attention_levels else "DownBlock2D" for i in levels)
    up = tuple("CrossAttnUpBlock2D" if i in cfg.attention_levels else "UpBlock2D" for i in reversed(levels))
    return dict(
        sample_size=64,
        in_channels=cfg.in_channels,
        out_channels=cfg.out_channels,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=tuple(cfg.model_channels * m for m in cfg.channel_mult),
        layers_per_block=cfg.num_res_blocks,
        cross_attention_dim=cfg.context_dim,
        # diffusers' legacy name: for SD1 "attention_head_dim" is the number of heads.
        attention_head_dim=cfg.num_heads,
        norm_num_groups=cfg.norm_groups,
        norm_eps=1e-5,
        act_fn="silu",
        flip_sin_to_cos=True,
        freq_shift=0,
        downsample_padding=1,
        use_linear_projection=False,
    )


def diffusers_vae_kwargs(cfg: VAEConfig) -> dict:
    n = len(cfg.ch_mult)
    return dict(
        in_channels=cfg.in_channels,
        out_channels=cfg.out_ch,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.ch * m for m in cfg.ch_mult),
        layers_per_block=cfg.num_res_blocks,
        latent_channels=cfg.z_channels,
        norm_num_groups=cfg.norm_groups,
        act_fn="silu",
        sample_size=512,
        scaling_factor=cfg.scale_factor,
    )


def transformers_clip_config(cfg: CLIPConfig) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.width,
        intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        max_position_embeddings=cfg.max_positions,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        attention_dropout=0.0,
        dropout=0.0,
        projection_dim=cfg.width,
        # openai/clip-vit-large-patch14's config: pad 1, bos 0, eos 2 (legacy argmax pooling).
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        attn_implementation="eager",
    )


# --------------------------------------------------------------------------------------------
# Key conversion: diffusers / transformers names -> ldm single-file names
# --------------------------------------------------------------------------------------------

# Matches: diffusers scripts/convert_diffusers_to_original_stable_diffusion.py unet_conversion_map_resnet
_UNET_RESNET_PARTS = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_UNET_TOP = {
    "conv_in": "input_blocks.0.0",
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_RESNET_PARTS = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "conv_shortcut": "nin_shortcut"}
_VAE_ATTN_PARTS = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _rename_head(rest: str, parts: Dict[str, str], key: str) -> str:
    """Renames the leading module path of `rest` ("norm1.weight" -> "in_layers.0.weight")."""
    for old in sorted(parts, key=len, reverse=True):
        if rest.startswith(old + "."):
            return parts[old] + rest[len(old):]
    raise LayoutError(f"no ldm name for {key!r}")


def unet_key_to_ldm(key: str, cfg: UNetConfig) -> str:
    """One diffusers UNet2DConditionModel key -> ldm openaimodel key (without model.diffusion_model.)."""
    r = cfg.num_res_blocks
    levels = len(cfg.channel_mult)
    top = re.fullmatch(r"(conv_in|time_embedding\.linear_[12]|conv_norm_out|conv_out)\.(weight|bias)", key)
    if top:
        return f"{_UNET_TOP[top.group(1)]}.{top.group(2)}"
    m = re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key)
    if m:
        block = 1 + int(m.group(1)) * (r + 1) + int(m.group(3))
        if m.group(2) == "resnets":
            return f"input_blocks.{block}.0.{_rename_head(m.group(4), _UNET_RESNET_PARTS, key)}"
        return f"input_blocks.{block}.1.{m.group(4)}"
    m = re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key)
    if m:
        return f"input_blocks.{(int(m.group(1)) + 1) * (r + 1)}.0.op.{m.group(2)}"
    m = re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key)
    if m:
        return f"middle_block.{2 * int(m.group(1))}.{_rename_head(m.group(2), _UNET_RESNET_PARTS, key)}"
    m = re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key)
    if m:
        return f"middle_block.1.{m.group(1)}"
    m = re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key)
    if m:
        block = int(m.group(1)) * (r + 1) + int(m.group(3))
        if m.group(2) == "resnets":
            return f"output_blocks.{block}.0.{_rename_head(m.group(4), _UNET_RESNET_PARTS, key)}"
        return f"output_blocks.{block}.1.{m.group(4)}"
    m = re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.(.+)", key)
    if m:
        i = int(m.group(1))
        has_attention = (levels - 1 - i) in cfg.attention_levels
        return f"output_blocks.{i * (r + 1) + r}.{2 if has_attention else 1}.{m.group(2)}"
    raise LayoutError(f"no ldm name for UNet key {key!r}")


def vae_key_to_ldm(key: str, cfg: VAEConfig) -> str:
    """One diffusers AutoencoderKL key -> ldm AutoencoderKL key (without first_stage_model.)."""
    levels = len(cfg.ch_mult)
    m = re.fullmatch(r"(encoder|decoder)\.(conv_in|conv_out)\.(weight|bias)", key)
    if m or re.fullmatch(r"(quant_conv|post_quant_conv)\.(weight|bias)", key):
        return key
    m = re.fullmatch(r"(encoder|decoder)\.conv_norm_out\.(weight|bias)", key)
    if m:
        return f"{m.group(1)}.norm_out.{m.group(2)}"
    m = re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key)
    if m:
        return f"encoder.down.{m.group(1)}.block.{m.group(2)}.{_rename_head(m.group(3), _VAE_RESNET_PARTS, key)}"
    m = re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key)
    if m:
        return f"encoder.down.{m.group(1)}.downsample.conv.{m.group(2)}"
    m = re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key)
    if m:
        level = levels - 1 - int(m.group(1))
        return f"decoder.up.{level}.block.{m.group(2)}.{_rename_head(m.group(3), _VAE_RESNET_PARTS, key)}"
    m = re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key)
    if m:
        return f"decoder.up.{levels - 1 - int(m.group(1))}.upsample.conv.{m.group(2)}"
    m = re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key)
    if m:
        rest = _rename_head(m.group(3), _VAE_RESNET_PARTS, key)
        return f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}.{rest}"
    m = re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", key)
    if m:
        return f"{m.group(1)}.mid.attn_1.{_rename_head(m.group(2), _VAE_ATTN_PARTS, key)}"
    raise LayoutError(f"no ldm name for VAE key {key!r}")


def _put(out: Dict[str, torch.Tensor], key: str, value: torch.Tensor) -> None:
    if key in out:
        raise LayoutError(f"two module keys map to {key!r}")
    out[key] = value


def unet_to_ldm(unet_state: Dict[str, torch.Tensor], cfg: UNetConfig) -> Dict[str, torch.Tensor]:
    out: Dict[str, torch.Tensor] = {}
    for key, value in unet_state.items():
        _put(out, UNET_PREFIX + unet_key_to_ldm(key, cfg), value)
    return out


def vae_to_ldm(vae_state: Dict[str, torch.Tensor], cfg: VAEConfig) -> Dict[str, torch.Tensor]:
    out: Dict[str, torch.Tensor] = {}
    for key, value in vae_state.items():
        name = vae_key_to_ldm(key, cfg)
        # ldm's mid-block attention uses 1x1 convolutions: [C, C] -> [C, C, 1, 1].
        if re.fullmatch(r"(encoder|decoder)\.mid\.attn_1\.(q|k|v|proj_out)\.weight", name):
            value = value.reshape(*value.shape, 1, 1)
        _put(out, VAE_PREFIX + name, value)
    return out


def clip_to_ldm(clip_state: Dict[str, torch.Tensor], cfg: CLIPConfig) -> Dict[str, torch.Tensor]:
    """HF CLIPTextModel keys are kept as they are under cond_stage_model.transformer.; adds position_ids."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in clip_state.items():
        if not key.startswith("text_model."):
            raise LayoutError(f"unexpected CLIP key {key!r}")
        _put(out, CLIP_PREFIX + key, value)
    if POSITION_IDS_KEY not in out:
        _put(out, POSITION_IDS_KEY, torch.arange(cfg.max_positions, dtype=torch.int64).unsqueeze(0))
    return out


def ddpm_schedule_buffers(
    linear_start: float = LINEAR_START, linear_end: float = LINEAR_END, timesteps: int = NUM_TIMESTEPS
) -> Dict[str, torch.Tensor]:
    """The 12 persistent buffers of ldm's DDPM for the "linear" (scaled-linear) schedule, F32.

    Matches: CompVis/stable-diffusion ldm/models/diffusion/ddpm.py DDPM.register_schedule (v_posterior 0)
    and ldm/modules/diffusionmodules/util.py make_beta_schedule("linear"): float64 math, then F32.
    """
    betas = (torch.linspace(linear_start**0.5, linear_end**0.5, timesteps, dtype=torch.float64) ** 2).numpy()
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas, axis=0)
    alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    values = {
        "betas": betas,
        "alphas_cumprod": alphas_cumprod,
        "alphas_cumprod_prev": alphas_cumprod_prev,
        "sqrt_alphas_cumprod": np.sqrt(alphas_cumprod),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alphas_cumprod),
        "log_one_minus_alphas_cumprod": np.log(1.0 - alphas_cumprod),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod - 1),
        "posterior_variance": posterior_variance,
        "posterior_log_variance_clipped": np.log(np.maximum(posterior_variance, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
        "posterior_mean_coef2": (1.0 - alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - alphas_cumprod),
    }
    return {name: torch.tensor(values[name], dtype=torch.float32) for name in DDPM_BUFFER_NAMES}


def ema_bookkeeping() -> Dict[str, torch.Tensor]:
    """LitEma's two scalar buffers as they remain in EMA-only releases (decay F32, num_updates I32)."""
    return {
        EMA_DECAY_KEY: torch.tensor(EMA_DECAY_VALUE, dtype=torch.float32),
        EMA_NUM_UPDATES_KEY: torch.tensor(EMA_NUM_UPDATES_VALUE, dtype=torch.int32),
    }


# --------------------------------------------------------------------------------------------
# Random models
# --------------------------------------------------------------------------------------------


@dataclass
class SD1Model:
    """A random SD1 model: the ldm-keyed state dict and the modules that hold the same weights."""

    config: SD1Config
    seed: int
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    state_dict: Dict[str, torch.Tensor]


def _perturb_norms_(module: torch.nn.Module, generator: torch.Generator) -> None:
    """GroupNorm / LayerNorm affine params become 1 + 0.1 N(0,1) and 0.1 N(0,1).

    Library init leaves them at exactly 1 and 0, which would let a loader that swaps weight and
    bias, or skips them, pass a parity test.
    """
    for sub in module.modules():
        if isinstance(sub, (torch.nn.GroupNorm, torch.nn.LayerNorm)) and sub.weight is not None:
            with torch.no_grad():
                sub.weight.copy_(1.0 + 0.1 * torch.randn(sub.weight.shape, generator=generator))
                sub.bias.copy_(0.1 * torch.randn(sub.bias.shape, generator=generator))


def _scale_(param: torch.nn.Parameter, factor: float) -> None:
    with torch.no_grad():
        param.mul_(factor)


# Gains applied after library init (kaiming-uniform convs / linears, CLIP's own normal init), chosen
# so that a random model gives unsaturated images that depend on the prompt: the UNet output has an
# order-one spread like a trained eps-predictor, and the cross-attention values carry the text
# conditioning strongly enough to change the image. Measured by `gen_full_checkpoint.py --stats`
# (Euler, 10-20 steps, CFG 7, 64x64): full size eps std ~0.6, cond-vs-uncond eps change ~60 %,
# <1 % saturated pixels, two prompts differ by ~21/255 per pixel on average; tiny: eps std ~1.0,
# ~20 %, ~3.5 % saturated, ~26/255.
UNET_OUT_GAIN = 3.0
CROSS_ATTN_VALUE_GAIN = 4.0


def _shape_for_sampling_(unet: UNet2DConditionModel) -> None:
    _scale_(unet.conv_out.weight, UNET_OUT_GAIN)
    for name, param in unet.named_parameters():
        if ".attn2.to_v." in name:
            _scale_(param, CROSS_ATTN_VALUE_GAIN)


def _round_params_(module: torch.nn.Module, dtype: torch.dtype) -> None:
    """Rounds every floating parameter through `dtype` and back, in place (stays float32)."""
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(param.to(dtype).to(torch.float32))


def build_modules(config: SD1Config, seed: int, device: str = "cpu"):
    """(text_encoder, unet, vae) with deterministic random weights (fp32, eval mode).

    device="meta" builds shapes only (no memory, no randomisation): used for key/shape listings.
    """
    with torch.device(device):
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(transformers_clip_config(config.clip))
        torch.manual_seed(seed + 1)
        unet = UNet2DConditionModel(**diffusers_unet_kwargs(config.unet))
        torch.manual_seed(seed + 2)
        vae = AutoencoderKL(**diffusers_vae_kwargs(config.vae))
    if device != "meta":
        generator = torch.Generator(device="cpu")
        generator.manual_seed(seed + 3)
        for module in (text_encoder, unet, vae):
            _perturb_norms_(module, generator)
        _shape_for_sampling_(unet)
    for module in (text_encoder, unet, vae):
        module.eval()
        module.requires_grad_(False)
    return text_encoder, unet, vae


def ldm_state_dict(
    config: SD1Config,
    text_encoder: CLIPTextModel,
    unet: UNet2DConditionModel,
    vae: AutoencoderKL,
) -> Dict[str, torch.Tensor]:
    """The full single-file state dict (F32 weights, I64 position_ids, F32 DDPM buffers, EMA scalars)."""
    out: Dict[str, torch.Tensor] = {}
    parts = (
        clip_to_ldm(text_encoder.state_dict(), config.clip),
        unet_to_ldm(unet.state_dict(), config.unet),
        vae_to_ldm(vae.state_dict(), config.vae),
        ddpm_schedule_buffers(),
        ema_bookkeeping(),
    )
    for part in parts:
        for key, value in part.items():
            _put(out, key, value)
    return out


def build_sd1(config: SD1Config = SD15_TINY, seed: int = TINY_SEED, weight_dtype: torch.dtype | None = None) -> SD1Model:
    """Random SD1 model in the real layout. weight_dtype (torch.float16 / bfloat16) rounds the module
    weights through that type first, so the modules equal a file written in that dtype."""
    text_encoder, unet, vae = build_modules(config, seed)
    if weight_dtype is not None and weight_dtype != torch.float32:
        for module in (text_encoder, unet, vae):
            _round_params_(module, weight_dtype)
    state = ldm_state_dict(config, text_encoder, unet, vae)
    return SD1Model(config=config, seed=seed, unet=unet, vae=vae, text_encoder=text_encoder, state_dict=state)


def tiny_sd1() -> SD1Model:
    """Exactly the weights of Models/Stable-diffusion/sdapi-random-test-tiny-sd15.safetensors."""
    return build_sd1(SD15_TINY, TINY_SEED, weight_dtype=torch.float16)


def cast_weights(state: Dict[str, torch.Tensor], dtype: torch.dtype) -> Dict[str, torch.Tensor]:
    """Network weights -> dtype; DDPM buffers, position_ids and EMA scalars keep their dtype."""
    return {
        key: value if key in NON_WEIGHT_KEYS else value.to(dtype).contiguous()
        for key, value in state.items()
    }


def key_shapes(config: SD1Config = SD15_FULL) -> Dict[str, Tuple[Tuple[int, ...], torch.dtype]]:
    """Every key of the F32 single-file checkpoint with its shape and dtype, without allocating weights."""
    text_encoder, unet, vae = build_modules(config, seed=0, device="meta")
    state = ldm_state_dict(config, text_encoder, unet, vae)
    return {key: (tuple(value.shape), value.dtype) for key, value in state.items()}
