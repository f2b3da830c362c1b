"""A kohya-style LoRA for the tiny SD1 checkpoint and the weights A1111 v1.10.1 patches with it.

    REF_PY=/work/refvenv/bin/python ./compat/reference/make_fixtures.sh   # runs this script
    /work/refvenv/bin/python compat/reference/gen_lora.py                  # alone

Deterministic (fixed seed, sorted safetensors layout via common.write_safetensors): a rerun writes the same bytes.

Outputs in fixtures/lora/:
- tiny_lora.safetensors: the LoRA, as a kohya sd-scripts / LyCORIS file for SD1 would hold it. Metadata
  {"ss_network_dim": "4", "ss_output_name": "tinyAlias"}. Tensors F16 but for a few F32 ones (one module
  entirely F32, a few F32 alphas). Ranks 2-4. Modules (shapes derived from the tiny state dict):
    * diffusers-named UNet linears (attn1 to_q / to_out_0, attn2 to_k from the context dim, ff_net_0_proj,
      ff_net_2, resnet time_emb_proj, time_embedding_linear_1): lora_down [r, in], lora_up [out, r];
    * 1x1 convolutions (the SpatialTransformer proj_in / proj_out are Conv2d [C, C, 1, 1] in SD1, since
      use_linear_projection is off; the resnet conv_shortcut / skip_connection): down [r, in, 1, 1], up [out, r, 1, 1];
    * LoCon 3x3 convolutions (resnet conv1, conv_in, the stride-2 downsampler, the upsampler conv):
      down [r, in, 3, 3], up [out, r, 1, 1];
    * a LoCon with CP/Tucker decomposition (up_blocks_1_resnets_0_conv2): lora_mid [r, r, 3, 3],
      down [r, in, 1, 1], up [out, r, 1, 1];
    * one module already in ldm naming (lora_unet_output_blocks_4_1_proj_out: A1111's "lora_unet" ->
      "diffusion_model" fallback), one in PEFT naming (lora_A = down, lora_B = up, no alpha), one more
      without an alpha key (scale 1), text encoder modules (lora_te_..., and lora_te1_... via A1111's te1
      fallback for SD1), and one module that matches no layer (ignored by A1111).
    `<module>.alpha` is a 0-d tensor; scale = alpha / rank (rank = lora_down.shape[0]), 1.0 without alpha.
- patched.safetensors: for te multiplier 0.7 / unet multiplier 1.3 (`<lora:tiny_lora:0.7:1.3>`), every checkpoint
  weight the LoRA changes, keyed by its full checkpoint key, value = base + delta in F32, computed as A1111 does
  on CPU (see patched_weights()).
- cases.json: te_multiplier, unet_multiplier, modules (lora_module -> checkpoint_key, with the A1111 layer name,
  rank, alpha, scale, which multiplier applies, the LoRA kind and naming), unmatched (LoRA modules A1111
  ignores), addnet_hash (modules/hashes.py addnet_hash_safetensors: sha256 of the bytes after the 8-byte
  header length and the header), addnet_shorthash (its first 12 hex digits: NetworkOnDisk.set_hash, the
  "Lora hashes" infotext value) and sha256 (of the whole file).

The base weights are sd_layout.tiny_sd1()'s, i.e. the committed Models/Stable-diffusion/
sdapi-random-test-tiny-sd15.safetensors (F16 there, upcast to F32 exactly; checked below against that file).

Other generators use: lora_layer_mapping(), resolve_module(), lora_modules(), patched_weights(), parse_lora_tag().
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, fixture_path, save_tensors, seed_everything, write_json, write_safetensors  # noqa: E402
import sd_layout as L  # noqa: E402

SEED = 4242
AREA = "lora"
LORA_FILE = "tiny_lora.safetensors"
LORA_PATH = Path("fixtures") / AREA / LORA_FILE
METADATA = {"ss_output_name": "tinyAlias", "ss_network_dim": "4"}
TE_MULTIPLIER = 0.7
UNET_MULTIPLIER = 1.3
TINY_CHECKPOINT = REPO_ROOT / "Models" / "Stable-diffusion" / "sdapi-random-test-tiny-sd15.safetensors"

# Size of the LoRA delta (before the multiplier) relative to the std of the weight it patches: large
# enough that the LoRA visibly changes a txt2img run, small enough not to swamp the model.
RELATIVE_DELTA = 0.35


@dataclass(frozen=True)
class Spec:
    """One LoRA module of the file. kind: "lora" (linear or conv, shaped after the target layer) or "cp"."""

    name: str
    rank: int
    alpha: Optional[float]
    kind: str = "lora"
    naming: str = "kohya"  # "kohya": lora_down / lora_up; "peft": lora_A / lora_B
    dtype: torch.dtype = torch.float16
    alpha_dtype: torch.dtype = torch.float16
    expect_key: Optional[str] = None  # checkpoint key it must resolve to (None: must not resolve)


U = L.UNET_PREFIX
T = L.CLIP_PREFIX + "text_model.encoder.layers."

SPECS: Tuple[Spec, ...] = (
    Spec("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 4, 1.0,
         expect_key=U + "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"),
    Spec("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 4, 4.0,
         expect_key=U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"),
    Spec("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_0_proj", 2, 1.0,
         expect_key=U + "input_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight"),
    Spec("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0", 3, 1.0,
         expect_key=U + "input_blocks.1.1.transformer_blocks.0.attn1.to_out.0.weight"),
    # Cross-attention key at a level whose width (64) differs from the context width (32): [64, 32].
    Spec("lora_unet_down_blocks_1_attentions_1_transformer_blocks_0_attn2_to_k", 4, 2.0, alpha_dtype=torch.float32,
         expect_key=U + "input_blocks.5.1.transformer_blocks.0.attn2.to_k.weight"),
    Spec("lora_unet_mid_block_attentions_0_proj_in", 4, 2.0,
         expect_key=U + "middle_block.1.proj_in.weight"),
    Spec("lora_unet_down_blocks_0_resnets_0_conv1", 4, 1.0,
         expect_key=U + "input_blocks.1.0.in_layers.2.weight"),
    Spec("lora_unet_up_blocks_1_resnets_0_conv2", 4, 2.0, kind="cp",
         expect_key=U + "output_blocks.3.0.out_layers.3.weight"),
    Spec("lora_unet_down_blocks_1_resnets_0_time_emb_proj", 4, 4.0,
         expect_key=U + "input_blocks.4.0.emb_layers.1.weight"),
    Spec("lora_unet_down_blocks_1_resnets_0_conv_shortcut", 2, 2.0,
         expect_key=U + "input_blocks.4.0.skip_connection.weight"),
    Spec("lora_unet_conv_in", 2, 1.0, dtype=torch.float32, alpha_dtype=torch.float32,
         expect_key=U + "input_blocks.0.0.weight"),
    Spec("lora_unet_time_embedding_linear_1", 4, 1.0, dtype=torch.float32, alpha_dtype=torch.float32,
         expect_key=U + "time_embed.0.weight"),
    Spec("lora_unet_down_blocks_0_downsamplers_0_conv", 3, 3.0,
         expect_key=U + "input_blocks.3.0.op.weight"),
    Spec("lora_unet_up_blocks_0_upsamplers_0_conv", 4, 4.0,
         expect_key=U + "output_blocks.2.1.conv.weight"),
    # Already in ldm naming: no diffusers rule matches, A1111 retries with "lora_unet" -> "diffusion_model".
    Spec("lora_unet_output_blocks_4_1_proj_out", 4, 1.0,
         expect_key=U + "output_blocks.4.1.proj_out.weight"),
    # PEFT naming (lora_A / lora_B), no alpha.
    Spec("lora_unet_up_blocks_2_attentions_1_transformer_blocks_0_attn2_to_v", 4, None, naming="peft",
         expect_key=U + "output_blocks.7.1.transformer_blocks.0.attn2.to_v.weight"),
    # kohya naming without an alpha key: scale 1.
    Spec("lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_ff_net_2", 2, None,
         expect_key=U + "output_blocks.11.1.transformer_blocks.0.ff.net.2.weight"),
    Spec("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 4, 1.0,
         expect_key=T + "0.self_attn.q_proj.weight"),
    Spec("lora_te_text_model_encoder_layers_0_mlp_fc1", 4, 2.0,
         expect_key=T + "0.mlp.fc1.weight"),
    Spec("lora_te1_text_model_encoder_layers_11_self_attn_out_proj", 2, 1.0,
         expect_key=T + "11.self_attn.out_proj.weight"),
    # Matches nothing (there is no down block 9): A1111 logs it and ignores it.
    Spec("lora_unet_down_blocks_9_attentions_0_proj_in", 4, 4.0, expect_key=None),
)
UNMATCHED_SHAPE = (32, 32, 1, 1)  # shape given to the module that matches nothing


# --------------------------------------------------------------------------------------------
# A1111's LoRA key matching, restated
# --------------------------------------------------------------------------------------------

_RESNET_SUFFIX = {
    "conv1": "in_layers_2",
    "conv2": "out_layers_3",
    "norm1": "in_layers_0",
    "norm2": "out_layers_0",
    "time_emb_proj": "emb_layers_1",
    "conv_shortcut": "skip_connection",
}


def _suffix(kind: str, name: str) -> str:
    return _RESNET_SUFFIX.get(name, name) if kind == "resnets" else name


def diffusers_to_compvis(key: str) -> str:
    """A kohya module name -> A1111 network layer name (SD1 only: is_sd2 False, no te2).

    Matches: extensions-builtin/Lora/networks.py convert_diffusers_name_to_compvis (v1.10.1). Like it, every
    rule is a prefix match (re.match) and the first matching rule wins; no rule -> the key unchanged.
    """
    rules = (
        (r"lora_unet_conv_in(.*)", lambda m: f"diffusion_model_input_blocks_0_0{m[1]}"),
        (r"lora_unet_conv_out(.*)", lambda m: f"diffusion_model_out_2{m[1]}"),
        (r"lora_unet_time_embedding_linear_(\d+)(.*)",
         lambda m: f"diffusion_model_time_embed_{int(m[1]) * 2 - 2}{m[2]}"),
        (r"lora_unet_down_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)",
         lambda m: f"diffusion_model_input_blocks_{1 + int(m[1]) * 3 + int(m[3])}_"
                   f"{1 if m[2] == 'attentions' else 0}_{_suffix(m[2], m[4])}"),
        (r"lora_unet_mid_block_(attentions|resnets)_(\d+)_(.+)",
         lambda m: f"diffusion_model_middle_block_{1 if m[1] == 'attentions' else int(m[2]) * 2}_"
                   f"{_suffix(m[1], m[3])}"),
        (r"lora_unet_up_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)",
         lambda m: f"diffusion_model_output_blocks_{int(m[1]) * 3 + int(m[3])}_"
                   f"{1 if m[2] == 'attentions' else 0}_{_suffix(m[2], m[4])}"),
        (r"lora_unet_down_blocks_(\d+)_downsamplers_0_conv",
         lambda m: f"diffusion_model_input_blocks_{3 + int(m[1]) * 3}_0_op"),
        (r"lora_unet_up_blocks_(\d+)_upsamplers_0_conv",
         lambda m: f"diffusion_model_output_blocks_{2 + int(m[1]) * 3}_{2 if int(m[1]) > 0 else 1}_conv"),
        (r"lora_te_text_model_encoder_layers_(\d+)_(.+)",
         lambda m: f"transformer_text_model_encoder_layers_{m[1]}_{m[2]}"),
    )
    for pattern, build in rules:
        m = re.match(pattern, key)
        if m:
            return build(m)
    return key


def lora_layer_mapping(state: Mapping[str, torch.Tensor]) -> Dict[str, str]:
    """A1111 network layer name -> checkpoint weight key, for every UNet and text-encoder layer with a weight.

    Matches: networks.py assign_network_names_to_compvis_modules (SD1): module names of the FrozenCLIPEmbedder
    (cond_stage_model.*, "transformer.text_model....") and of sd_model.model (the DiffusionWrapper,
    "diffusion_model...."), with "." replaced by "_". The checkpoint key is "cond_stage_model." / "model."
    + module name + ".weight". (A1111 maps every module; only modules with a weight can take a LoRA.)
    """
    mapping: Dict[str, str] = {}
    for key in state:
        if not key.endswith(".weight"):
            continue
        if key.startswith(L.UNET_PREFIX):
            module = key[len("model."):-len(".weight")]
        elif key.startswith(L.CLIP_PREFIX):
            module = key[len("cond_stage_model."):-len(".weight")]
        else:
            continue
        name = module.replace(".", "_")
        if name in mapping:
            raise ValueError(f"two layers named {name!r}")
        mapping[name] = key
    return mapping


def resolve_module(lora_module: str, mapping: Mapping[str, str]) -> Tuple[Optional[str], str]:
    """(checkpoint key or None, A1111 layer name tried last) for one LoRA module name (the part before the first ".").

    Matches: networks.py load_network (v1.10.1, no diffusers_weight_map): convert_diffusers_name_to_compvis;
    then the "(.*)_([qkv]_proj)$" retry (MultiheadAttention, absent in SD1's HF CLIP, kept for fidelity); then
    "lora_unet" -> "diffusion_model" if the name holds "lora_unet", else "lora_te1_text_model" ->
    "0_transformer_text_model" and then -> "transformer_text_model".
    """
    layer = diffusers_to_compvis(lora_module)
    key = mapping.get(layer)
    if key is None:
        m = re.match(r"(.*)_([qkv]_proj)$", layer)
        if m:
            key = mapping.get(m.group(1))
    if key is None and "lora_unet" in lora_module:
        layer = lora_module.replace("lora_unet", "diffusion_model")
        key = mapping.get(layer)
    elif key is None and "lora_te1_text_model" in lora_module:
        layer = lora_module.replace("lora_te1_text_model", "0_transformer_text_model")
        key = mapping.get(layer)
        if key is None:
            layer = lora_module.replace("lora_te1_text_model", "transformer_text_model")
            key = mapping.get(layer)
    return key, layer


def multiplier_for(layer: str, te_multiplier: float, unet_multiplier: float) -> float:
    """Matches: network.py NetworkModule.multiplier: te when 'transformer' is in the first 20 characters."""
    return te_multiplier if "transformer" in layer[:20] else unet_multiplier


# --------------------------------------------------------------------------------------------
# The LoRA file
# --------------------------------------------------------------------------------------------


def _updown(up: torch.Tensor, down: torch.Tensor, mid: Optional[torch.Tensor], shape: torch.Size) -> torch.Tensor:
    """The rank-r weight delta before scale and multiplier, reshaped like the target weight.

    Matches: network_lora.py NetworkModuleLora.calc_updown with lyco_helpers.py rebuild_conventional /
    rebuild_cp_decomposition, then network.py finalize_updown's reshapes (no bias, dyn_dim None).
    """
    up2d = up.reshape(up.shape[0], -1)
    down2d = down.reshape(down.shape[0], -1)
    output_shape = [up.shape[0], down.shape[1]]
    if mid is not None:
        updown = torch.einsum("n m k l, i n, m j -> i j k l", mid, up2d, down2d)
        output_shape += list(mid.shape[2:])
    else:
        if down.dim() == 4:
            output_shape += list(down.shape[2:])
        updown = (up2d @ down2d).reshape(output_shape)
    if len(output_shape) == 4:
        updown = updown.reshape(output_shape)
    if updown.numel() == shape.numel():
        updown = updown.reshape(shape)
    return updown


def _module_tensors(spec: Spec, weight: torch.Tensor, gen: torch.Generator) -> Dict[str, torch.Tensor]:
    """Random LoRA tensors for one target weight, shaped as kohya sd-scripts / LyCORIS save them.

    Linear [out, in]: down [r, in], up [out, r]. Conv [out, in, kh, kw]: down [r, in, kh, kw] (kohya's lora_down
    copies the layer's kernel; 1x1 layers give [r, in, 1, 1]), up [out, r, 1, 1]. CP: mid [r, r, kh, kw],
    down [r, in, 1, 1], up [out, r, 1, 1]. Up is rescaled so the delta's std is RELATIVE_DELTA times the weight's.
    """
    out_ch, in_ch = weight.shape[0], weight.shape[1]
    kernel = tuple(weight.shape[2:])
    r = spec.rank
    mid = None
    if weight.dim() == 2:
        down = torch.randn((r, in_ch), generator=gen) / in_ch**0.5
        up = torch.randn((out_ch, r), generator=gen)
    elif spec.kind == "cp":
        mid = torch.randn((r, r) + kernel, generator=gen) / (r * kernel[0] * kernel[1]) ** 0.5
        down = torch.randn((r, in_ch, 1, 1), generator=gen) / in_ch**0.5
        up = torch.randn((out_ch, r, 1, 1), generator=gen)
    else:
        down = torch.randn((r, in_ch) + kernel, generator=gen) / (in_ch * kernel[0] * kernel[1]) ** 0.5
        up = torch.randn((out_ch, r, 1, 1), generator=gen)
    scale = spec.alpha / r if spec.alpha is not None else 1.0
    delta_std = (_updown(up, down, mid, weight.shape) * scale).std().item()
    up = up * (RELATIVE_DELTA * weight.float().std().item() / delta_std)

    up_name, down_name = ("lora_B.weight", "lora_A.weight") if spec.naming == "peft" else ("lora_up.weight", "lora_down.weight")
    tensors = {f"{spec.name}.{up_name}": up.to(spec.dtype), f"{spec.name}.{down_name}": down.to(spec.dtype)}
    if mid is not None:
        tensors[f"{spec.name}.lora_mid.weight"] = mid.to(spec.dtype)
    if spec.alpha is not None:
        tensors[f"{spec.name}.alpha"] = torch.tensor(spec.alpha, dtype=spec.alpha_dtype)
    return tensors


def build_lora(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """All tensors of tiny_lora.safetensors (deterministic)."""
    gen = seed_everything(SEED)
    mapping = lora_layer_mapping(state)
    tensors: Dict[str, torch.Tensor] = {}
    for spec in SPECS:
        key, layer = resolve_module(spec.name, mapping)
        if key != spec.expect_key:
            raise AssertionError(f"{spec.name} resolves to {key!r} (layer {layer!r}), expected {spec.expect_key!r}")
        weight = state[key] if key is not None else torch.empty(UNMATCHED_SHAPE).normal_(0.0, 0.1, generator=gen)
        tensors.update(_module_tensors(spec, weight, gen))
    return tensors


# --------------------------------------------------------------------------------------------
# Applying it (A1111's CPU path)
# --------------------------------------------------------------------------------------------


@dataclass
class LoraModule:
    lora_module: str
    layer: str
    checkpoint_key: str
    weights: Dict[str, torch.Tensor]  # "lora_up.weight", "lora_down.weight", maybe "lora_mid.weight", "alpha"


def lora_modules(lora: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> Tuple[List[LoraModule], List[str]]:
    """(matched modules in file order, names of the LoRA modules that match no layer).

    Matches: networks.py load_network: a file key splits at its first "." into module name and part
    (key.partition(".")); parts of one layer are grouped; network_lora.py ModuleTypeLora.create_module takes
    lora_up/lora_down, or lora_A/lora_B renamed to lora_up/lora_down (w.clear() drops any other part of a
    PEFT-named module, alpha included).
    """
    mapping = lora_layer_mapping(state)
    grouped: Dict[str, LoraModule] = {}
    unmatched: List[str] = []
    for file_key in sorted(lora):
        name, _, part = file_key.partition(".")
        key, layer = resolve_module(name, mapping)
        if key is None:
            if name not in unmatched:
                unmatched.append(name)
            continue
        module = grouped.setdefault(layer, LoraModule(name, layer, key, {}))
        module.weights[part] = lora[file_key]
    for module in grouped.values():
        w = module.weights
        if "lora_up.weight" in w and "lora_down.weight" in w:
            continue
        if "lora_A.weight" in w and "lora_B.weight" in w:
            module.weights = {"lora_up.weight": w["lora_B.weight"], "lora_down.weight": w["lora_A.weight"]}
            continue
        raise AssertionError(f"{module.lora_module}: no LoRA up/down pair in {sorted(w)}")
    return list(grouped.values()), unmatched


def module_scale(module: LoraModule) -> float:
    """Matches: network.py NetworkModule.calc_scale: alpha / dim (dim = lora_down.shape[0]), 1.0 without alpha."""
    alpha = module.weights.get("alpha")
    if alpha is None:
        return 1.0
    return alpha.item() / module.weights["lora_down.weight"].shape[0]


def patched_weights(
    lora: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    te_multiplier: float,
    unet_multiplier: float,
) -> Dict[str, torch.Tensor]:
    """checkpoint key -> patched weight (F32) for every layer the LoRA touches.

    Matches: networks.py network_apply_weights with network_lora.py NetworkModuleLora.calc_updown and network.py
    NetworkModule.finalize_updown, on CPU in full precision (devices.dtype float32): the LoRA tensors are cast to
    float32 (NetworkModuleLora.create_module), updown = up @ down (or the CP einsum), reshaped to the weight;
    updown = updown * scale; updown = updown * multiplier; weight = weight + updown.
    """
    modules, _ = lora_modules(lora, state)
    out: Dict[str, torch.Tensor] = {}
    for module in modules:
        base = state[module.checkpoint_key].to(torch.float32)
        w = {part: t.to(torch.float32) for part, t in module.weights.items()}
        updown = _updown(w["lora_up.weight"], w["lora_down.weight"], w.get("lora_mid.weight"), base.shape)
        updown = updown * module_scale(module)
        updown = updown * multiplier_for(module.layer, te_multiplier, unet_multiplier)
        if module.checkpoint_key in out:
            raise AssertionError(f"two LoRA modules patch {module.checkpoint_key}")
        out[module.checkpoint_key] = base + updown
    return out


def parse_lora_tag(args: List[str]) -> Tuple[str, float, float]:
    """(name, te multiplier, unet multiplier) from the ":"-split arguments of one <lora:...> tag.

    Matches: extra_networks_lora.py ExtraNetworkLora.activate (positional only: te = args[1] or 1.0,
    unet = args[2] or te).
    """
    te = float(args[1]) if len(args) > 1 else 1.0
    unet = float(args[2]) if len(args) > 2 else te
    return args[0], te, unet


def addnet_hash(path: Path) -> str:
    """Matches: modules/hashes.py addnet_hash_safetensors: sha256 of the file from byte 8 + header length on."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + n:]).hexdigest()


def check_base_against_checkpoint(state: Mapping[str, torch.Tensor], keys) -> None:
    """The base weights used here equal the committed tiny checkpoint's (F16 there)."""
    with safe_open(str(TINY_CHECKPOINT), framework="pt") as handle:
        for key in keys:
            stored = handle.get_tensor(key)
            if not torch.equal(stored.to(torch.float32), state[key].to(torch.float32)):
                raise AssertionError(f"{key}: tiny_sd1() differs from {TINY_CHECKPOINT.name}")


def main() -> None:
    state = L.tiny_sd1().state_dict
    lora = build_lora(state)
    path = write_safetensors(fixture_path(AREA, LORA_FILE), lora, METADATA)
    size = path.stat().st_size
    if size > 1024 * 1024:
        raise AssertionError(f"{path} is {size} bytes (> 1 MiB)")

    # Everything below works from the file as written (its F16 values), as A1111 would.
    stored = load_file(str(path))
    modules, unmatched = lora_modules(stored, state)
    patched = patched_weights(stored, state, TE_MULTIPLIER, UNET_MULTIPLIER)
    check_base_against_checkpoint(state, patched)
    save_tensors(AREA, "patched.safetensors", patched)

    expected_unmatched = [s.name for s in SPECS if s.expect_key is None]
    if unmatched != expected_unmatched:
        raise AssertionError(f"unmatched {unmatched}, expected {expected_unmatched}")
    by_name = {s.name: s for s in SPECS}
    records = []
    for module in modules:
        spec = by_name[module.lora_module]
        key = module.checkpoint_key
        records.append({
            "lora_module": module.lora_module,
            "checkpoint_key": key,
            "a1111_layer": module.layer,
            "naming": spec.naming,
            "kind": "cp" if spec.kind == "cp" else ("linear" if state[key].dim() == 2 else "conv"),
            "rank": int(module.weights["lora_down.weight"].shape[0]),
            "alpha": module.weights["alpha"].item() if "alpha" in module.weights else None,
            "scale": module_scale(module),
            "multiplier": "te" if multiplier_for(module.layer, 1.0, 0.0) == 1.0 else "unet",
            "max_abs_delta": (patched[key] - state[key].float()).abs().max().item(),
        })
    digest = addnet_hash(path)
    write_json(AREA, "cases.json", {
        "lora_file": str(LORA_PATH),
        "metadata": METADATA,
        "te_multiplier": TE_MULTIPLIER,
        "unet_multiplier": UNET_MULTIPLIER,
        "prompt_tag": f"<lora:tiny_lora:{TE_MULTIPLIER}:{UNET_MULTIPLIER}>",
        "modules": records,
        "unmatched": unmatched,
        "addnet_hash": digest,
        "addnet_shorthash": digest[:12],
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    })
    for r in records:
        print(f"{r['lora_module']:<72} -> {r['checkpoint_key']:<80} max|d| {r['max_abs_delta']:.4g}")
    print(f"unmatched: {unmatched}; {path.name} {size} bytes, addnet {digest}")


if __name__ == "__main__":
    main()
