"""Reference fixtures for the text side (Tokenizer target, CLIPTextModel, Pipeline CLIPPromptEncoder).

    /work/refvenv/bin/python compat/reference/gen_text.py

Writes only fixtures/text/. Runs A1111 v1.10.1's own modules (env A1111_MODULES, else /tmp/a1111/modules or
/work/a1111-reference/stable-diffusion-webui/modules): prompt_parser.py (needs lark), sd_emphasis.py,
sd_hijack_clip.py (FrozenCLIPEmbedderWithCustomWords over a stub hijack without textual-inversion embeddings) and
extra_networks.parse_prompt, with transformers' CLIPTokenizer built from open_clip's BPE file (as A1111's
openai/clip-vit-large-patch14 tokenizer) and the tiny random CLIP of sd_layout.tiny_sd1().

- fuzz.json: 400 seeded random prompts from the bracket grammar (30% with a character dropped or inserted) with A1111's attention parse (null where it raises),
  schedules and AND parts.
- prompts.json: per corpus prompt, A1111's attention parse, schedules (10 steps; hires 10 + 6), AND parts,
  extra-network tags, plain token ids, and the 77-token chunks with multipliers and token count.
- clip_tiny.safetensors: the tiny text encoder under its checkpoint keys (cond_stage_model.transformer.text_model.*),
  F32, with the token embedding reduced to the rows the encode cases use (`token_rows` + `token_ids`).
- encode.safetensors / encode.json: get_multicond_learned_conditioning and get_learned_conditioning outputs for
  prompt batches with clip skip 1 and 2.
"""
import importlib.util
import os
import pathlib
import random
import sys
import types

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import fixture_path, load_module, save_tensors, stub_module, write_json, write_safetensors  # noqa: E402
from gen_txt2img import tokenizer as clip_tokenizer  # noqa: E402
from sd_layout import tiny_sd1  # noqa: E402

A1111 = pathlib.Path(os.environ.get("A1111_MODULES") or next(
    (p for p in ("/tmp/a1111/modules", "/work/a1111-reference/stable-diffusion-webui/modules")
     if pathlib.Path(p, "prompt_parser.py").is_file()), "/tmp/a1111/modules"))
AREA = "text"
PREFIX = "cond_stage_model.transformer.text_model."

LONG = ", ".join(f"detail {i}" for i in range(40))
CORPUS = [
    "a photo of an astronaut riding a horse",
    "(astolfo:0.98), 1boy, [[navel]], (((smile))), [blurry:1.2]",
    "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
    "\\(literal\\] and \\\\ backslash \\q",
    "(unbalanced [also",
    "first part BREAK second part BREAKfast BREAK",
    "BREAK leading and trailing BREAK",
    "a [cat:dog:0.5] on a [mat:4] with [a hat::0.3] and [:a scarf:7]",
    "a [b : c : 1] d, [fe|]male, [red|green|(blue:1.2)] ball",
    "nested [a[b:[c:d:2]:1]e] and [(tall:1.3):short:0.25]",
    "a [unbalanced and ((a][:b:c [d:3]",
    "weights (x:-1) (y:+2.5) (z:.5) (w: 1.5 )",
    "a cat AND a dog:1.5 AND  a bird : 0.7 ",
    "ANDROID AND_x AND",
    "<lora:detail_tweaker:0.7> a portrait, <hypernet:anime:1> <lora:noweight> smile",
    LONG,
    ", ".join(["masterpiece", "best quality"] + [f"tag number {i}" for i in range(30)]),
    "word " * 74 + ", tail words after comma",
    "Ünïcödé café naïve — “quoted” ‘single’ ﬁne ＦＵＬＬ 日本語 😀 emoji",
    "numbers 1234567 3.14159 2e10 42nd v1.5 x2",
    "it's they're we've I'm you'll he'd 'quoted'",
    "   spaced\t\ttabs\nnewline   ",
    "",
    "[a:b:1e3] [c:d:-0.5] [e:f:15] [g:h: 2 ] [[i:j:0.5]] \\[k:l:0.5\\]",
    "top-level a|b pipe [x:y:0.5] stays literal",
    "trailing backslash \\",
    "html &amp; &lt;not a tag&gt; &#39;x&#39; &#x263a; &bogus;",
    "<b>html with &amp; and a tag</b>",
    "special <|endoftext|> and <|startoftext|> tokens",
    "empty (:1.5) () [] (()) [a|] [|b] [|] [:]",
    "word " * 50 + ", " + "more " * 40 + ", end",
    "word " * 60 + "BREAK " + "x, " * 50,
    "(a ((b:1.2) c):0.8) d [e [f] g:h:0.4]",
]

ENCODE_CASES = [
    {"prompts": ["a photo of an astronaut riding a horse", "(astolfo:0.98), 1boy, [[navel]]"], "steps": 10},
    {"prompts": ["a [cat:dog:0.5] sitting BREAK on a (red:1.3) mat"], "steps": 6},
    {"prompts": ["[red|green] (ball:1.2) AND a dog:0.5"], "steps": 3},
    {"prompts": [LONG], "steps": 4},
    {"prompts": ["<lora:x:0.5> a [castle::0.5]"], "steps": 4, "hires_steps": 4},
    {"prompts": ["a (red:1.4) [blue] ball AND (green:0.5) grass"], "steps": 2, "emphasis": "None"},
    {"prompts": ["a (red:1.4) [blue] ball AND (green:0.5) grass"], "steps": 2, "emphasis": "Ignore"},
    {"prompts": ["a (red:1.4) [blue] ball AND (green:0.5) grass"], "steps": 2, "emphasis": "No norm"},
    {"prompts": ["a (red:1.4) ball"], "steps": 2, "clip_skips": [12, 13]},
]
# Float position_ids as some merged checkpoints carry them; transformers 4.30 (A1111's pin) keeps position_ids as a
# persistent int64 buffer, so loading truncates them toward zero.
BROKEN_POSITIONS = {5: 4.9999, 40: 40.00001, 76: 75.99}
NEGATIVE = ["", "blurry, (lowres:1.4)"]


# ---------------------------------------------------------------- A1111 modules with stubbed options and devices


class Hijack:
    """sd_hijack.model_hijack without textual-inversion embeddings."""

    def __init__(self):
        self.fixes = None
        self.extra_generation_params = {}
        self.embedding_db = types.SimpleNamespace(find_embedding_at_position=lambda tokens, offset: (None, None))


def load_a1111():
    pkg = stub_module("modules")
    pkg.__path__ = []
    opts = types.SimpleNamespace(emphasis="Original", comma_padding_backtrack=20, CLIP_stop_at_last_layers=1,
                                 use_old_emphasis_implementation=False, textual_inversion_add_hashes_to_infotext=False)
    stub_module("modules.shared", opts=opts)
    stub_module("modules.devices", device=torch.device("cpu"), cpu=torch.device("cpu"), torch_npu_set_device=lambda: None)
    stub_module("modules.errors", display=lambda *a, **k: None, report=lambda *a, **k: None)
    stub_module("modules.sd_hijack", model_hijack=Hijack())
    parser = load_module("modules.prompt_parser", A1111 / "prompt_parser.py")
    load_module("modules.sd_emphasis", A1111 / "sd_emphasis.py")
    clip = load_module("modules.sd_hijack_clip", A1111 / "sd_hijack_clip.py")
    extra = load_module("modules.extra_networks", A1111 / "extra_networks.py")
    return opts, parser, clip, extra


def main():
    opts, parser, hijack_clip, extra = load_a1111()
    model = tiny_sd1()
    tok = clip_tokenizer()
    wrapped = types.SimpleNamespace(tokenizer=tok, transformer=model.text_encoder)
    embedder = hijack_clip.FrozenCLIPEmbedderWithCustomWords(wrapped, Hijack())
    cond_model = types.SimpleNamespace(get_learned_conditioning=lambda texts: embedder(texts))

    cases = []
    for prompt in CORPUS:
        chunks, count = embedder.tokenize_line(prompt)
        stripped, tags = extra.parse_prompt(prompt)
        parts, flat, _ = parser.get_multicond_prompt_list([prompt])
        cases.append({
            "prompt": prompt,
            "attention": [[t, w] for t, w in parser.parse_prompt_attention(prompt)],
            "schedule": parser.get_learned_conditioning_prompt_schedules([prompt], 10)[0],
            "schedule_hires": parser.get_learned_conditioning_prompt_schedules([prompt], 10, 6)[0],
            "and_parts": [[flat[i], w] for i, w in parts[0]],
            "extra_text": stripped,
            "extra_tags": [[name, p.items] for name, ps in tags.items() for p in ps],
            "ids": tok(prompt, add_special_tokens=False)["input_ids"],
            "chunks": [{"tokens": c.tokens, "multipliers": c.multipliers} for c in chunks],
            "token_count": count,
        })
    write_json(AREA, "prompts.json", {"cases": cases})

    # Random prompts from the bracket grammar, some with one character dropped or inserted: the schedule grammar,
    # emphasis and AND on inputs nobody would write by hand.
    rng = random.Random(20261205)
    numbers = ["0.5", "3", "1.5", " 2 ", "-1", "0.25", "10", ".3", "1e1", "+2", "5."]
    words = ["a", "b c", " ", "AND", " AND ", "BREAK", "\\(", "\\]", "1", ",", ": 2"]

    def gen(depth):
        out = ""
        for _ in range(rng.randint(0, 3)):
            kind = rng.randrange(8) if depth < 3 else 0
            inner = lambda: gen(depth + 1)  # noqa: E731
            out += [lambda: rng.choice(words), lambda: "(" + inner() + ")",
                    lambda: "(" + inner() + ":" + rng.choice(numbers) + ")", lambda: "[" + inner() + "]",
                    lambda: "[" + inner() + ":" + inner() + ":" + rng.choice(numbers) + "]",
                    lambda: "[" + inner() + ":" + rng.choice(numbers) + "]",
                    lambda: "[" + "|".join(inner() for _ in range(rng.randint(2, 3))) + "]",
                    lambda: "[" + inner() + "::" + rng.choice(numbers) + "]"][kind]()
        return out

    # Prompts the grammar reads without top-level literal brackets have one reading; in the others a bracket may be
    # literal or open a construct, and lark's Earley parser picks by its internal derivation order.
    import lark
    source = (A1111 / "prompt_parser.py").read_text()
    grammar = source.split('lark.Lark(r"""', 1)[1].split('""")', 1)[0]
    strict = lark.Lark(grammar.replace("!start: (prompt | /[][():]/+)*", "!start: prompt"))

    def unambiguous(prompt):
        try:
            strict.parse(prompt)
            return True
        except lark.exceptions.LarkError:
            return False

    fuzz = []
    for _ in range(400):
        prompt = gen(0)
        mutated = bool(prompt) and rng.random() < 0.3
        if mutated:
            i = rng.randrange(len(prompt))
            prompt = prompt[:i] + prompt[i + 1:] if rng.random() < 0.5 else prompt[:i] + rng.choice("[]():|") + prompt[i:]
        try:
            attention = [[t, w] for t, w in parser.parse_prompt_attention(prompt)]
        except ValueError:
            attention = None
        parts, flat, _ = parser.get_multicond_prompt_list([prompt])
        fuzz.append({"prompt": prompt, "mutated": mutated, "unambiguous": unambiguous(prompt), "attention": attention,
                     "schedule": parser.get_learned_conditioning_prompt_schedules([prompt], 7)[0],
                     "schedule_hires": parser.get_learned_conditioning_prompt_schedules([prompt], 5, 8)[0],
                     "and_parts": [[flat[i], w] for i, w in parts[0]]})
    write_json(AREA, "fuzz.json", {"cases": fuzz})

    # Encodings: the Pipeline's view (positive prompts stripped of extra networks, AND parts; negatives scheduled).
    tensors, meta, used = {}, [], {49406, 49407}
    with torch.no_grad():
        for ci, case in enumerate(ENCODE_CASES):
            opts.emphasis = case.get("emphasis", "Original")
            for clip_skip in case.get("clip_skips", (1, 2)):
                opts.CLIP_stop_at_last_layers = clip_skip
                prompts, _ = extra.parse_prompts(case["prompts"])
                steps, hires = case["steps"], case.get("hires_steps")
                multi = parser.get_multicond_learned_conditioning(cond_model, prompts, steps, hires)
                negs = parser.get_learned_conditioning(cond_model, NEGATIVE, steps, hires)
                entry = {"prompts": case["prompts"], "steps": steps, "hires_steps": hires, "clip_skip": clip_skip,
                         "emphasis": opts.emphasis,
                         "positive": [], "negative": []}
                for pi, parts in enumerate(multi.batch):
                    out = []
                    for k, part in enumerate(parts):
                        names = []
                        for e, s in enumerate(part.schedules):
                            name = f"c{ci}_skip{clip_skip}_p{pi}_part{k}_e{e}"
                            tensors[name] = s.cond
                            names.append([s.end_at_step, name])
                        out.append({"weight": part.weight, "schedule": names})
                    entry["positive"].append(out)
                for ni, schedule in enumerate(negs):
                    names = []
                    for e, s in enumerate(schedule):
                        name = f"c{ci}_skip{clip_skip}_n{ni}_e{e}"
                        tensors[name] = s.cond
                        names.append([s.end_at_step, name])
                    entry["negative"].append(names)
                meta.append(entry)
                for text in list(parser.get_multicond_prompt_list(prompts)[1]) + NEGATIVE:
                    for _, t in parser.get_learned_conditioning_prompt_schedules([text], steps, hires)[0]:
                        for c in embedder.tokenize_line(t)[0]:
                            used.update(c.tokens)
    opts.CLIP_stop_at_last_layers, opts.emphasis = 1, "Original"

    with torch.no_grad():
        positions = torch.arange(77, dtype=torch.float32)
        for i, v in BROKEN_POSITIONS.items():
            positions[i] = v
        chunk = embedder.tokenize_line(CORPUS[0])[0][0].tokens
        emb = model.text_encoder.text_model.embeddings
        saved = emb.position_ids.clone()
        emb.position_ids.copy_(positions.to(torch.int64)[None])
        tensors["broken_position_ids"] = positions
        tensors["broken_position_ids_z"] = model.text_encoder(torch.tensor([chunk])).last_hidden_state[0]
        emb.position_ids.copy_(saved)
    save_tensors(AREA, "encode.safetensors", tensors)
    write_json(AREA, "encode.json", {"cases": meta, "negative_prompts": NEGATIVE})

    # The tiny text encoder, token embedding reduced to the used rows.
    state = {k.removeprefix("text_model."): v for k, v in model.text_encoder.state_dict().items()}
    ids = sorted(used)
    weights = {PREFIX + k: v.float().contiguous() for k, v in state.items()
               if k not in ("embeddings.token_embedding.weight", "embeddings.position_ids")}
    weights[PREFIX + "embeddings.position_ids"] = model.state_dict[PREFIX + "embeddings.position_ids"].to(torch.int64).contiguous()
    weights["token_rows"] = state["embeddings.token_embedding.weight"][ids].float().contiguous()
    weights["token_ids"] = torch.tensor(ids, dtype=torch.int64)
    vocab = state["embeddings.token_embedding.weight"].shape[0]
    write_safetensors(fixture_path(AREA, "clip_tiny.safetensors"), weights, {"vocab_size": str(vocab)})


if __name__ == "__main__":
    main()
