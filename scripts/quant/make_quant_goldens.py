#!/usr/bin/env python3
"""Float64 goldens of the quantized tiny models (tests/golden/quant, pack.py models),
made with Hugging Face transformers, independently of kr-serve's C++.

For each model folder: the weights are the packer's own dequantization of the
checkpoint (pack.py's dequant_folder, NumPy, written from the upstream unpackers)
plus the folder's unquantized tensors, loaded into the transformers model of the
folder's model_type (LlamaForCausalLM, Qwen2ForCausalLM, Gemma3ForCausalLM) in
float64 (eager attention); the logits of fixed prompts are
written to OUT/<name>/expected.json:
  cases[]: ids, last_logits (all V), pos_argmax and pos_margin (top-2 gap) at
           every position, and for short prompts 8 greedy tokens with margins.
Runs on the GPU machine (torch, transformers, numpy); no network, CPU is enough.

Usage: python3 scripts/quant/make_quant_goldens.py --fixtures tests/golden/quant --out DIR
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pack  # noqa: E402
import qformats as qf  # noqa: E402

PROMPT_LENS = [1, 6, 31, 90]
GREEDY_STEPS = 8


# model_type -> (config class, model class) of transformers.
FAMILIES = {"llama": ("LlamaConfig", "LlamaForCausalLM"), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
            "gemma3_text": ("Gemma3TextConfig", "Gemma3ForCausalLM")}


def build_model(d):
    import transformers
    c = json.load(open(os.path.join(d, "config.json")))
    config_cls, model_cls = (getattr(transformers, n) for n in FAMILIES[c.get("model_type", "llama")])
    if c.get("model_type", "llama") == "llama":
        keys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_theta", "max_position_embeddings",
                "tie_word_embeddings", "hidden_act", "attention_bias", "mlp_bias", "bos_token_id", "eos_token_id"]
        cfg = config_cls(**{k: c[k] for k in keys if k in c})
    else:  # the family's config as written, less what is not a model parameter
        skip = ("architectures", "model_type", "torch_dtype", "quantization", "quantization_config")
        cfg = config_cls(**{k: v for k, v in c.items() if k not in skip})
    # Eager attention (sdpa drops Gemma's soft-caps); a Gemma embedding scale of
    # sqrt(H) in float64, as kr-serve keeps it float32-exact for a quantized table.
    cfg._attn_implementation = "eager"
    model = model_cls(cfg).to(torch.float64).eval()
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    tensors = qf.read_safetensors(os.path.join(d, "model.safetensors"))
    deq = pack.dequant_folder(d)  # float32 [N, K] of every quantized module, named <module>.weight
    state = {}
    quant_prefixes = {n[:-len(".weight")] for n in deq}
    for name, (dtype, arr) in tensors.items():
        # A quantized Linear's bias (Qwen2's q/k/v) is stored unquantized: it stays.
        if (name.rsplit(".", 1)[0] in quant_prefixes and not name.endswith(".bias")) \
                or dtype not in ("BF16", "F16", "F32") or name.endswith("_scale"):
            continue
        state[name] = torch.from_numpy(qf.to_f32(dtype, arr).astype(np.float64))
    for name, w in deq.items():
        state[name] = torch.from_numpy(w.astype(np.float64))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not (cfg.tie_word_embeddings and m == "lm_head.weight")]
    if missing or unexpected:
        raise SystemExit("%s: missing %s unexpected %s" % (d, missing, unexpected))
    if cfg.tie_word_embeddings:
        model.tie_weights()
        assert torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)
    return model, cfg


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].to(torch.float64)


def reference(model, ids, greedy):
    out = logits_of(model, ids)
    s = torch.sort(out, dim=-1, descending=True).values
    rec = {"ids": ids, "last_logits": out[-1].tolist(), "pos_argmax": out.argmax(-1).tolist(),
           "pos_margin": (s[:, 0] - s[:, 1]).tolist()}
    if greedy:
        seq, nxt, margins = list(ids), [], []
        for _ in range(GREEDY_STEPS):
            lg = logits_of(model, seq)[-1]
            ss = torch.sort(lg, descending=True).values
            t = int(lg.argmax())
            nxt.append(t)
            margins.append(float(ss[0] - ss[1]))
            seq.append(t)
        rec["greedy_next_ids"] = nxt
        rec["greedy_margins"] = margins
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import transformers
    names = json.load(open(os.path.join(args.fixtures, "models.json")))
    failures = {}
    for name in names:
        d = os.path.join(args.fixtures, name)
        try:
            model, cfg = build_model(d)
            rng = np.random.default_rng(7)
            cases = []
            for n in PROMPT_LENS:
                ids = rng.integers(0, cfg.vocab_size, size=n).tolist()
                rec = reference(model, ids, greedy=n <= 31)
                rec["name"] = "len%d" % n
                cases.append(rec)
            sha = hashlib.sha256(open(os.path.join(d, "model.safetensors"), "rb").read()).hexdigest()
            o = os.path.join(args.out, name)
            os.makedirs(o, exist_ok=True)
            with open(os.path.join(o, "expected.json"), "w") as f:
                json.dump({"model": name, "model_safetensors_sha256": sha, "transformers": transformers.__version__,
                           "torch": torch.__version__, "numpy": np.__version__, "cases": cases}, f)
            margins = [m for c in cases for m in c["pos_margin"]]
            print("%-32s ok  %d positions, min margin %.4f, margins > 0.15: %d" %
                  (name, len(margins), min(margins), sum(m > 0.15 for m in margins)))
        except Exception as e:  # noqa: BLE001 - reported, the others go on
            failures[name] = repr(e)
            print("%-32s FAILED %r" % (name, e))
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump({"models": names, "failures": failures}, f, indent=2)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
