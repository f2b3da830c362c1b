"""Records what the real A1111 v1.10.1 writes for extra networks (LoRA, TI), external VAEs and hires fix
into fixtures/a1111/extras_cases.json. Stdlib only (urllib), like compat/clients/record_a1111_corpus.py.

Made with (see /work/shared/a1111-reference/README.md for the A1111 build):
    MIRROR=/work/.mirror bash /work/shared/a1111-reference/setup.sh /work/a1111-data/sd15-random-fp16.safetensors
    /work/refvenv/bin/python compat/reference/gen_full_checkpoint.py --dtype fp16 --format safetensors \\
        /work/a1111-data/sd15-random-fp16.safetensors
    /work/refvenv/bin/python compat/reference/gen_a1111_extras.py \\
        --checkpoint /work/a1111-data/sd15-random-fp16.safetensors --vae-out /work/a1111-data/VAE/vaeA.safetensors
    W=$HOME/a1111-reference/stable-diffusion-webui
    cp fixtures/a1111/lora_full_{a,b}.safetensors $W/models/Lora/
    cp fixtures/a1111/emb{A.pt,B.safetensors,C.bin,XL.safetensors} $W/embeddings/
    ln -sf /work/a1111-data/VAE/vaeA.safetensors $W/models/VAE/vaeA.safetensors
    config.json = CONFIG_JSON below (setup.sh's three keys + "sd_vae": "Automatic", so the sd_vae overrides are
        restored after each request: A1111 only restores override keys present in config.json), then
    $HOME/a1111-reference/start.sh &     (127.0.0.1:7861, plain A1111, no extensions)
    python3 compat/reference/record_a1111_extras.py http://127.0.0.1:7861 \\
        --checkpoint /work/a1111-data/sd15-random-fp16.safetensors --vae /work/a1111-data/VAE/vaeA.safetensors

Every request: 64x64, steps 4, cfg_scale 7, seed 1234, sampler "Euler a" unless the case says otherwise.
No subseed is sent, so info["subseed"] / info["all_subseeds"] are random (as in A1111; not in the infotext).

Cond cache: A1111 keeps the last computed conds (opts.persistent_cond_cache, default True) and reuses them when
the prompt and parameters are identical; then the text encoder does not run and "TI hashes" (added while
encoding) would be missing. Before every case this script sends a PRIMER txt2img (own prompt and negative
prompt, steps 1, a 1x latent hires pass with 1 step) whose first-pass and hires-pass conds replace all four
caches (cached_c, cached_uc, cached_hr_c, cached_hr_uc): every case's conds are then computed afresh, as on a
first request. (Case prompts also all differ from the primer's; the primer's answers are not recorded.)

Before each generation the script waits while `pgrep -f sdbench` finds a process (polls every 30 s, goes ahead
after 40 minutes in all), so that a running benchmark is not disturbed; --no-wait skips that.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "a1111"

CONFIG_JSON = {"CLIP_stop_at_last_layers": 1, "randn_source": "GPU", "eta_ancestral": 1.0, "sd_vae": "Automatic"}

BASE = {"width": 64, "height": 64, "steps": 4, "cfg_scale": 7, "seed": 1234, "sampler_name": "Euler a"}
HR = {"enable_hr": True, "denoising_strength": 0.55, "hr_scale": 2}

CASES = [
    ("base", {"prompt": "a cat"}),
    # hires fix
    ("hires-a-default-upscaler", {"prompt": "a cat", **HR}),
    ("hires-b-latent-nearest-resize", {"prompt": "a cat", **HR, "hr_upscaler": "Latent (nearest)",
                                       "hr_second_pass_steps": 3, "hr_resize_x": 128, "hr_resize_y": 96}),
    ("hires-c-dpmpp2m-karras-hr-euler", {"prompt": "a cat", **HR, "sampler_name": "DPM++ 2M", "scheduler": "Karras",
                                         "hr_sampler_name": "Euler"}),
    ("hires-d-euler-hr-dpmpp2m", {"prompt": "a cat", **HR, "sampler_name": "Euler", "hr_sampler_name": "DPM++ 2M"}),
    ("hires-e-hr-prompts", {"prompt": "a cat", **HR, "hr_prompt": "other prompt", "hr_negative_prompt": "other neg"}),
    ("hires-f-latent-1.5-exponential", {"prompt": "a cat", **HR, "hr_upscaler": "Latent", "hr_scale": 1.5,
                                        "hr_scheduler": "Exponential"}),
    # LoRA
    ("lora-a-te-unet", {"prompt": "a cat <lora:lora_full_a:0.7:1.3>"}),
    ("lora-alias-and-b", {"prompt": "a cat <lora:aliasA:0.5> <lora:lora_full_b:1>"}),
    ("lora-missing", {"prompt": "a cat <lora:missing_one:1>"}),
    ("lora-named-te-unet", {"prompt": "a cat <lora:lora_full_a:te=0.2:unet=0.9>"}),
    ("lora-malformed-multiplier", {"prompt": "a cat <lora:lora_full_b:abc>"}),
    ("lora-in-negative-only", {"prompt": "a cat", "negative_prompt": "ugly <lora:lora_full_b:0.8>"}),
    # external VAE (override_settings; sd_vae pre-set in config.json, so each is restored afterwards)
    ("vae-file", {"prompt": "a cat", "override_settings": {"sd_vae": "vaeA.safetensors"}}),
    ("vae-none", {"prompt": "a cat", "override_settings": {"sd_vae": "None"}}),
    ("vae-unknown", {"prompt": "a cat", "override_settings": {"sd_vae": "nope.pt"}}),
    # textual inversion
    ("ti-prompt-and-negative", {"prompt": "a photo of embA", "negative_prompt": "embB, blurry"}),
    ("ti-three", {"prompt": "embC embA embB"}),
    ("ti-emphasis", {"prompt": "(embA:1.2) and [embB]"}),
    ("ti-inside-word", {"prompt": "xembAx"}),
    ("ti-chunk-boundary", {"prompt": " ".join(["cat"] * 80) + " embB"}),
    # combined
    ("combined-hires-lora-ti", {"prompt": "a cat <lora:lora_full_a:0.7> embA", **HR}),
]


def primer(case_id: str) -> dict:
    return {**BASE, "prompt": f"primer for {case_id}", "negative_prompt": f"primer negative for {case_id}",
            "steps": 1, "enable_hr": True, "hr_scale": 1, "hr_upscaler": "Latent", "hr_second_pass_steps": 1,
            "denoising_strength": 0.5}


def call(base: str, path: str, body: dict | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=900) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def wait_for_idle(pattern: str, deadline: list) -> None:
    while time.time() < deadline[0]:
        if subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode != 0:
            return
        print(f"  waiting: {pattern} is running", flush=True)
        time.sleep(30)


def png_summary(b64: str) -> dict:
    """Size, text chunks and a hash of the decompressed IDAT stream (equal pixels -> equal hash, whatever the text)."""
    raw = base64.b64decode(b64)
    pos, idat, texts, size = 8, b"", {}, None
    while pos < len(raw):
        n = int.from_bytes(raw[pos:pos + 4], "big")
        kind, chunk = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            size = [int.from_bytes(chunk[0:4], "big"), int.from_bytes(chunk[4:8], "big")]
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"tEXt":
            key, _, value = chunk.partition(b"\0")
            texts[key.decode("latin-1")] = value.decode("latin-1")
        pos += 12 + n
    return {"size": size, "text_chunks": sorted(texts), "png_sha256": hashlib.sha256(raw).hexdigest(),
            "idat_inflated_sha256": hashlib.sha256(zlib.decompress(idat)).hexdigest()}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def addnet_hash(path: Path) -> str:
    """modules/hashes.py addnet_hash_safetensors: sha256 of the bytes after the 8-byte length and the header."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        f.seek(8 + n)
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_hashes(path: Path) -> dict:
    sha = sha256_file(path)
    out = {"sha256": sha, "sha256_short10": sha[:10], "sha256_short12": sha[:12], "bytes": path.stat().st_size}
    if path.suffix == ".safetensors":
        out["addnet_hash"] = addnet_hash(path)
        out["addnet_short12"] = out["addnet_hash"][:12]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", nargs="?", default="http://127.0.0.1:7861")
    ap.add_argument("--checkpoint", type=Path, default=Path("/work/a1111-data/sd15-random-fp16.safetensors"))
    ap.add_argument("--vae", type=Path, default=Path("/work/a1111-data/VAE/vaeA.safetensors"))
    ap.add_argument("--no-wait", action="store_true", help="do not wait for sdbench to finish")
    ap.add_argument("--only", nargs="*", help="record only these case ids (others are kept from the existing file)")
    args = ap.parse_args()
    base = args.base.rstrip("/")
    deadline = [time.time() + 40 * 60]

    out_path = OUT_DIR / "extras_cases.json"
    previous = json.loads(out_path.read_text()) if (args.only and out_path.exists()) else {}
    old_cases = {c["id"]: c for c in previous.get("cases", [])}

    listings = {}
    for name in ["embeddings", "loras", "sd-vae", "sd-models"]:
        status, body = call(base, f"/sdapi/v1/{name}")
        listings[name] = {"status": status, "body": json.loads(body)}

    cases = []
    for case_id, fields in CASES:
        if args.only and case_id not in args.only:
            if case_id in old_cases:
                cases.append(old_cases[case_id])
            continue
        if not args.no_wait:
            wait_for_idle("sdbench", deadline)
        p_status, _ = call(base, "/sdapi/v1/txt2img", primer(case_id))
        request = {**BASE, **fields}
        t0 = time.time()
        status, body = call(base, "/sdapi/v1/txt2img", request)
        elapsed = time.time() - t0
        rec = {"id": case_id, "request": request, "status": status, "primer_status": p_status}
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if status == 200 and isinstance(parsed, dict):
            info = json.loads(parsed["info"])
            info.pop("job_timestamp", None)
            rec["infotext"] = info["infotexts"][0]
            rec["extra_generation_params"] = info["extra_generation_params"]
            rec["info"] = info
            rec["images"] = [png_summary(b) for b in parsed.get("images") or []]
        else:
            rec["body"] = parsed if parsed is not None else body[:4000]
        cases.append(rec)
        print(f"{case_id}: {status} ({elapsed:.1f} s)", flush=True)
        print("   ", (rec.get("infotext") or json.dumps(rec.get("body"))[:300]).replace("\n", "\n    "), flush=True)

    files = {p.name: file_hashes(p) for p in sorted(OUT_DIR.iterdir())
             if p.suffix in (".safetensors", ".pt", ".bin")}
    files[args.vae.name] = {**file_hashes(args.vae), "path": "not committed: " + str(args.vae)}
    checkpoint = {**file_hashes(args.checkpoint), "path": "not committed: " + str(args.checkpoint)}
    checkpoint.pop("addnet_hash", None)
    checkpoint.pop("addnet_short12", None)

    out = {
        "recorded_with": "compat/reference/record_a1111_extras.py (see its docstring); A1111 v1.10.1 82a973c0, CPU",
        "config_json": CONFIG_JSON,
        "defaults": BASE,
        "cond_cache": "a primer txt2img (own prompts, steps 1, 1x latent hires) precedes every case: no cached conds",
        "checkpoint": checkpoint,
        "files": files,
        "listings": listings,
        "cases": cases,
    }
    out_path.write_text(json.dumps(out, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"{out_path}: {out_path.stat().st_size} bytes")


if __name__ == "__main__":
    sys.exit(main())
