"""LyCORIS networks (LoHa, LoKr, full/diff) for the tiny SD1 checkpoint and the weights A1111 v1.10.1 patches with them.

    REF_PY=/work/refvenv/bin/python ./compat/reference/make_fixtures.sh   # runs this script
    /work/refvenv/bin/python compat/reference/gen_lycoris.py               # alone

Deterministic (fixed seed, sorted safetensors layout via common.write_safetensors): a rerun writes the same bytes.

A1111 v1.10.1's built-in Lora extension (extensions-builtin/Lora) accepts, besides plain LoRA (see gen_lora.py),
the LyCORIS module types LoHa (network_hada.py), LoKr (network_lokr.py) and full/diff (network_full.py). This
script writes one such file and what A1111 on CPU (devices.dtype float32, i.e. --no-half / --precision full)
leaves in the fp32 layer weights after applying it.

Outputs in fixtures/lora/:
- tiny_lycoris.safetensors: the network, kohya/LyCORIS diffusers naming (lora_unet_..., lora_te_...), metadata
  {"ss_output_name": "tinyLyco"}. Modules (see SPECS; shapes derived from the tiny state dict):
    * LoHa (hada_w1_a, hada_w1_b, hada_w2_a, hada_w2_b, alpha): linear [out, r] / [r, in] in F16 and in F32;
      3x3 conv without CP in the LyCORIS layout (w1_b / w2_b flat [r, in*3*3]) and with 4-D w*_b [r, in, 3, 3];
      3x3 conv with CP/Tucker (hada_t1 / hada_t2 [r, r, 3, 3], hada_w*_a [r, out], hada_w*_b [r, in]);
      one text-encoder LoHa (lora_te_text_model_encoder_layers_0_mlp_fc1).
    * LoKr (lokr_w1 | lokr_w1_a + lokr_w1_b, lokr_w2 | lokr_w2_a + lokr_w2_b [+ lokr_t2], alpha): linear with full
      w1 and factored w2 (F16); linear with factored w1 and full w2 (F32); 3x3 conv with 2-D w1 and 4-D full w2;
      3x3 conv with 2-D w1 and factored flat w2 (w2_b [r, d*3*3]); 3x3 conv with CP (lokr_t2 [r, r, 3, 3],
      lokr_w2_a [r, c], lokr_w2_b [r, d]). Delta = kron(w1, w2) reshaped to the weight.
    * full (diff, same shape as the weight; diff_b, the layer bias change): F16 diff only (conv_out), F16 diff +
      diff_b, F32 diff + diff_b.
- lycoris_patched.safetensors: for te multiplier 0.6 / unet multiplier 1.2 (`<lora:tiny_lycoris:0.6:1.2>`), every
  checkpoint tensor the network changes (layer weights, and the biases diff_b changes), keyed by its full
  checkpoint key, as F32: exactly what the fp32 layer holds after A1111 applies it (see patched_tensors()).
- lycoris_cases.json: multipliers, per module (file order): type, layout, dtype, cp, A1111's dim, alpha, scale
  (calc_scale), te/unet multiplier, its tensors' shapes, the checkpoint key(s) and max |delta|, whether the result
  is fp16-valued, whether A1111 with its pinned torch 2.1.2 applies it at all; the rounding recipe; the addnet
  hash (+ 12-digit short hash) and sha256 of tiny_lycoris.safetensors.

The dtype subtlety this fixture pins down (network_apply_weights + the module types, v1.10.1):
  NetworkModuleLora casts its factors to devices.dtype (create_module: module.to(dtype=devices.dtype)), but
  NetworkModuleHada / NetworkModuleLokr / NetworkModuleFull keep the tensors as sd_models.read_state_dict loaded
  them (file dtype, on CPU). So for an F16 file calc_updown runs in float16 on the CPU, finalize_updown scales
  it in float16, and network_apply_weights does
      self.weight.copy_((weight.to(dtype=updown.dtype) + updown).to(dtype=self.weight.dtype))
  i.e. the fp32 layer weight is cast to float16, the float16 delta added in float16, the sum cast back to fp32:
  the layer ends up holding float16 values. The tiny checkpoint's weights are fp16 values already (the cast is
  exact here; for a true fp32 checkpoint it would round the whole layer to fp16). An F32 module runs in fp32.
  The bias change is different: ex_bias = diff_b * multiplier (in the file dtype, no calc_scale), then
  self.bias.copy_((bias + ex_bias).to(bias.dtype)) with the fp32 bias: type promotion makes that an fp32 add.

How float16 rounds (torch CPU kernels; asserted below against an independent NumPy model, bit for bit):
  every float16 op computes in float32 ("opmath") and rounds to float16 once at its end, round-to-nearest-even:
    * a @ b (rebuild_conventional; LoKr's w1_a @ w1_b, w2_a @ w2_b): each output = sum over the rank of
      f32(a)*f32(b) (exact products), accumulated in f32 in ascending rank order starting from the first product,
      then one rounding to f16 (ranks here <= 4, where torch's 4-way partial sums give the same order);
    * make_weight_cp(t, wa, wb) = two einsums, each such an f32 contraction over the rank rounded to f16: first
      temp[i, r, k, l] = sum_j t[i, j, k, l] * wb[j, r] -> f16, then out[r, j, k, l] = sum_i temp[i, j, k, l] * wa[i, r]
      -> f16;
    * updown1 * updown2 (LoHa) and torch.kron (LoKr): f16(f32(a) * f32(b)) (the product is exact in f32);
    * updown * scale, then (separately) * multiplier, and diff_b * multiplier: the Python float is converted to
      f32 first: f16(f32(x) * f32(s)) -- two roundings, the scale and multiplier are not fused;
    * weight.to(f16) + updown: f16(f32(w16) + f32(u16)); the layer then holds f32(that f16).
  A float32 module: the same ops in f32, each exactly rounded, except the matmuls, which go to the BLAS (MKL here:
  summation order / FMA use depend on the kernel it picks, so they can differ from a plain loop by an f32 ulp).

A1111 v1.10.1 installs torch 2.1.2, where float16 matmul and batched matmul on CPU are not implemented
(RuntimeError: "addmm_impl_cpu_" not implemented for 'Half' from @; "baddbmm_with_gemm" not implemented for
'Half' from the CP einsum). network_apply_weights catches RuntimeError, logs it, counts an error for the network
(one per failing layer; the "Networks with errors: <name> (<count>)" comment) and leaves that layer unchanged.
So with torch 2.1.2 every F16 LoHa and every F16 LoKr with a factored part or lokr_t2 is NOT applied; F16 LoKr
with full w1 and w2 (kron only), F16 full/diff and all F32 modules are, with the same bits as here.
lycoris_cases.json's "applied_with_torch_2_1_2" (and "torch_2_1_2_error") records it per module;
lycoris_patched.safetensors is what a torch with CPU float16 matmul produces (/work/refvenv's, "reference_torch").

The base weights are sd_layout.tiny_sd1()'s, i.e. the committed Models/Stable-diffusion/
sdapi-random-test-tiny-sd15.safetensors (F16 there, upcast to F32 exactly; checked against that file).
Key matching (convert_diffusers_name_to_compvis, fallbacks) and the multiplier choice are gen_lora.py's.
"""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fixture_path, save_tensors, seed_everything, write_json, write_safetensors  # noqa: E402
from gen_lora import addnet_hash, check_base_against_checkpoint, lora_layer_mapping, multiplier_for, resolve_module  # noqa: E402
import sd_layout as L  # noqa: E402

SEED = 5151
AREA = "lora"
LYCO_FILE = "tiny_lycoris.safetensors"
LYCO_PATH = Path("fixtures") / AREA / LYCO_FILE
PATCHED_FILE = "lycoris_patched.safetensors"
CASES_FILE = "lycoris_cases.json"
METADATA = {"ss_output_name": "tinyLyco"}
TE_MULTIPLIER = 0.6
UNET_MULTIPLIER = 1.2

# Size of the delta (after calc_scale, before the multiplier) relative to the std of the weight (or bias) it
# patches, as in gen_lora.py.
RELATIVE_DELTA = 0.35

F16 = torch.float16
F32 = torch.float32


@dataclass(frozen=True)
class Spec:
    """One module of the file.

    kind "loha": layout "linear" | "conv_flat" (w*_b [r, in*kh*kw], LyCORIS' non-CP conv) | "conv_4d"
      (w*_b [r, in, kh, kw]) | "cp" (hada_t1/t2 [r, r, kh, kw], w*_a [r, out], w*_b [r, in]).
    kind "lokr": w1 "full" [a, b] | "factored" (w1_a [a, r], w1_b [r, b]); w2 "full" ([c, d] or [c, d, kh, kw])
      | "factored" (w2_a [c, r], w2_b [r, d] or flat [r, d*kh*kw]) | "cp" (t2 [r, r, kh, kw], w2_a [r, c],
      w2_b [r, d]); kron = ((a, b), (c, d)) with a*c = out, b*d = in.
    kind "full": diff (+ diff_b when diff_b).
    """

    name: str
    kind: str
    expect_key: str
    dtype: torch.dtype = F16
    layout: str = ""
    rank: int = 0
    alpha: Optional[float] = None
    w1: str = ""
    w2: str = ""
    kron: Optional[Tuple[Tuple[int, int], Tuple[int, int]]] = None
    diff_b: bool = False


U = L.UNET_PREFIX
T = L.CLIP_PREFIX + "text_model.encoder.layers."

SPECS: Tuple[Spec, ...] = (
    # --- LoHa
    Spec("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q", "loha",
         U + "input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight", layout="linear", rank=4, alpha=2.0),
    Spec("lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_ff_net_2", "loha",
         U + "output_blocks.3.1.transformer_blocks.0.ff.net.2.weight", dtype=F32, layout="linear", rank=3, alpha=2.0),
    Spec("lora_unet_down_blocks_0_resnets_1_conv1", "loha",
         U + "input_blocks.2.0.in_layers.2.weight", layout="cp", rank=4, alpha=3.0),
    Spec("lora_unet_down_blocks_0_resnets_0_conv2", "loha",
         U + "input_blocks.1.0.out_layers.3.weight", layout="conv_flat", rank=2, alpha=1.0),
    Spec("lora_unet_down_blocks_0_downsamplers_0_conv", "loha",
         U + "input_blocks.3.0.op.weight", layout="conv_4d", rank=4, alpha=1.0),
    Spec("lora_te_text_model_encoder_layers_0_mlp_fc1", "loha",
         T + "0.mlp.fc1.weight", layout="linear", rank=4, alpha=2.0),
    # --- LoKr
    Spec("lora_unet_down_blocks_0_attentions_1_transformer_blocks_0_ff_net_0_proj", "lokr",
         U + "input_blocks.2.1.transformer_blocks.0.ff.net.0.proj.weight", rank=2, alpha=1.0,
         w1="full", w2="factored", kron=((8, 4), (32, 8))),
    Spec("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_v", "lokr",
         U + "middle_block.1.transformer_blocks.0.attn2.to_v.weight", dtype=F32, rank=2, alpha=1.5,
         w1="factored", w2="full", kron=((16, 4), (8, 8))),
    # Full w1 and w2: A1111's dim stays None, so calc_scale is 1.0 and the alpha is ignored.
    Spec("lora_unet_down_blocks_1_resnets_0_conv1", "lokr",
         U + "input_blocks.4.0.in_layers.2.weight", alpha=4.0, w1="full", w2="full", kron=((4, 4), (16, 8))),
    Spec("lora_unet_up_blocks_2_upsamplers_0_conv", "lokr",
         U + "output_blocks.8.2.conv.weight", rank=2, alpha=1.0, w1="full", w2="factored", kron=((4, 4), (16, 16))),
    Spec("lora_unet_up_blocks_3_resnets_1_conv2", "lokr",
         U + "output_blocks.10.0.out_layers.3.weight", rank=4, alpha=2.0, w1="full", w2="cp", kron=((2, 4), (16, 8))),
    # --- full / diff
    Spec("lora_unet_conv_out", "full", U + "out.2.weight"),
    Spec("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0", "full",
         U + "input_blocks.1.1.transformer_blocks.0.attn1.to_out.0.weight", diff_b=True),
    Spec("lora_unet_time_embedding_linear_2", "full", U + "time_embed.2.weight", dtype=F32, diff_b=True),
)


def bias_key(weight_key: str) -> str:
    return weight_key[: -len(".weight")] + ".bias"


def _dtype_name(dtype: torch.dtype) -> str:
    return {F16: "float16", F32: "float32"}[dtype]


# --------------------------------------------------------------------------------------------
# The file
# --------------------------------------------------------------------------------------------


def _randn(shape: Sequence[int], gen: torch.Generator, fan: int) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=gen, dtype=F32) / math.sqrt(fan)


def _loha_tensors(spec: Spec, weight: torch.Tensor, gen: torch.Generator) -> Dict[str, torch.Tensor]:
    out_ch, in_ch = weight.shape[0], weight.shape[1]
    kernel = tuple(weight.shape[2:])
    ksize = int(np.prod(kernel)) if kernel else 1
    r = spec.rank
    w: Dict[str, torch.Tensor] = {}
    for i in (1, 2):
        if spec.layout == "cp":
            w[f"hada_t{i}"] = _randn((r, r) + kernel, gen, r * ksize)
            w[f"hada_w{i}_a"] = _randn((r, out_ch), gen, 1)
            w[f"hada_w{i}_b"] = _randn((r, in_ch), gen, in_ch)
        else:
            w[f"hada_w{i}_a"] = _randn((out_ch, r), gen, 1)
            if spec.layout == "linear":
                w[f"hada_w{i}_b"] = _randn((r, in_ch), gen, in_ch)
            elif spec.layout == "conv_flat":
                w[f"hada_w{i}_b"] = _randn((r, in_ch * ksize), gen, in_ch * ksize)
            elif spec.layout == "conv_4d":
                w[f"hada_w{i}_b"] = _randn((r, in_ch) + kernel, gen, in_ch * ksize)
            else:
                raise AssertionError(spec.layout)
    delta = _loha_updown(w, weight.shape)[0] * (spec.alpha / r)
    gain = math.sqrt(RELATIVE_DELTA * weight.float().std().item() / delta.reshape(-1).std().item())
    w["hada_w1_a"] = w["hada_w1_a"] * gain
    w["hada_w2_a"] = w["hada_w2_a"] * gain
    return w


def _lokr_tensors(spec: Spec, weight: torch.Tensor, gen: torch.Generator) -> Dict[str, torch.Tensor]:
    (a, b), (c, d) = spec.kron
    kernel = tuple(weight.shape[2:])
    ksize = int(np.prod(kernel)) if kernel else 1
    if a * c != weight.shape[0] or b * d != weight.shape[1]:
        raise AssertionError(f"{spec.name}: kron {spec.kron} does not give {tuple(weight.shape)}")
    r = spec.rank
    w: Dict[str, torch.Tensor] = {}
    if spec.w1 == "full":
        w["lokr_w1"] = _randn((a, b), gen, 1)
    else:
        w["lokr_w1_a"] = _randn((a, r), gen, 1)
        w["lokr_w1_b"] = _randn((r, b), gen, r)
    if spec.w2 == "full":
        w["lokr_w2"] = _randn((c, d) + kernel, gen, d * ksize)
    elif spec.w2 == "factored":
        w["lokr_w2_a"] = _randn((c, r), gen, 1)
        w["lokr_w2_b"] = _randn((r, d * ksize), gen, d * ksize)
    elif spec.w2 == "cp":
        w["lokr_t2"] = _randn((r, r) + kernel, gen, r * ksize)
        w["lokr_w2_a"] = _randn((r, c), gen, 1)
        w["lokr_w2_b"] = _randn((r, d), gen, d)
    else:
        raise AssertionError(spec.w2)
    delta = _lokr_updown(w, weight.shape)[0] * _calc_scale(spec.kind, w, spec.alpha)
    gain = RELATIVE_DELTA * weight.float().std().item() / delta.reshape(-1).std().item()
    first = "lokr_w1" if "lokr_w1" in w else "lokr_w1_a"
    w[first] = w[first] * gain
    return w


def _full_tensors(spec: Spec, weight: torch.Tensor, bias: Optional[torch.Tensor], gen: torch.Generator) -> Dict[str, torch.Tensor]:
    w = {"diff": torch.randn(tuple(weight.shape), generator=gen) * (RELATIVE_DELTA * weight.float().std().item())}
    if spec.diff_b:
        if bias is None:
            # network_apply_weights would try `self.bias = torch.nn.Parameter(ex_bias).to(...)`: not covered here.
            raise AssertionError(f"{spec.name}: diff_b on a layer without bias")
        w["diff_b"] = torch.randn(tuple(bias.shape), generator=gen) * (RELATIVE_DELTA * bias.float().std().item())
    return w


def build_lycoris(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """All tensors of tiny_lycoris.safetensors (deterministic). Drawn in F32, stored in each module's dtype."""
    gen = seed_everything(SEED)
    mapping = lora_layer_mapping(state)
    tensors: Dict[str, torch.Tensor] = {}
    for spec in SPECS:
        key, layer = resolve_module(spec.name, mapping)
        if key != spec.expect_key:
            raise AssertionError(f"{spec.name} resolves to {key!r} (layer {layer!r}), expected {spec.expect_key!r}")
        weight = state[key]
        if spec.kind == "loha":
            w = _loha_tensors(spec, weight, gen)
        elif spec.kind == "lokr":
            w = _lokr_tensors(spec, weight, gen)
        else:
            w = _full_tensors(spec, weight, state.get(bias_key(key)), gen)
        for part, value in w.items():
            tensors[f"{spec.name}.{part}"] = value.to(spec.dtype).contiguous()
        if spec.alpha is not None:
            tensors[f"{spec.name}.alpha"] = torch.tensor(spec.alpha, dtype=spec.dtype)
    return tensors


# --------------------------------------------------------------------------------------------
# Applying it (A1111's CPU path), restated in plain torch: every op in the tensors' own dtype
# --------------------------------------------------------------------------------------------


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Matches: lyco_helpers.py rebuild_conventional (without the final reshape): [n, -1] @ [-1 rows, m]."""
    return a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1)


def _cp(t: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor) -> torch.Tensor:
    """Matches: lyco_helpers.py make_weight_cp: t [r, r, kh, kw], wa [r, out], wb [r, in] -> [out, in, kh, kw]."""
    temp = torch.einsum("i j k l, j r -> i r k l", t, wb)
    return torch.einsum("i j k l, i r -> r j k l", temp, wa)


def _loha_updown(w: Mapping[str, torch.Tensor], shape: torch.Size) -> Tuple[torch.Tensor, List[int]]:
    """(updown, output_shape). Matches: network_hada.py NetworkModuleHada.calc_updown (before finalize_updown).

    No CP: output_shape = [w1_a.size(0), w1_b.size(1)] (+ w1_b's kernel dims when w1_b is 4-D); with hada_t1:
    [w1_a.size(1), w1_b.size(1)] + t1's kernel dims. updown = rebuild(w1) * rebuild(w2) (Hadamard product).
    """
    w1a, w1b, w2a, w2b = w["hada_w1_a"], w["hada_w1_b"], w["hada_w2_a"], w["hada_w2_b"]
    t1, t2 = w.get("hada_t1"), w.get("hada_t2")
    if t1 is not None:
        output_shape = [w1a.shape[1], w1b.shape[1]] + list(t1.shape[2:])
        up1 = _cp(t1, w1a, w1b)
    else:
        output_shape = [w1a.shape[0], w1b.shape[1]] + (list(w1b.shape[2:]) if w1b.dim() == 4 else [])
        up1 = _mm(w1a, w1b).reshape(output_shape)
    up2 = _cp(t2, w2a, w2b) if t2 is not None else _mm(w2a, w2b).reshape(output_shape)
    return up1 * up2, output_shape


def _lokr_updown(w: Mapping[str, torch.Tensor], shape: torch.Size) -> Tuple[torch.Tensor, List[int]]:
    """(updown, output_shape). Matches: network_lokr.py NetworkModuleLokr.calc_updown and make_kron.

    w1 = lokr_w1 or w1_a @ w1_b; w2 = lokr_w2, or w2_a @ w2_b, or make_weight_cp(t2, w2_a, w2_b);
    output_shape = [w1 rows * w2 rows, w1 cols * w2 cols], or the weight's shape for a conv; a 4-D w2 gets w1
    unsqueezed to [a, b, 1, 1]; updown = kron(w1, w2).reshape(output_shape).
    """
    w1 = w["lokr_w1"] if "lokr_w1" in w else w["lokr_w1_a"] @ w["lokr_w1_b"]
    if "lokr_w2" in w:
        w2 = w["lokr_w2"]
    elif "lokr_t2" not in w:
        w2 = w["lokr_w2_a"] @ w["lokr_w2_b"]
    else:
        w2 = _cp(w["lokr_t2"], w["lokr_w2_a"], w["lokr_w2_b"])
    output_shape = list(shape) if len(shape) == 4 else [w1.shape[0] * w2.shape[0], w1.shape[1] * w2.shape[1]]
    if w2.dim() == 4:
        w1 = w1.unsqueeze(2).unsqueeze(2)
    return torch.kron(w1, w2.contiguous()).reshape(output_shape), output_shape


def _a1111_dim(kind: str, w: Mapping[str, torch.Tensor]) -> Optional[int]:
    """Matches: NetworkModuleHada.dim = hada_w1_b.shape[0]; NetworkModuleLokr.dim = lokr_w2_b.shape[0], else
    lokr_w1_b.shape[0], else None; NetworkModuleFull: None (network.py NetworkModule.__init__)."""
    if kind == "loha":
        return int(w["hada_w1_b"].shape[0])
    if kind == "lokr":
        if "lokr_w2_b" in w:
            return int(w["lokr_w2_b"].shape[0])
        if "lokr_w1_b" in w:
            return int(w["lokr_w1_b"].shape[0])
    return None


def _calc_scale(kind: str, w: Mapping[str, torch.Tensor], alpha: Optional[float]) -> float:
    """Matches: network.py NetworkModule.calc_scale (no "scale" key here): alpha / dim when both are set, else 1.0.
    alpha is weights.w["alpha"].item(), a Python float (of the stored F16/F32 value); the division is in double."""
    dim = _a1111_dim(kind, w)
    if dim is not None and alpha is not None:
        return alpha / dim
    return 1.0


@dataclass
class LycoModule:
    name: str
    kind: str
    layer: str
    checkpoint_key: str
    weights: Dict[str, torch.Tensor]  # parts without the module prefix, file dtype

    @property
    def alpha(self) -> Optional[float]:
        return self.weights["alpha"].item() if "alpha" in self.weights else None

    @property
    def dtype(self) -> torch.dtype:
        dtypes = {t.dtype for part, t in self.weights.items() if part != "alpha"}
        if len(dtypes) != 1:
            raise AssertionError(f"{self.name}: mixed dtypes {dtypes}")
        return dtypes.pop()

    def scale(self) -> float:
        return _calc_scale(self.kind, self.weights, self.alpha)


def lycoris_modules(lyco: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> List[LycoModule]:
    """Matched modules in file order (key.partition(".") into module and part, grouped per layer).

    Matches: networks.py load_network, then the first of module_types whose create_module accepts the parts:
    ModuleTypeLora (lora_up/down: none here), ModuleTypeHada (all of hada_w1_a, hada_w1_b, hada_w2_a,
    hada_w2_b), ModuleTypeIa3 (weight: none), ModuleTypeLokr ((lokr_w1 or lokr_w1_a + _b) and (lokr_w2 or
    lokr_w2_a + _b)), ModuleTypeFull (diff).
    """
    mapping = lora_layer_mapping(state)
    grouped: Dict[str, LycoModule] = {}
    for file_key in sorted(lyco):
        name, _, part = file_key.partition(".")
        key, layer = resolve_module(name, mapping)
        if key is None:
            raise AssertionError(f"{file_key} matches no layer")
        grouped.setdefault(layer, LycoModule(name, "", layer, key, {})).weights[part] = lyco[file_key]
    for module in grouped.values():
        w = module.weights
        if all(p in w for p in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")):
            module.kind = "loha"
        elif ("lokr_w1" in w or ("lokr_w1_a" in w and "lokr_w1_b" in w)) and (
            "lokr_w2" in w or ("lokr_w2_a" in w and "lokr_w2_b" in w)
        ):
            module.kind = "lokr"
        elif "diff" in w:
            module.kind = "full"
        else:
            raise AssertionError(f"{module.name}: no module type accepts {sorted(w)}")
    return list(grouped.values())


def module_delta(module: LycoModule, base: torch.Tensor, multiplier: float) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(updown, ex_bias) in the module's dtype, as calc_updown + finalize_updown return them.

    Matches: network.py NetworkModule.finalize_updown (no "bias" part, no dora_scale): reshape to output_shape
    when 4-D; to the weight's shape when the element counts agree; ex_bias = ex_bias * multiplier;
    updown = updown * calc_scale(); return updown * multiplier (two separate scalar multiplications).
    """
    w = {part: t for part, t in module.weights.items() if part != "alpha"}
    ex_bias = None
    if module.kind == "loha":
        updown, output_shape = _loha_updown(w, base.shape)
    elif module.kind == "lokr":
        updown, output_shape = _lokr_updown(w, base.shape)
    else:
        updown, output_shape = w["diff"], list(w["diff"].shape)
        ex_bias = w.get("diff_b")
    if len(output_shape) == 4:
        updown = updown.reshape(output_shape)
    if updown.numel() == base.numel():
        updown = updown.reshape(base.shape)
    if ex_bias is not None:
        ex_bias = ex_bias * multiplier
    updown = updown * module.scale()
    return updown * multiplier, ex_bias


def patched_tensors(
    lyco: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    te_multiplier: float,
    unet_multiplier: float,
) -> Dict[str, torch.Tensor]:
    """checkpoint key -> what the fp32 layer holds after A1111 applies the network (weights and changed biases).

    Matches: networks.py network_apply_weights (no fp16_weight, not an inpainting conv):
        updown, ex_bias = module.calc_updown(weight)
        self.weight.copy_((weight.to(dtype=updown.dtype) + updown).to(dtype=self.weight.dtype))
        self.bias.copy_((bias + ex_bias).to(dtype=self.bias.dtype))      # when ex_bias is not None
    with weight / bias the fp32 layer tensors (F32 upcasts of the checkpoint's F16 values).
    """
    out: Dict[str, torch.Tensor] = {}
    for module in lycoris_modules(lyco, state):
        base = state[module.checkpoint_key].to(F32)
        updown, ex_bias = module_delta(module, base, multiplier_for(module.layer, te_multiplier, unet_multiplier))
        if module.checkpoint_key in out:
            raise AssertionError(f"two modules patch {module.checkpoint_key}")
        out[module.checkpoint_key] = (base.to(dtype=updown.dtype) + updown).to(dtype=F32)
        if ex_bias is not None:
            bkey = bias_key(module.checkpoint_key)
            bias = state[bkey].to(F32)
            out[bkey] = (bias + ex_bias).to(dtype=F32)
    return out


# --------------------------------------------------------------------------------------------
# The float16 rounding recipe, as an independent NumPy model (asserted bit-equal to the torch path)
# --------------------------------------------------------------------------------------------


def _h(x: np.ndarray) -> np.ndarray:
    """f32 -> f16, round to nearest even."""
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def _np_mm16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[n, k] @ [k, m]: f32 products, f32 accumulation in ascending k from the first product, one f16 rounding."""
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    acc = a32[:, 0:1] * b32[0:1, :]
    for k in range(1, a.shape[1]):
        acc = (acc + a32[:, k:k + 1] * b32[k:k + 1, :]).astype(np.float32)
    return _h(acc)


def _np_cp16(t: np.ndarray, wa: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """make_weight_cp: temp[i, r, k, l] = f16(sum_j t[i, j, k, l] wb[j, r]); out[r, j, k, l] = f16(sum_i temp[i, j, k, l] wa[i, r])."""
    t32, wa32, wb32 = t.astype(np.float32), wa.astype(np.float32), wb.astype(np.float32)
    acc = t32[:, 0, None, :, :] * wb32[0][None, :, None, None]
    for j in range(1, t.shape[1]):
        acc = (acc + t32[:, j, None, :, :] * wb32[j][None, :, None, None]).astype(np.float32)
    temp = _h(acc).astype(np.float32)  # [i, in, kh, kw]
    acc = temp[0][None] * wa32[0][:, None, None, None]
    for i in range(1, temp.shape[0]):
        acc = (acc + temp[i][None] * wa32[i][:, None, None, None]).astype(np.float32)
    return _h(acc)  # [out, in, kh, kw]


def _np_scal16(x: np.ndarray, s: float) -> np.ndarray:
    return _h(x.astype(np.float32) * np.float32(s))


def np_model_f16(module: LycoModule, base: np.ndarray, multiplier: float) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(new weight as f32, ex_bias as f16 or None) for an F16 module, per the recipe in the docstring."""
    w = {p: t.numpy() for p, t in module.weights.items() if p != "alpha"}
    shape = base.shape
    if module.kind == "loha":
        def rebuild(i: int) -> np.ndarray:
            a, b = w[f"hada_w{i}_a"], w[f"hada_w{i}_b"]
            if f"hada_t{i}" in w:
                return _np_cp16(w[f"hada_t{i}"], a, b).reshape(-1)
            return _np_mm16(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)).reshape(-1)
        updown = _h(rebuild(1).astype(np.float32) * rebuild(2).astype(np.float32))
    elif module.kind == "lokr":
        w1 = w["lokr_w1"] if "lokr_w1" in w else _np_mm16(w["lokr_w1_a"], w["lokr_w1_b"])
        if "lokr_w2" in w:
            w2 = w["lokr_w2"]
        elif "lokr_t2" in w:
            w2 = _np_cp16(w["lokr_t2"], w["lokr_w2_a"], w["lokr_w2_b"])
        else:
            w2 = _np_mm16(w["lokr_w2_a"], w["lokr_w2_b"])
        if w2.ndim == 4:
            w1 = w1[:, :, None, None]
        updown = _h(np.kron(w1.astype(np.float32), w2.astype(np.float32))).reshape(-1)
    else:
        updown = w["diff"].reshape(-1)
    updown = _np_scal16(_np_scal16(updown, module.scale()), multiplier)
    new = _h(_h(base.reshape(-1)).astype(np.float32) + updown.astype(np.float32)).astype(np.float32).reshape(shape)
    ex_bias = _np_scal16(w["diff_b"], multiplier) if "diff_b" in w else None
    return new, ex_bias


# --------------------------------------------------------------------------------------------


APPLIES_WITH_TORCH_2_1_2_NOTE = (
    "A1111 v1.10.1 pins torch 2.1.2, whose CPU kernels lack float16 addmm (@) and baddbmm (einsum): calc_updown of an "
    "F16 LoHa, or of an F16 LoKr with lokr_w1_a/_b, lokr_w2_a/_b or lokr_t2, raises RuntimeError, which "
    "network_apply_weights catches (logging.debug, extra_network_lora.errors[net.name] += 1 -> the "
    "'Networks with errors: <name> (<count>)' comment; one count per failing layer), leaving the layer unchanged. "
    "The other modules apply with exactly these values (checked by running the upstream code under torch 2.1.2)."
)

ROUNDING = {
    "float16_module": [
        "all ops run in float16 on CPU: each computes in float32 and rounds once to float16 (nearest even)",
        "matmul a @ b (rebuild_conventional, w1_a @ w1_b, w2_a @ w2_b): per output, the exact f32 products "
        "f32(a[n,k])*f32(b[k,m]) summed in f32 in ascending k (acc = p0; acc = f32(acc + pk)), then f16",
        "make_weight_cp(t, wa, wb): temp[i,r,k,l] = f16(sum_j t[i,j,k,l]*wb[j,r]); "
        "out[r,j,k,l] = f16(sum_i temp[i,j,k,l]*wa[i,r]); sums as for matmul (ascending j, then ascending i)",
        "LoHa updown1 * updown2 and LoKr torch.kron: f16(f32(a)*f32(b))",
        "finalize_updown: u = f16(f32(u) * f32(scale)); u = f16(f32(u) * f32(multiplier)) (two roundings; scale = "
        "alpha/dim computed in double, then converted to f32 by torch)",
        "ex_bias = f16(f32(diff_b) * f32(multiplier)) (no scale)",
        "weight: f16(f32(f16(w32)) + f32(u)), stored back as f32 (the layer holds float16 values)",
        "bias: f32(b32 + f32(ex_bias)) (fp32 add: type promotion of fp32 bias + fp16 ex_bias)",
    ],
    "float32_module": [
        "the same ops in float32: Hadamard / kron products, u = f32(u * f32(scale)), u = f32(u * f32(multiplier)), "
        "weight f32(w32 + u), bias f32(b32 + f32(diff_b * f32(multiplier))) are exactly rounded f32 ops",
        "the f32 matmuls go to the BLAS (MKL here), whose summation / FMA use depends on the kernel it picks: on the "
        "reference machine [16,2]@[2,4] summed rounded products, [128,3]@[3,512] was an FMA chain "
        "(acc = f32(a0*b0); acc = fma(ak, bk, acc)); compare F32 modules with a tolerance of a few f32 ulps",
    ],
}


def _records(modules: List[LycoModule], state, patched) -> List[dict]:
    by_name = {s.name: s for s in SPECS}
    records = []
    for module in modules:
        spec = by_name[module.name]
        key = module.checkpoint_key
        w = module.weights
        cp = "hada_t1" in w or "lokr_t2" in w
        needs_matmul = module.kind == "loha" or any(p in w for p in ("lokr_w1_a", "lokr_w2_a", "lokr_t2"))
        if module.kind == "loha":
            layout = spec.layout
        elif module.kind == "lokr":
            layout = f"w1_{spec.w1}+w2_{spec.w2}"
        else:
            layout = "diff+diff_b" if "diff_b" in w else "diff"
        rec = {
            "module": module.name,
            "a1111_layer": module.layer,
            "checkpoint_key": key,
            "type": module.kind,
            "layout": layout,
            "dtype": _dtype_name(module.dtype),
            "cp": cp,
            "a1111_dim": _a1111_dim(module.kind, w),
            "alpha": module.alpha,
            "scale": module.scale(),
            "multiplier": "te" if multiplier_for(module.layer, 1.0, 0.0) == 1.0 else "unet",
            "multiplier_value": multiplier_for(module.layer, TE_MULTIPLIER, UNET_MULTIPLIER),
            "tensors": {part: {"shape": list(t.shape), "dtype": _dtype_name(t.dtype)} for part, t in sorted(w.items())},
            "weight_shape": list(state[key].shape),
            "max_abs_delta": (patched[key] - state[key].float()).abs().max().item(),
            "result_is_float16_valued": module.dtype == F16,
            "applied_with_torch_2_1_2": not (module.dtype == F16 and needs_matmul),
        }
        if not rec["applied_with_torch_2_1_2"]:
            # The first float16 op of calc_updown that torch 2.1.2 lacks: updown1 (t1 einsum or @), then
            # LoKr's w1_a @ w1_b, then w2 (@ or the t2 einsum).
            einsum_first = "hada_t1" in w or ("lokr_t2" in w and "lokr_w1_a" not in w)
            rec["torch_2_1_2_error"] = (
                "\"baddbmm_with_gemm\" not implemented for 'Half'" if einsum_first
                else "\"addmm_impl_cpu_\" not implemented for 'Half'")
        if "diff_b" in w:
            bkey = bias_key(key)
            rec["bias_key"] = bkey
            rec["max_abs_bias_delta"] = (patched[bkey] - state[bkey].float()).abs().max().item()
        records.append(rec)
    return records


def main() -> None:
    state = L.tiny_sd1().state_dict
    lyco = build_lycoris(state)
    path = write_safetensors(fixture_path(AREA, LYCO_FILE), lyco, METADATA)
    size = path.stat().st_size
    if size > 1024 * 1024:
        raise AssertionError(f"{path} is {size} bytes (> 1 MiB)")

    # Everything below works from the file as written, as A1111 would (sd_models.read_state_dict on CPU).
    stored = load_file(str(path))
    modules = lycoris_modules(stored, state)
    if [m.name for m in modules] != sorted(s.name for s in SPECS):
        raise AssertionError("modules do not match SPECS")
    patched = patched_tensors(stored, state, TE_MULTIPLIER, UNET_MULTIPLIER)
    check_base_against_checkpoint(state, patched)

    # The rounding recipe, bit for bit, for every F16 module; F32 modules against float64 (loose).
    for module in modules:
        mult = multiplier_for(module.layer, TE_MULTIPLIER, UNET_MULTIPLIER)
        key = module.checkpoint_key
        if module.dtype == F16:
            new, ex_bias = np_model_f16(module, state[key].float().numpy(), mult)
            if not np.array_equal(new.view(np.uint32), patched[key].numpy().view(np.uint32)):
                bad = int((new.view(np.uint32) != patched[key].numpy().view(np.uint32)).sum())
                raise AssertionError(f"{module.name}: NumPy f16 model differs from torch in {bad} elements")
            if ex_bias is not None:
                b = (state[bias_key(key)].float().numpy() + ex_bias.astype(np.float32)).astype(np.float32)
                if not np.array_equal(b.view(np.uint32), patched[bias_key(key)].numpy().view(np.uint32)):
                    raise AssertionError(f"{module.name}: NumPy bias model differs from torch")
        else:
            w64 = LycoModule(module.name, module.kind, module.layer, key,
                             {p: t.to(torch.float64) for p, t in module.weights.items()})
            base64 = state[key].to(torch.float64)
            updown64, _ = module_delta(w64, base64, mult)
            err = ((base64 + updown64) - patched[key].double()).abs().max().item()
            if err > 1e-6:
                raise AssertionError(f"{module.name}: f32 result {err} away from float64")

    save_tensors(AREA, PATCHED_FILE, patched)
    records = _records(modules, state, patched)
    digest = addnet_hash(path)
    write_json(AREA, CASES_FILE, {
        "lycoris_file": str(LYCO_PATH),
        "metadata": METADATA,
        "te_multiplier": TE_MULTIPLIER,
        "unet_multiplier": UNET_MULTIPLIER,
        "prompt_tag": f"<lora:tiny_lycoris:{TE_MULTIPLIER}:{UNET_MULTIPLIER}>",
        "patched_file": str(Path("fixtures") / AREA / PATCHED_FILE),
        "patched_keys": sorted(patched),
        "modules": records,
        "rounding": ROUNDING,
        "applied_with_torch_2_1_2_note": APPLIES_WITH_TORCH_2_1_2_NOTE,
        "reference_torch": torch.__version__,
        "addnet_hash": digest,
        "addnet_shorthash": digest[:12],
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    })
    for r in records:
        print(f"{r['type']:<4} {r['dtype']:<7} {r['layout']:<22} scale {r['scale']:<8.4g} {r['module']:<72} "
              f"max|d| {r['max_abs_delta']:.4g}" + (f" bias {r['max_abs_bias_delta']:.4g}" if "bias_key" in r else ""))
    print(f"{path.name} {size} bytes, addnet {digest}; {len(patched)} patched tensors")


if __name__ == "__main__":
    main()
