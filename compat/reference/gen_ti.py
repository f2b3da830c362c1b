"""Reference fixtures for textual-inversion embeddings in prompts (Pipeline EmbeddingDatabase, Tokenizer chunker).

    /work/refvenv/bin/python compat/reference/gen_ti.py

Writes only fixtures/text/ti/ (the embedding files), fixtures/text/ti.json and fixtures/text/ti.safetensors.
Seeded, so a rerun writes the same bytes (.pt/.bin through gen_a1111_extras.torch_save: torch 2.1.2's zip layout,
which A1111's modules/safe.py accepts).

Runs A1111 v1.10.1's own code, read from a checkout (env A1111_MODULES = its modules/ folder, or A1111_WEBUI = its
root, else /tmp/a1111/modules or /work/a1111-reference/stable-diffusion-webui/modules) or, when there is none, from
`git archive v1.10.1 modules` of the bare mirror (env A1111_MIRROR, default
/work/.mirror/kklouzal+stable-diffusion-webui/repo) into a temporary folder:
- modules/textual_inversion/textual_inversion.py EmbeddingDatabase: load_textual_inversion_embeddings(force_reload)
  over fixtures/text/ti/ (load_from_file, create_embedding_from_data, register_embedding_by_name, the expected-shape
  check through encode_embedding_init_text, find_embedding_at_position), with modules/safe.py's torch.load and
  modules/hashes.py's sha256 (set_hash -> shorthash);
- modules/sd_hijack.py: the classes StableDiffusionModelHijack (its __init__, clear_comments, get_prompt_lengths)
  and EmbeddingsWithFixes, exec'd from the file's source (the module itself imports ldm/sgm); the token embedding
  is wrapped as StableDiffusionModelHijack.hijack does for an ldm FrozenCLIPEmbedder;
- modules/sd_hijack_clip.py FrozenCLIPEmbedderWithCustomWords (tokenize_line, process_texts, forward with
  hijack.fixes), prompt_parser.py, sd_emphasis.py;
- modules/api/api.py Api.get_embeddings (exec'd from source) for the /sdapi/v1/embeddings listing.
Stubbed: devices (CPU, float32), shared.opts at A1111 defaults (emphasis "Original", comma_padding_backtrack 20,
CLIP_stop_at_last_layers 1, textual_inversion_add_hashes_to_infotext True), cmd_opts, errors (raise), the hash cache
(in memory) and the training-only modules textual_inversion.py imports (dataset, sd_models, images, ...).
The text encoder is the tiny random CLIP of sd_layout.tiny_sd1() (width 32); the tokenizer is gen_txt2img's.

Outputs:
- ti/*: the embedding folder. embA.pt (A1111's Embedding.save format, [2, 32], step 150), embB.safetensors
  (emb_params [3, 32]), embC.bin (diffusers concept {"<embC>": [32]}), wide.safetensors (emb_params [1, 768]:
  skipped, width != 32), my_style_v2.pt (name of 6 tokens, 1 vector), redfox.pt / redfox_king.safetensors /
  redfoxking.bin (same first token "red"; redfox's ids are a prefix of redfox_king's -> longest first), and
  night,city.safetensors (a comma in the name: removed in "TI hashes"). Values N(0, 0.02^2).
- ti.json: "database" (loaded names in A1111's order, skipped names, ids per name, the /sdapi/v1/embeddings
  listing, sha256 per file), "cases" (per prompt: chunks from tokenize_line with tokens, multipliers and fixes as
  [offset, name] -- offset into the 75 prompt tokens, EmbeddingsWithFixes writes at offset + 1 --, token_count and
  get_prompt_lengths, used_embeddings in forward's order, the "TI hashes" one forward call builds, the tensor name),
  "batches" (one forward over several texts) and "chained" (forward calls without clear_comments in between: how
  A1111 appends the previous "TI hashes").
- ti.safetensors: forward's output per case / batch, [chunks * 77, 32] (batches: [B, chunks * 77, 32]).
"""
import ast
import atexit
import hashlib
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import types

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import fixture_path, load_module, save_tensors, stub_module, write_json, write_safetensors  # noqa: E402
from gen_a1111_extras import torch_save  # noqa: E402
from gen_txt2img import tokenizer as clip_tokenizer  # noqa: E402
from sd_layout import tiny_sd1  # noqa: E402

AREA = "text"
SEED = 20260301
STD = 0.02
MIRROR = os.environ.get("A1111_MIRROR", "/work/.mirror/kklouzal+stable-diffusion-webui/repo")
TAG = "v1.10.1"

FILLER = "word "  # one token ("word</w>")
CASES = [
    ("photo", "a photo of embA"),
    ("three", "embB, embC and embA"),
    ("emphasis", "(embA:1.3) with [embB]"),
    ("not_embedding", "xembAx is not an embedding"),
    ("case_insensitive", "EMBA, Emba"),
    ("prefix", "redfox_king and redfoxking and redfox"),
    ("prefix_reversed", "redfox redfoxking redfox_king redfox_"),
    ("multi_token_name", "my_style_v2 portrait"),
    ("comma_name", "night,city at dusk, night, city"),
    ("overflow73", FILLER * 73 + "embB"),
    # 60 filler, comma (index 60), embA (offset 61, 2 vectors), 12 filler -> 75 tokens; the next filler backtracks
    # to the comma: tokens 61.. move to the next chunk, the fix (61, embA) stays with the first one.
    ("backtrack", FILLER * 60 + ", embA " + FILLER * 14),
    # The same with the embedding before the comma: nothing of it moves.
    ("backtrack_before", FILLER * 58 + "embA, " + FILLER * 16),
    ("break", "embA BREAK embB"),
    ("empty", ""),
]
BATCHES = [("batch_edit", ["a embA cat", "embB, embC " + FILLER * 74])]
CHAINED = [("negative_then_positive", ["embB blurry", "embA and embB"])]


def embedding_files(gen):
    """The embedding folder: name -> (writer, payload)."""
    def vec(*shape):
        return torch.randn(*shape, generator=gen) * STD

    def a1111(name, v, step, checkpoint, checkpoint_name):
        return {"string_to_token": {"*": 265}, "string_to_param": {"*": v}, "name": name, "step": step,
                "sd_checkpoint": checkpoint, "sd_checkpoint_name": checkpoint_name}

    return [
        ("embA.pt", a1111("embA", vec(2, 32), 150, "0123456789", "tiny")),
        ("embB.safetensors", {"emb_params": vec(3, 32)}),
        ("embC.bin", {"<embC>": vec(32)}),
        ("wide.safetensors", {"emb_params": vec(1, 768)}),
        ("my_style_v2.pt", a1111("my_style_v2", vec(1, 32), 1000, None, None)),
        # The name stored inside is not the one A1111 uses (the file stem is).
        ("redfox.pt", a1111("not_redfox", vec(1, 32), 20, "fedcba9876", "other")),
        ("redfox_king.safetensors", {"emb_params": vec(2, 32)}),
        ("redfoxking.bin", {"<redfoxking>": vec(3, 32)}),
        ("night,city.safetensors", {"emb_params": vec(1, 32)}),
    ]


# ---------------------------------------------------------------- A1111 sources
def a1111_modules():
    for env, sub in (("A1111_MODULES", ""), ("A1111_WEBUI", "modules")):
        if os.environ.get(env):
            return pathlib.Path(os.environ[env], sub)
    for p in ("/tmp/a1111/modules", "/work/a1111-reference/stable-diffusion-webui/modules"):
        if pathlib.Path(p, "textual_inversion", "textual_inversion.py").is_file():
            return pathlib.Path(p)
    out = pathlib.Path(tempfile.mkdtemp(prefix="a1111-"))
    atexit.register(shutil.rmtree, out, True)
    archive = subprocess.run(["git", "--git-dir", MIRROR, "archive", TAG, "modules"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out / "modules"


def _exec_defs(path, names, module):
    """Executes the top-level class / function definitions `names` of a source file in `module`'s namespace."""
    tree = ast.parse(path.read_text(), str(path))
    found = {}

    def visit(body):
        for node in body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name in names:
                found[node.name] = node
            elif isinstance(node, ast.ClassDef):
                visit(node.body)
    visit(tree.body)
    missing = set(names) - set(found)
    if missing:
        raise RuntimeError(f"{path}: no definition of {sorted(missing)}")
    for name in names:  # in the order asked
        node = found[name]
        node.decorator_list = []
        code = compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec")
        exec(code, module.__dict__)


def _raise(message, *args, **kwargs):
    raise RuntimeError(f"A1111 reported an error: {message}")


def load_a1111(src, embeddings_dir):
    pkg = stub_module("modules")
    pkg.__path__ = []
    opts = types.SimpleNamespace(emphasis="Original", comma_padding_backtrack=20, CLIP_stop_at_last_layers=1,
                                 use_old_emphasis_implementation=False, textual_inversion_add_hashes_to_infotext=True,
                                 textual_inversion_print_at_load=False, save_optimizer_state=False)
    cmd_opts = types.SimpleNamespace(embeddings_dir=str(embeddings_dir), no_hashing=False, disable_safe_unpickle=False)
    shared = stub_module("modules.shared", opts=opts, cmd_opts=cmd_opts, sd_model=None)
    cpu = torch.device("cpu")
    stub_module("modules.devices", device=cpu, cpu=cpu, dtype=torch.float32, torch_npu_set_device=lambda: None,
                cond_cast_unet=lambda x: x, cond_cast_float=lambda x: x)
    stub_module("modules.errors", display=_raise, report=_raise, display_once=_raise)
    caches = {}
    stub_module("modules.cache", cache=lambda sub: caches.setdefault(sub, {}), dump_cache=lambda: None)
    for name in ("sd_models", "images", "sd_samplers", "sd_hijack_checkpoint"):  # used only by training code
        stub_module(f"modules.{name}")
    safe = load_module("modules.safe", src / "safe.py")  # replaces torch.load with its checked load, as in A1111
    load_module("modules.hashes", src / "hashes.py")
    hijack_mod = stub_module("modules.sd_hijack", torch=torch, devices=sys.modules["modules.devices"], shared=shared,
                         cmd_opts=cmd_opts)
    parser = load_module("modules.prompt_parser", src / "prompt_parser.py")
    load_module("modules.sd_emphasis", src / "sd_emphasis.py")
    clip = load_module("modules.sd_hijack_clip", src / "sd_hijack_clip.py")
    hijack_mod.sd_hijack_clip = clip
    ti_pkg = stub_module("modules.textual_inversion")
    ti_pkg.__path__ = []
    stub_module("modules.textual_inversion.dataset")  # torchvision + ldm, training only
    for name in ("learn_schedule", "image_embedding", "saving_settings"):
        load_module(f"modules.textual_inversion.{name}", src / "textual_inversion" / f"{name}.py")
    ti = load_module("modules.textual_inversion.textual_inversion", src / "textual_inversion" / "textual_inversion.py")
    _exec_defs(src / "sd_hijack.py", ["StableDiffusionModelHijack", "EmbeddingsWithFixes"], hijack_mod)
    hijack_mod.model_hijack = hijack_mod.StableDiffusionModelHijack()
    api = types.ModuleType("modules.api.api")
    api.sd_hijack = hijack_mod
    _exec_defs(src / "api" / "api.py", ["get_embeddings"], api)
    return types.SimpleNamespace(opts=opts, shared=shared, safe=safe, parser=parser, clip=clip, ti=ti,
                                 sd_hijack=hijack_mod, get_embeddings=api.get_embeddings)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    emb_dir = fixture_path(AREA, "ti.json").parent / "ti"
    emb_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    files = embedding_files(gen)
    for filename, payload in files:
        path = emb_dir / filename
        if filename.endswith(".safetensors"):
            write_safetensors(path, {k: v.float().contiguous() for k, v in payload.items()})
        else:
            torch_save(payload, path)

    a = load_a1111(a1111_modules(), emb_dir)
    hijack = a.sd_hijack.model_hijack
    model = tiny_sd1()
    tok = clip_tokenizer()
    text_encoder = model.text_encoder
    # StableDiffusionModelHijack.hijack, branch ldm FrozenCLIPEmbedder:
    model_embeddings = text_encoder.text_model.embeddings
    model_embeddings.token_embedding = a.sd_hijack.EmbeddingsWithFixes(model_embeddings.token_embedding, hijack)
    wrapped = types.SimpleNamespace(tokenizer=tok, transformer=text_encoder)
    embedder = a.clip.FrozenCLIPEmbedderWithCustomWords(wrapped, hijack)
    hijack.clip = embedder
    a.shared.sd_model = types.SimpleNamespace(cond_stage_model=embedder)

    db = hijack.embedding_db
    db.load_textual_inversion_embeddings(force_reload=True)
    assert db.expected_shape == 32, db.expected_shape
    listing = a.get_embeddings(None)

    def name_ids(name):
        return embedder.tokenize([name])[0]

    database = {
        "expected_shape": db.expected_shape,
        "loaded": list(db.word_embeddings),
        "skipped": list(db.skipped_embeddings),
        "listing": listing,
        "ids": {name: name_ids(name) for name in list(db.word_embeddings) + list(db.skipped_embeddings)},
        # ids_lookup per first token, longest first; among equal lengths A1111 keeps os.walk order (file-system
        # dependent), so those are listed by name here (distinct names of one length never match the same tokens).
        "lookup": {str(first): [[ids, e.name] for ids, e in sorted(entries, key=lambda x: (-len(x[0]), x[1].name))]
                   for first, entries in sorted(db.ids_lookup.items())},
        "files": {e.name: {"file": os.path.basename(e.filename), "sha256": sha256(pathlib.Path(e.filename)),
                           "shorthash": e.shorthash}
                  for e in list(db.word_embeddings.values()) + list(db.skipped_embeddings.values())},
    }
    for name, e in db.word_embeddings.items():
        assert e.shorthash == database["files"][name]["sha256"][:12]

    def chunk_json(chunks):
        return [{"tokens": c.tokens, "multipliers": c.multipliers,
                 "fixes": [[f.offset, f.embedding.name] for f in c.fixes]} for c in chunks]

    # forward() keeps used_embeddings to itself; record the hijack.fixes it assigns per chunk (the lists
    # EmbeddingsWithFixes then reads) and rebuild the dict exactly as forward does.
    assigned = []

    class RecordingHijack(type(hijack)):
        @property
        def fixes(self):
            return self.__dict__.get("_fixes")

        @fixes.setter
        def fixes(self, value):
            if value is not None:
                assigned.append(value)
            self.__dict__["_fixes"] = value

    hijack.__class__ = RecordingHijack

    def run_forward(texts):
        """One forward call; returns z and forward's used_embeddings names, in its order."""
        assigned.clear()
        z = embedder(texts)
        assert hijack.fixes is None  # EmbeddingsWithFixes consumed them
        used = {}
        for batch_fixes in assigned:
            for fixes in batch_fixes:
                for _position, embedding in fixes:
                    used[embedding.name] = embedding
        return z, list(used)

    tensors, cases, batches, chained = {}, [], [], []
    with torch.no_grad():
        for case_id, prompt in CASES:
            chunks, count = embedder.tokenize_line(prompt)
            hijack.clear_comments()
            z, used = run_forward([prompt])
            tensors[case_id] = z[0]
            lengths = hijack.get_prompt_lengths(prompt)
            cases.append({"id": case_id, "prompt": prompt, "chunks": chunk_json(chunks), "token_count": count,
                          "prompt_lengths": list(lengths), "used_embeddings": used,
                          "ti_hashes": hijack.extra_generation_params.get("TI hashes"),
                          "tensor": case_id, "shape": list(z[0].shape)})
        for case_id, texts in BATCHES:
            hijack.clear_comments()
            z, used = run_forward(texts)
            tensors[case_id] = z
            batches.append({"id": case_id, "texts": texts,
                            "chunks": [chunk_json(embedder.tokenize_line(t)[0]) for t in texts],
                            "used_embeddings": used, "ti_hashes": hijack.extra_generation_params.get("TI hashes"),
                            "tensor": case_id, "shape": list(z.shape)})
        for case_id, prompts in CHAINED:
            hijack.clear_comments()
            steps = []
            for prompt in prompts:
                _, used = run_forward([prompt])
                steps.append({"prompt": prompt, "used_embeddings": used,
                              "ti_hashes": hijack.extra_generation_params.get("TI hashes")})
            chained.append({"id": case_id, "calls": steps})

    save_tensors(AREA, "ti.safetensors", tensors)
    write_json(AREA, "ti.json", {
        "a1111": TAG, "seed": SEED, "std": STD, "width": 32,
        "opts": {"emphasis": "Original", "comma_padding_backtrack": 20, "CLIP_stop_at_last_layers": 1,
                 "textual_inversion_add_hashes_to_infotext": True},
        "database": database, "cases": cases, "batches": batches, "chained": chained,
    })
    total = 0
    for p in sorted(emb_dir.iterdir()) + [fixture_path(AREA, "ti.json"), fixture_path(AREA, "ti.safetensors")]:
        total += p.stat().st_size
        print(f"{p.relative_to(emb_dir.parents[2])}: {p.stat().st_size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
