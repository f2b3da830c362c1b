"""Small extra-network files for recording the real A1111 v1.10.1 (LoRA, textual inversion, VAE).

    /work/refvenv/bin/python compat/reference/gen_a1111_extras.py
    /work/refvenv/bin/python compat/reference/gen_a1111_extras.py \\
        --checkpoint /work/a1111-data/sd15-random-fp16.safetensors --vae-out /work/a1111-data/VAE/vaeA.safetensors

Deterministic (torch.Generator seeded with SEED, safetensors via common.write_safetensors, torch.save zips
with fixed names): a rerun writes the same bytes. Without arguments it writes only the committed files
(so `make fixtures`, which runs every gen_*.py bare, stays cheap); the VAE needs the full-size checkpoint.

Outputs in fixtures/a1111/ (each a few KiB):
- lora_full_a.safetensors: kohya LoRA for the FULL-size SD1.5 layout (sd_layout.SD15_FULL), rank 1, F16,
  `<module>.alpha` 0-d F16 tensors (alpha 1 -> scale 1), metadata {"ss_output_name": "aliasA"} (A1111's alias).
  Modules: lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q (320 -> 320),
  lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k (768 -> 1280; ldm output_blocks.3.1),
  lora_te_text_model_encoder_layers_0_self_attn_q_proj (768 -> 768).
  lora_down [1, in], lora_up [out, 1], values N(0, 0.05^2).
- lora_full_b.safetensors: the same three module names with other values and no metadata at all.
- embA.pt: A1111's own TI format as Embedding.save() writes it under A1111's torch 2.1.2: a torch.save zip
  (archive root "embA", only the records torch 2.1.2 writes: refvenv's newer torch adds ".format_version" and
  ".storage_alignment", which A1111's safe unpickler refuses, so torch_save() drops them) of
  {"string_to_token": {"*": 265}, "string_to_param": {"*": F32 [2, 768]}, "name": "embA", "step": 150,
   "sd_checkpoint": "0123456789", "sd_checkpoint_name": "model"}.
- embB.safetensors: {"emb_params": F32 [3, 768]} (A1111 reads it as a "diffuser concept": one tensor).
- embC.bin: torch_save() (as embA.pt) of {"<embC>": F32 [768]} (diffusers concept, 1-D -> one vector).
- embXL.safetensors: {"clip_g": F32 [1, 1280], "clip_l": F32 [1, 768]} (SDXL; shape 2048 != 768, so SD1 skips it).
  All embedding values N(0, 0.01^2).

With --checkpoint/--vae-out: the checkpoint's own first_stage_model.* tensors, prefix stripped, dtypes kept
(not committed: ~160 MiB). A1111 lists it in /sdapi/v1/sd-vae and loads it with override sd_vae.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_safetensors  # noqa: E402

SEED = 20241110
OUT = Path(__file__).resolve().parents[2] / "fixtures" / "a1111"

LORA_MODULES = [  # (kohya name, in features, out features)
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320),
    ("lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k", 768, 1280),
    ("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 768, 768),
]


def lora(gen: torch.Generator, std: float = 0.05) -> dict:
    out = {}
    for name, fan_in, fan_out in LORA_MODULES:
        out[f"{name}.lora_down.weight"] = (torch.randn(1, fan_in, generator=gen) * std).half()
        out[f"{name}.lora_up.weight"] = (torch.randn(fan_out, 1, generator=gen) * std).half()
        out[f"{name}.alpha"] = torch.tensor(1.0, dtype=torch.float16)
    return out


def emb(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen) * 0.01


# Zip records torch 2.1.2 (A1111 v1.10.1's pin) writes, in its order. Newer torch (refvenv) adds
# ".format_version" and ".storage_alignment", which A1111's safe unpickler (modules/safe.py
# allowed_zip_names_re) rejects: "bad file inside embA.pt" -> the embedding is not loaded.
_TORCH212_RECORDS = ["data.pkl", "byteorder", "data/*", "version", ".data/serialization_id"]


def torch_save(obj, path: Path) -> None:
    """torch.save(obj, path) as torch 2.1.2 lays it out: zip root = file stem (A1111's Embedding.save passes a
    path), stored records with a zero DOS date, data 64-byte aligned by a "FB" padding extra field, and only the
    records torch 2.1.2 writes (see _TORCH212_RECORDS)."""
    import fnmatch
    import io
    import zipfile

    buf = io.BytesIO()
    torch.save(obj, buf)
    root = path.stem
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src:
        records = {info.filename.split("/", 1)[1]: src.read(info) for info in src.infolist()}
    ordered = []
    for pattern in _TORCH212_RECORDS:
        names = [n for n in records if fnmatch.fnmatchcase(n, pattern)]
        ordered += sorted(names, key=lambda n: int(n.rsplit("/", 1)[1]) if pattern == "data/*" else 0)
    with open(path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as dst:
        for rel in ordered:
            info = zipfile.ZipInfo(f"{root}/{rel}", date_time=(1980, 0, 0, 0, 0, 0))
            name_len = len(info.filename.encode())
            start = handle.tell() + 30 + name_len  # data offset without an extra field
            pad = (-(start + 4)) % 64              # 4 = extra field header
            info.extra = b"FB" + pad.to_bytes(2, "little") + b"Z" * pad
            info.create_system = 0
            dst.writestr(info, records[rel])


def write_small(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    write_safetensors(out / "lora_full_a.safetensors", lora(gen), {"ss_output_name": "aliasA"})
    write_safetensors(out / "lora_full_b.safetensors", lora(gen))
    torch_save({
        "string_to_token": {"*": 265},
        "string_to_param": {"*": emb(gen, 2, 768)},
        "name": "embA",
        "step": 150,
        "sd_checkpoint": "0123456789",
        "sd_checkpoint_name": "model",
    }, out / "embA.pt")
    write_safetensors(out / "embB.safetensors", {"emb_params": emb(gen, 3, 768)})
    torch_save({"<embC>": emb(gen, 768)}, out / "embC.bin")
    write_safetensors(out / "embXL.safetensors", {"clip_g": emb(gen, 1, 1280), "clip_l": emb(gen, 1, 768)})
    for name in ["lora_full_a.safetensors", "lora_full_b.safetensors", "embA.pt", "embB.safetensors",
                 "embC.bin", "embXL.safetensors"]:
        print(f"{out / name}: {(out / name).stat().st_size} bytes")


def write_vae(checkpoint: Path, vae_out: Path) -> None:
    from safetensors import safe_open

    prefix = "first_stage_model."
    with safe_open(str(checkpoint), framework="pt") as f:
        state = {k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
    write_safetensors(vae_out, state)
    print(f"{vae_out}: {len(state)} tensors, {vae_out.stat().st_size / 2**20:.1f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--checkpoint", type=Path, help="full-size SD1.5 .safetensors whose VAE to extract")
    ap.add_argument("--vae-out", type=Path, help="where to write the extracted VAE (with --checkpoint)")
    args = ap.parse_args()
    if bool(args.checkpoint) != bool(args.vae_out):
        ap.error("--checkpoint and --vae-out go together")
    write_small(args.out)
    if args.checkpoint:
        write_vae(args.checkpoint, args.vae_out)


if __name__ == "__main__":
    main()
