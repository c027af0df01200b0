#!/usr/bin/env python3
"""Random-weight Llama-3.2-3B-shaped model for checking the CUDA backend against
Hugging Face transformers (run on a machine with a GPU, torch and transformers).

  make_random_llama.py make DIR [--tokens N]   writes DIR (config + bf16 safetensors),
                                               DIR/ids.txt and DIR/hf_logits.npy [N, V] f32
  make_random_llama.py compare DIR OURS.f32    compares kr-cuda-bench --dump-logits output
                                               with DIR/hf_logits.npy; exit 1 on failure
"""
import json
import sys

import numpy as np


def make(out_dir, tokens):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
        num_key_value_heads=8, head_dim=128, vocab_size=128256, max_position_embeddings=131072,
        rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
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
    ids = torch.randint(0, cfg.vocab_size, (tokens,), generator=torch.Generator().manual_seed(1))
    ids[0] = 128000
    with open(f"{out_dir}/ids.txt", "w") as f:
        f.write(" ".join(str(int(i)) for i in ids) + "\n")
    with torch.no_grad():
        logits = model(ids[None].cuda()).logits[0].float().cpu().numpy()
    np.save(f"{out_dir}/hf_logits.npy", logits)
    print(f"wrote {out_dir}: {tokens} ids, logits {logits.shape}")


def compare(out_dir, ours_path, margin_tol=0.25):
    ref = np.load(f"{out_dir}/hf_logits.npy")
    ours = np.fromfile(ours_path, dtype=np.float32).reshape(ref.shape)
    diff = np.abs(ours - ref)
    max_abs = float(diff.max())
    rel = max_abs / float(np.abs(ref).max())
    top2 = np.sort(ref, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    sure = margin > margin_tol
    agree = (ours.argmax(1) == ref.argmax(1))
    result = {
        "positions": int(ref.shape[0]), "max_abs_err": max_abs, "rel_err": rel,
        "mean_abs_err": float(diff.mean()), "ref_abs_max": float(np.abs(ref).max()),
        "argmax_equal_all": int(agree.sum()), "margin_tol": margin_tol,
        "positions_over_margin": int(sure.sum()), "argmax_equal_over_margin": int(agree[sure].sum()),
    }
    print(json.dumps(result, indent=2))
    ok = bool(agree[sure].all()) and rel < 0.05
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
