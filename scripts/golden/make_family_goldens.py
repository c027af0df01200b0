#!/usr/bin/env python3
"""Reference data for the model-families work, made with Hugging Face transformers / tokenizers.

Runs on the GPU machine (torch, transformers 5.x, tokenizers); needs no network. Writes, under --out:
  families/<name>/            a tiny random model folder per architecture, written by transformers itself
                              (config.json as transformers writes it, plus config.v4.json: the same model in
                              the transformers-4 key form that published checkpoints use) and expected.json:
                              float64 logits of fixed prompts (top logits, log-sum-exp, argmax and margin per
                              position, greedy continuation with margins).
  tokenizers.json             ids / decoded text of the strings in tests/golden/tiny-llama3.expected.json
                              plus edge cases, for each tokenizer.json given with --tokenizer NAME=PATH
                              (and Metaspace / tekken-style variants built from them).
  chat.json                   apply_chat_template renderings for each --template NAME=PATH.
  rope.json                   rotary inverse frequencies and attention factors computed by transformers'
                              rotary-embedding modules for a set of configs (every llama3 band, linear,
                              yarn, defaults when keys are absent), and each config class's defaults.
Every section runs on its own; a failure is recorded under "errors" in summary.json and the rest goes on.

The float64 references run as transformers runs a loaded bf16 checkpoint: the rotary inv_freq buffers keep
their float32 values (from_pretrained converts parameters, not buffers, while Module.to(torch.bfloat16)
would round them), and attention is eager (sdpa drops Gemma 2's attn_logit_softcapping). expected.json
records this under "reference".

Usage: python3 make_family_goldens.py --out DIR --strings tests/golden/tiny-llama3.expected.json \
         --tokenizer llama2=PATH --tokenizer gemma3=PATH ... --template qwen2_5=PATH ...
       python3 make_family_goldens.py --out DIR --only-families   (families/ only)
"""
import argparse
import copy
import json
import math
import os
import sys
import traceback

import torch

ERRORS = {}


def section(name):
    def wrap(fn):
        def run(*a, **k):
            try:
                return fn(*a, **k)
            except Exception:  # noqa: BLE001 - recorded, the other sections go on
                ERRORS[name] = traceback.format_exc()
                print(f"[{name}] FAILED\n{ERRORS[name]}", file=sys.stderr)
                return None
        return run
    return wrap


def bf16_round(x):
    return float(torch.tensor(x, dtype=torch.float64).to(torch.bfloat16).to(torch.float64))


# ---------------------------------------------------------------- tiny models

V = 1024  # vocabulary of the tiny models (ids only; no tokenizer needed)


def randomize(model, seed, norm_around_one=True, embed_std=1.0):
    """Weights with a spread large enough for clear argmax margins. Norm weights around 1
    (x*w norms) or around 0 (Gemma's x*(1+w) norms); biases small but non-zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                if "norm" in name:
                    base = 1.0 if norm_around_one else 0.0
                    p.copy_(base + 0.2 * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))
                else:  # biases
                    p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))
            else:
                fan_in = p.shape[-1]
                std = embed_std if "embed" in name else 1.5 / math.sqrt(fan_in)
                p.copy_(std * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))


def prompts(seed, window):
    g = torch.Generator().manual_seed(seed)
    lens = [1, 7, 40, 3 * window + 5, 130]
    return [(f"len{n}", torch.randint(0, V, (n,), generator=g).tolist()) for n in lens]


def reference(model, ids, greedy_steps):
    """float64 forward; the same measurements as tests/golden/tiny-llama3.expected.json's logits."""
    with torch.no_grad():
        x = torch.tensor([ids])
        out = model(input_ids=x, use_cache=False).logits[0].to(torch.float64)  # [T, V]
        last = out[-1]
        top = torch.topk(last, 40)
        s = torch.sort(out, dim=-1, descending=True).values
        rec = {
            "ids": ids,
            "last_logits": last.tolist(),
            "last_top_ids": top.indices.tolist(),
            "last_top_logits": top.values.tolist(),
            "last_logsumexp": float(torch.logsumexp(last, 0)),
            "pos_argmax": out.argmax(-1).tolist(),
            "pos_margin": (s[:, 0] - s[:, 1]).tolist(),
        }
        seq = list(ids)
        nxt, margins = [], []
        for _ in range(greedy_steps):
            lg = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1].to(torch.float64)
            ss = torch.sort(lg, descending=True).values
            t = int(lg.argmax())
            nxt.append(t)
            margins.append(float(ss[0] - ss[1]))
            seq.append(t)
        rec["greedy_next_ids"] = nxt
        rec["greedy_margins"] = margins
        return rec


def save_family(out_dir, name, model_bf16, model_f64, v4_config, window, seed, notes, extra_files=None):
    d = os.path.join(out_dir, "families", name)
    os.makedirs(d, exist_ok=True)
    model_bf16.save_pretrained(d, safe_serialization=True)
    with open(os.path.join(d, "config.v4.json"), "w") as f:
        json.dump(v4_config, f, indent=2, sort_keys=True)
    from safetensors import safe_open
    with safe_open(os.path.join(d, "model.safetensors"), "pt") as f:
        keys = sorted(f.keys())
        dtypes = sorted({str(f.get_tensor(k).dtype) for k in keys})
    cases = []
    for pname, ids in prompts(seed, window):
        rec = reference(model_f64, ids, 16 if len(ids) <= 64 else 0)
        rec["name"] = pname
        cases.append(rec)
    exp = {"family": name, "transformers": __import__("transformers").__version__,
           "torch": torch.__version__, "reference": REFERENCE, "notes": notes, "tensor_names": keys,
           "tensor_dtypes": dtypes,
           "saved_config": json.load(open(os.path.join(d, "config.json"))), "logits": cases}
    if extra_files:
        exp.update(extra_files)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(exp, f)
    print(f"[families] {name}: {len(keys)} tensors {dtypes}, saved")


REFERENCE = {"rope_inv_freq": "float32", "attn_implementation": "eager"}


def keep_rope_fp32(src, dst):
    """Copies the rotary inv_freq buffers of `src` (built in float32, values exact in any wider dtype) into
    `dst`: transformers keeps them float32 when it loads a bf16 checkpoint, but Module.to(torch.bfloat16),
    used here to make the bf16 twin, rounds them."""
    src_buffers = dict(src.named_buffers())
    copied = 0
    for name, buf in dst.named_buffers():
        if "inv_freq" in name and name in src_buffers:
            buf.copy_(src_buffers[name].to(buf.dtype))
            copied += 1
    assert copied > 0, "no rotary inv_freq buffer found"


def use_eager(m):
    """Eager attention: sdpa silently drops attn_logit_softcapping (Gemma 2); eager applies it."""
    if hasattr(m, "set_attn_implementation"):
        m.set_attn_implementation("eager")
    else:
        m.config._attn_implementation = "eager"


def build_pair(cls, cfg, seed, norm_around_one=True, after=None, embed_std=1.0):
    """The same random weights in a bf16 model (to save) and a float64 model (the reference),
    the float64 one loaded from the bf16 values so both see identical weights."""
    torch.manual_seed(seed)
    m = cls(cfg).to(torch.float64)
    randomize(m, seed, norm_around_one, embed_std)
    m_bf16 = copy.deepcopy(m).to(torch.bfloat16)
    m64 = copy.deepcopy(m_bf16).to(torch.float64)
    keep_rope_fp32(m, m64)
    use_eager(m64)
    if after:
        after(m64)
    m_bf16.eval()
    m64.eval()
    return m_bf16, m64


@section("families.qwen2")
def fam_qwen2(out):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    v4 = dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=V, hidden_size=64,
              intermediate_size=160, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=4096, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False,
              use_sliding_window=False, sliding_window=16, max_window_layers=2, hidden_act="silu",
              bos_token_id=1, eos_token_id=2, torch_dtype="bfloat16", attention_dropout=0.0)
    cfg = Qwen2Config(**{k: v for k, v in v4.items() if k not in ("architectures", "model_type", "torch_dtype")})
    a, b = build_pair(Qwen2ForCausalLM, cfg, 11)
    save_family(out, "qwen2", a, b, v4, 16, 11, "q/k/v biases; use_sliding_window false, so sliding_window=16 must NOT apply")


@section("families.qwen3")
def fam_qwen3(out):
    from transformers import Qwen3Config, Qwen3ForCausalLM
    v4 = dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", vocab_size=V, hidden_size=64,
              intermediate_size=160, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              head_dim=32, max_position_embeddings=4096, rms_norm_eps=1e-6, rope_theta=1000000.0,
              tie_word_embeddings=True, use_sliding_window=False, sliding_window=None, hidden_act="silu",
              attention_bias=False, bos_token_id=1, eos_token_id=2, torch_dtype="bfloat16")
    cfg = Qwen3Config(**{k: v for k, v in v4.items() if k not in ("architectures", "model_type", "torch_dtype")})
    a, b = build_pair(Qwen3ForCausalLM, cfg, 12)
    save_family(out, "qwen3", a, b, v4, 16, 12, "per-head q_norm/k_norm before RoPE; head_dim 32 != hidden/heads; tied embeddings")


@section("families.mistral")
def fam_mistral(out):
    from transformers import MistralConfig, MistralForCausalLM
    v4 = dict(architectures=["MistralForCausalLM"], model_type="mistral", vocab_size=V, hidden_size=64,
              intermediate_size=160, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              head_dim=16, max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=1000000.0,
              tie_word_embeddings=False, sliding_window=16, hidden_act="silu", bos_token_id=1, eos_token_id=2,
              torch_dtype="bfloat16")
    cfg = MistralConfig(**{k: v for k, v in v4.items() if k not in ("architectures", "model_type", "torch_dtype")})
    a, b = build_pair(MistralForCausalLM, cfg, 13)
    save_family(out, "mistral", a, b, v4, 16, 13, "sliding_window 16 on every layer")


def gemma_scale_patch(hidden):
    """transformers multiplies embeddings by sqrt(hidden) cast to the weight dtype; the reference runs in
    float64, so give it the bf16-rounded scale that a bf16 checkpoint is run with."""
    s = bf16_round(math.sqrt(hidden))

    def after(m):
        for mod in m.modules():
            if hasattr(mod, "embed_scale"):
                if isinstance(mod.embed_scale, torch.Tensor):
                    mod.embed_scale.fill_(s)
                else:
                    mod.embed_scale = s
        for mod in m.modules():  # older layouts keep the normalizer on the model
            if hasattr(mod, "normalizer") and isinstance(getattr(mod, "normalizer"), torch.Tensor):
                mod.normalizer.fill_(s)
    return after, s


@section("families.gemma2")
def fam_gemma2(out):
    from transformers import Gemma2Config, Gemma2ForCausalLM
    H = 64
    v4 = dict(architectures=["Gemma2ForCausalLM"], model_type="gemma2", vocab_size=V, hidden_size=H,
              intermediate_size=160, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
              head_dim=16, max_position_embeddings=4096, rms_norm_eps=1e-6, rope_theta=10000.0,
              query_pre_attn_scalar=24, sliding_window=16, final_logit_softcapping=30.0,
              attn_logit_softcapping=5.0, hidden_activation="gelu_pytorch_tanh", hidden_act="gelu_pytorch_tanh",
              tie_word_embeddings=True, bos_token_id=2, eos_token_id=1, pad_token_id=0, torch_dtype="bfloat16",
              cache_implementation="hybrid")
    cfg = Gemma2Config(**{k: v for k, v in v4.items() if k not in ("architectures", "model_type", "torch_dtype")})
    after, s = gemma_scale_patch(H)
    # The final cap is Gemma 2's published 30 and the attention cap a small 5, so both bite without
    # saturating (tied embeddings of std 0.25; logits saturated at a cap tie and leave no argmax).
    a, b = build_pair(Gemma2ForCausalLM, cfg, 14, norm_around_one=False, after=after, embed_std=0.25)
    save_family(out, "gemma2", a, b, v4, 16, 14,
                f"soft-caps: attention 5 (small, so it bites), final 30; query_pre_attn_scalar 24; layer types "
                f"{getattr(cfg, 'layer_types', None)}; embed scale bf16(sqrt(64))={s}")


def gemma3_text_v4(H):
    return dict(architectures=["Gemma3ForCausalLM"], model_type="gemma3_text", vocab_size=V, hidden_size=H,
                intermediate_size=160, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                head_dim=32, max_position_embeddings=8192, rms_norm_eps=1e-6, rope_theta=1000000.0,
                rope_local_base_freq=10000.0, rope_scaling={"rope_type": "linear", "factor": 8.0},
                query_pre_attn_scalar=32, sliding_window=16,
                layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                final_logit_softcapping=None, attn_logit_softcapping=None,
                hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True, bos_token_id=2, eos_token_id=1,
                pad_token_id=0, torch_dtype="bfloat16")


@section("families.gemma3")
def fam_gemma3(out):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig
    H = 80  # sqrt(80) is not a bf16 value: the embedding scale must be rounded as transformers rounds it
    v4 = gemma3_text_v4(H)
    cfg = Gemma3TextConfig(**{k: v for k, v in v4.items() if k not in ("architectures", "model_type", "torch_dtype")})
    after, s = gemma_scale_patch(H)
    a, b = build_pair(Gemma3ForCausalLM, cfg, 15, norm_around_one=False, after=after)
    save_family(out, "gemma3", a, b, v4, 16, 15,
                f"sliding/full layers, local RoPE base 10000, global 1e6 with linear x8; query_pre_attn_scalar 32; "
                f"embed scale bf16(sqrt(80))={s}")
    return a, b, v4


@section("families.gemma3_vlm")
def fam_gemma3_vlm(out, text_pair):
    """Gemma3ForConditionalGeneration: the text model of families/gemma3 inside a VLM folder with a tiny
    vision tower. Logits of text-only prompts must equal the text model's."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration
    from safetensors.torch import save_file
    a_bf16, b64, tv4 = text_pair
    tcfg = {k: v for k, v in tv4.items() if k not in ("architectures", "torch_dtype")}
    vcfg = dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, image_size=28, patch_size=14, num_channels=3)
    full = dict(architectures=["Gemma3ForConditionalGeneration"], model_type="gemma3", text_config=tcfg,
                vision_config=vcfg, mm_tokens_per_image=4, boi_token_index=1000, eoi_token_index=1001,
                image_token_index=1002, torch_dtype="bfloat16", initializer_range=0.02)
    cfg = Gemma3Config(**{k: v for k, v in full.items() if k not in ("architectures", "torch_dtype")})
    torch.manual_seed(16)
    vlm32 = Gemma3ForConditionalGeneration(cfg)
    rope32 = copy.deepcopy(vlm32)  # float32 inv_freq, before the cast below rounds it
    vlm = vlm32.to(torch.bfloat16)
    # Copy the text weights in: VLM key ...language_model.[model.]X <- text key model.X (or X).
    tsd = a_bf16.state_dict()
    vsd = vlm.state_dict()
    copied = 0
    for k in vsd:
        if "language_model." not in k:
            continue
        tail = k.split("language_model.", 1)[1]
        if tail.startswith("model."):
            tail = tail[len("model."):]
        src = "model." + tail if "model." + tail in tsd else tail
        if src in tsd and tsd[src].shape == vsd[k].shape:
            vsd[k].copy_(tsd[src])
            copied += 1
    vlm.load_state_dict(vsd)
    d = os.path.join(out, "families", "gemma3_vlm")
    os.makedirs(d, exist_ok=True)
    vlm.save_pretrained(d, safe_serialization=True)
    # The published (transformers 4) tensor names: language_model.model.*, vision_tower.*, multi_modal_projector.*
    v4_tensors = {}
    for k, t in vlm.state_dict().items():
        nk = k
        if nk.startswith("model.language_model."):
            nk = "language_model.model." + nk[len("model.language_model."):]
        elif nk.startswith("model.vision_tower."):
            nk = "vision_tower." + nk[len("model.vision_tower."):]
        elif nk.startswith("model.multi_modal_projector."):
            nk = "multi_modal_projector." + nk[len("model.multi_modal_projector."):]
        elif nk == "lm_head.weight":
            continue  # tied
        v4_tensors[nk] = t.contiguous()
    os.makedirs(os.path.join(d, "v4"), exist_ok=True)
    save_file(v4_tensors, os.path.join(d, "v4", "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d, "v4", "config.json"), "w") as f:
        json.dump(full, f, indent=2, sort_keys=True)
    vlm64 = copy.deepcopy(vlm).to(torch.float64).eval()
    keep_rope_fp32(rope32, vlm64)
    use_eager(vlm64)
    after, _ = gemma_scale_patch(tv4["hidden_size"])
    after(vlm64)
    diffs = []
    cases = []
    for pname, ids in prompts(15, 16)[:3]:
        with torch.no_grad():
            l1 = vlm64(input_ids=torch.tensor([ids])).logits[0].to(torch.float64)
            l2 = b64(input_ids=torch.tensor([ids])).logits[0].to(torch.float64)
        diffs.append(float((l1 - l2).abs().max()))
        cases.append({"name": pname, "ids": ids, "last_logits": l1[-1].tolist()})
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({"reference": REFERENCE, "copied_text_tensors": copied, "max_abs_diff_vs_text_model": diffs,
                   "tensor_names": sorted(vlm.state_dict().keys()), "v4_tensor_names": sorted(v4_tensors.keys()),
                   "saved_config": json.load(open(os.path.join(d, "config.json"))), "logits": cases}, f)
    print(f"[families] gemma3_vlm: copied {copied}, diffs {diffs}")


# ---------------------------------------------------------------- tokenizers

EXTRA_STRINGS = [
    " leading", "  two leading", "trailing ", "trailing two  ", " both ", "a  b   c    d", "\n", "\n\n",
    " \n", "\n ", "line1\nline2\n", "tab\tsep", "\r\n", "x\r\ny", "  \n  \n  ",
    "▁already▁has▁metaspace", "▁", "▁▁", " ▁ ", "hello▁world",
    "byte fallback: \x00\x01\x07\x1b", "rare: \U0001F9EC\U0001FAE0 \u2603 \u00a0nbsp", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀 𐍈",
    "CJK: 漢字かなカナ한글 ㄅㄆㄇ", "emoji run 🤖🤖🤖 and ZWJ 🧑‍💻", "ZALGO z̷̢̛a̶l̸g̵o̴",
    "<s>", "</s>", "<unk>", "<s> text </s>", "<bos>", "<eos>", "<start_of_turn>user\nhi<end_of_turn>\n",
    "<pad>", "<|im_start|>user\nhi<|im_end|>", "<|endoftext|>", "[INST] hi [/INST]", "<0x41>", "<0x0A>",
    "literal <start_of_turn> in text", "numbers 0123456789 ١٢٣ ⅷ", "mixed CaseWithCAPS and camelCase",
    "http://a.b/c?d=e", "    def indented():\n        pass\n", "a" * 300, " " * 40, "\t" * 10,
    "ends with newline\n", "Ünïcödé ñ Ñ ß ẞ", "ǅ ǈ ǋ title case letters", "ｆｕｌｌｗｉｄｔｈ",
]


def tokenizer_cases(tok, strings):
    cases = []
    for s in strings:
        enc = tok.encode(s, add_special_tokens=False)
        enc2 = tok.encode(s, add_special_tokens=True)
        cases.append({"text": s, "ids": enc.ids, "ids_with_special": enc2.ids,
                      "decoded": tok.decode(enc.ids, skip_special_tokens=False),
                      "decoded_skip_special": tok.decode(enc.ids, skip_special_tokens=True)})
    return cases


def variants(name, path):
    """The tokenizer itself, plus variants that exercise other pipeline pieces on the same vocabulary:
    Metaspace pre-tokenizers (as newer Llama-2/Mistral conversions use) built from an SP tokenizer, and a
    tekken-style pre-tokenizer (Mistral Nemo's byte-level Split regex) built from a byte-level one."""
    from tokenizers import Tokenizer
    j = json.load(open(path))
    out = [(name, j)]
    if j["model"].get("byte_fallback"):
        for scheme, split in (("first", False), ("always", True)):
            v = copy.deepcopy(j)
            v["normalizer"] = None
            v["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme,
                                  "split": split}
            v["decoder"] = {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
            out.append((f"{name}_metaspace_{scheme}", v))
    elif j.get("pre_tokenizer") and "ByteLevel" in json.dumps(j["pre_tokenizer"]):
        v = copy.deepcopy(j)
        v["normalizer"] = None
        v["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex":
                "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
                "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"
                "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
        out.append((f"{name}_tekken_style", v))
    res = []
    for n, js in out:
        res.append((n, js, Tokenizer.from_str(json.dumps(js))))
    return res


@section("tokenizers")
def tokenizers_refs(out, specs, strings_file):
    base = [c["text"] for c in json.load(open(strings_file))["tokenizer"]]
    strings = base + EXTRA_STRINGS
    result = {"tokenizers_version": __import__("tokenizers").__version__, "strings": len(strings), "cases": {}}
    vdir = os.path.join(out, "tokenizer-variants")
    os.makedirs(vdir, exist_ok=True)
    for spec in specs:
        name, path = spec.split("=", 1)
        for vname, js, tok in variants(name, path):
            result["cases"][vname] = tokenizer_cases(tok, strings)
            if vname != name:  # the variants are small edits of the npm file: keep only the edited keys
                with open(os.path.join(vdir, vname + ".json"), "w") as f:
                    json.dump({"base": name, "normalizer": js["normalizer"], "pre_tokenizer": js["pre_tokenizer"],
                               "decoder": js["decoder"]}, f, indent=1)
            print(f"[tokenizers] {vname}: {len(strings)} strings")
    with open(os.path.join(out, "tokenizers.json"), "w") as f:
        json.dump(result, f, ensure_ascii=False)


# ---------------------------------------------------------------- chat templates

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                          "unit": {"type": "string", "enum": ["c", "f"]}},
                         "required": ["city"]}}},
         {"type": "function", "function": {"name": "add", "description": "Add two numbers",
          "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                         "required": ["a", "b"]}}}]


def chat_cases():
    u = {"role": "user", "content": "What is the weather in Paris?"}
    sysm = {"role": "system", "content": "You are terse."}
    a = {"role": "assistant", "content": "Sunny."}
    call = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call12345", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}
    call2 = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call12345", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"id": "call67890", "type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}}]}
    res = {"role": "tool", "tool_call_id": "call12345", "content": "{\"temp\": 21}"}
    res2 = {"role": "tool", "tool_call_id": "call67890", "content": "3"}
    think = {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nSunny.", "reasoning_content": "hmm"}
    return [
        ("user", [u], {}, True), ("user_no_gen", [u], {}, False), ("system_user", [sysm, u], {}, True),
        ("multi_turn", [u, a, {"role": "user", "content": "And tomorrow?"}], {}, True),
        ("system_multi", [sysm, u, a, {"role": "user", "content": "And tomorrow?"}], {}, True),
        ("tools", [u], {"tools": TOOLS}, True), ("system_tools", [sysm, u], {"tools": TOOLS}, True),
        ("tool_call_result", [u, call, res], {"tools": TOOLS}, True),
        ("two_calls", [u, call2, res, res2], {"tools": TOOLS}, True),
        ("tool_then_answer", [u, call, res, {"role": "assistant", "content": "21 C."},
                              {"role": "user", "content": "Thanks"}], {"tools": TOOLS}, True),
        ("thinking_on", [u], {"enable_thinking": True}, True), ("thinking_off", [u], {"enable_thinking": False}, True),
        ("history_with_think", [u, think, {"role": "user", "content": "More?"}], {}, True),
        ("spaces_and_newlines", [{"role": "user", "content": "  padded  \n\n text \n"}], {}, True),
        ("unicode", [{"role": "user", "content": "Grüße 👋 你好"}], {}, True),
        ("special_text_in_content", [{"role": "user", "content": "<|im_start|>[INST]<start_of_turn></s>"}], {}, True),
    ]


@section("chat")
def chat_refs(out, specs):
    from transformers import PreTrainedTokenizerFast
    result = {}
    for spec in specs:
        name, tpl_path, tok_path = spec.split("=", 2)[0], *spec.split("=", 2)[1].split(",", 1)
        cfg = json.load(open(tpl_path)) if tpl_path.endswith(".json") else {"chat_template": open(tpl_path).read()}
        tok = PreTrainedTokenizerFast(tokenizer_file=tok_path, chat_template=cfg["chat_template"],
                                      bos_token=cfg.get("bos_token_str", cfg.get("bos_token")),
                                      eos_token=cfg.get("eos_token_str", cfg.get("eos_token")))
        cases = []
        for cname, msgs, kwargs, gen in chat_cases():
            rec = {"name": cname, "messages": msgs, "kwargs": kwargs, "add_generation_prompt": gen}
            try:
                rec["text"] = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen, **kwargs)
                rec["ids"] = tok.encode(rec["text"], add_special_tokens=False)
            except Exception as e:  # noqa: BLE001 - a faithful renderer fails here too
                rec["error"] = f"{type(e).__name__}: {e}"
            cases.append(rec)
        result[name] = {"bos_token": tok.bos_token, "eos_token": tok.eos_token, "cases": cases}
        print(f"[chat] {name}: {sum('text' in c for c in cases)} rendered, {sum('error' in c for c in cases)} errors")
    with open(os.path.join(out, "chat.json"), "w") as f:
        json.dump(result, f, ensure_ascii=False)


# ---------------------------------------------------------------- rope

ROPE_CASES = [
    ("llama_absent_keys", "LlamaConfig", {"hidden_size": 256, "num_attention_heads": 2}),
    ("llama_theta_500k", "LlamaConfig", {"hidden_size": 256, "num_attention_heads": 2, "rope_theta": 500000.0}),
    ("llama3_3.2", "LlamaConfig", {"hidden_size": 3072, "num_attention_heads": 24, "head_dim": 128,
                                    "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 32.0,
                                    "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 8192}}),
    ("llama3_3.1", "LlamaConfig", {"hidden_size": 4096, "num_attention_heads": 32, "rope_theta": 500000.0,
                                    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}),
    ("llama3_small_head", "LlamaConfig", {"hidden_size": 64, "num_attention_heads": 4, "rope_theta": 500000.0,
                                           "rope_scaling": {"rope_type": "llama3", "factor": 32.0,
                                           "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                           "original_max_position_embeddings": 8192}}),
    ("linear_8", "LlamaConfig", {"hidden_size": 256, "num_attention_heads": 1, "rope_theta": 1000000.0,
                                  "rope_scaling": {"rope_type": "linear", "factor": 8.0}}),
    ("yarn_qwen", "Qwen2Config", {"hidden_size": 512, "num_attention_heads": 4, "rope_theta": 1000000.0,
                                   "max_position_embeddings": 131072,
                                   "rope_scaling": {"rope_type": "yarn", "factor": 4.0,
                                                    "original_max_position_embeddings": 32768}}),
    ("dynamic", "LlamaConfig", {"hidden_size": 256, "num_attention_heads": 2,
                                "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}),
]


@section("rope")
def rope_refs(out):
    import transformers
    res = {"cases": [], "defaults": {}}
    for name, cls_name, kw in ROPE_CASES:
        cls = getattr(transformers, cls_name)
        cfg = cls(**kw)
        mod_name = {"LlamaConfig": "llama", "Qwen2Config": "qwen2"}[cls_name]
        rot_cls = getattr(__import__(f"transformers.models.{mod_name}.modeling_{mod_name}", fromlist=["x"]),
                          f"{cls_name.replace('Config', '')}RotaryEmbedding")
        rot = rot_cls(config=cfg)
        inv = rot.inv_freq.to(torch.float32)
        res["cases"].append({"name": name, "config_class": cls_name, "kwargs": kw,
                             "config_rope": getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None),
                             "inv_freq": inv.tolist(), "inv_freq_dtype": str(rot.inv_freq.dtype),
                             "attention_scaling": float(getattr(rot, "attention_scaling", 1.0))})
    for cls_name in ("LlamaConfig", "MistralConfig", "Qwen2Config", "Qwen3Config", "Gemma2Config",
                     "Gemma3TextConfig"):
        cfg = getattr(transformers, cls_name)()
        d = cfg.to_dict()
        keep = {k: d.get(k) for k in ("rope_theta", "rope_parameters", "rope_scaling", "rope_local_base_freq",
                                      "rms_norm_eps", "sliding_window", "use_sliding_window", "max_window_layers",
                                      "tie_word_embeddings", "hidden_act", "hidden_activation", "head_dim",
                                      "query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping",
                                      "attention_bias", "layer_types", "max_position_embeddings")}
        res["defaults"][cls_name] = keep
    with open(os.path.join(out, "rope.json"), "w") as f:
        json.dump(res, f, indent=1, default=str)
    print(f"[rope] {len(res['cases'])} cases")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--strings", help="required unless --only-families / --only-gemma2")
    ap.add_argument("--tokenizer", action="append", default=[])
    ap.add_argument("--template", action="append", default=[], help="NAME=TEMPLATE(.json|.jinja),TOKENIZER_JSON")
    ap.add_argument("--only-gemma2", action="store_true", help="regenerate families/gemma2 only")
    ap.add_argument("--only-families", action="store_true", help="regenerate families/ only")
    a = ap.parse_args()
    if not (a.only_gemma2 or a.only_families or a.strings):
        ap.error("--strings is required")
    os.makedirs(a.out, exist_ok=True)
    torch.set_grad_enabled(False)
    if not (a.only_gemma2 or a.only_families):
        rope_refs(a.out)
    if a.only_gemma2:
        fam_gemma2(a.out)
        return
    fam_qwen2(a.out)
    fam_qwen3(a.out)
    fam_mistral(a.out)
    fam_gemma2(a.out)
    g3 = fam_gemma3(a.out)
    if g3:
        fam_gemma3_vlm(a.out, g3)
    if a.only_families:
        print("errors:", list(ERRORS))
        return
    tokenizers_refs(a.out, a.tokenizer, a.strings)
    chat_refs(a.out, a.template)
    import transformers
    import tokenizers
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                   "torch": torch.__version__, "errors": ERRORS}, f, indent=1)
    print("errors:", list(ERRORS))


if __name__ == "__main__":
    main()
