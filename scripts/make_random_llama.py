#!/usr/bin/env python3
"""Random-weight Llama-3.2-3B-shaped model for checking the CUDA backend against
Hugging Face transformers (run on a machine with a GPU, torch and transformers).

  make_random_llama.py make DIR [--tokens N]   writes DIR (config + bf16 safetensors),
                                               DIR/ids.txt, DIR/hf_logits.npy (bf16 run) and
                                               DIR/hf_logits_f32.npy (float32 run), [N, V] f32
  make_random_llama.py compare DIR OURS.f32    compares kr-cuda-bench --dump-logits output and HF's
                                               bf16 logits with HF float32 ones; exit 1 on failure
"""
import json
import sys

import numpy as np


def make(out_dir, tokens):
    import torch
    from transformers import ModelConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg_rope = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192}
    cfg = ModelConfig(
        hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
        num_key_value_heads=8, head_dim=128, vocab_size=128256, max_position_embeddings=131072,
        rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling=dict(cfg_rope),
        tie_word_embeddings=True, bos_token_id=128000, eos_token_id=[128001, 128008, 128009],
        torch_dtype="bfloat16", initializer_range=0.02)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:  # non-trivial norm weights so that they are checked too
                p.uniform_(0.5, 1.5)
    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    # Newer transformers write rope settings as "rope_parameters"; keep the classic
    # keys that released Llama checkpoints carry.
    with open(f"{out_dir}/config.json") as f:
        saved = json.load(f)
    print("saved config:", json.dumps(saved))
    saved["rope_theta"] = 500000.0
    saved["rope_scaling"] = cfg_rope
    with open(f"{out_dir}/config.json", "w") as f:
        json.dump(saved, f, indent=2)
    ids = torch.randint(0, cfg.vocab_size, (tokens,), generator=torch.Generator().manual_seed(1))
    ids[0] = 128000
    with open(f"{out_dir}/ids.txt", "w") as f:
        f.write(" ".join(str(int(i)) for i in ids) + "\n")
    del model
    # References from the saved folder itself (what kr-serve loads): bf16 and float32.
    for dtype, name in ((torch.bfloat16, "hf_logits.npy"), (torch.float32, "hf_logits_f32.npy")):
        m = LlamaForCausalLM.from_pretrained(out_dir, dtype=dtype).cuda().eval()
        with torch.no_grad():
            logits = m(ids[None].cuda()).logits[0].float().cpu().numpy()
        np.save(f"{out_dir}/{name}", logits)
        del m
    print(f"wrote {out_dir}: {tokens} ids, logits {logits.shape}")


def compare(out_dir, ours_path, margin_tol=0.25):
    """Errors of ours and of HF's own bf16 run, both against HF in float32 on the
    same weights. Passes when ours is no worse than 1.5x HF-bf16's error and the
    argmax agrees wherever the float32 top-2 margin exceeds margin_tol."""
    ref = np.load(f"{out_dir}/hf_logits_f32.npy")
    hf_bf16 = np.load(f"{out_dir}/hf_logits.npy")
    ours = np.fromfile(ours_path, dtype=np.float32).reshape(ref.shape)
    top2 = np.sort(ref, axis=1)[:, -2:]
    sure = (top2[:, 1] - top2[:, 0]) > margin_tol
    result = {"positions": int(ref.shape[0]), "margin_tol": margin_tol, "positions_over_margin": int(sure.sum()),
              "ref_abs_max": float(np.abs(ref).max())}
    for name, x in (("ours", ours), ("hf_bf16", hf_bf16)):
        d = np.abs(x - ref)
        agree = x.argmax(1) == ref.argmax(1)
        result[name] = {"max_abs_err": float(d.max()), "mean_abs_err": float(d.mean()),
                        "rel_err": float(d.max() / np.abs(ref).max()), "argmax_equal_all": int(agree.sum()),
                        "argmax_equal_over_margin": int(agree[sure].sum())}
    print(json.dumps(result, indent=2))
    o, h = result["ours"], result["hf_bf16"]
    ok = (o["argmax_equal_over_margin"] == result["positions_over_margin"]
          and o["max_abs_err"] <= 1.5 * h["max_abs_err"] and o["mean_abs_err"] <= 1.5 * h["mean_abs_err"])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        n = int(sys.argv[4]) if len(sys.argv) >= 5 and sys.argv[3] == "--tokens" else 128
        make(sys.argv[2], n)
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        print(__doc__)
        sys.exit(2)
