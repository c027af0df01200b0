#!/usr/bin/env python3
"""How often Hugging Face transformers itself flips the tiny fixture's golden argmax.

Runs models/tiny-llama3 with transformers in float32 and in bfloat16 on the golden
prompts of tests/golden/tiny-llama3.expected.json and counts positions whose argmax
differs from the golden one, by golden top-2 margin. It tells how much of the CUDA
backend's disagreement at small margins is bf16 arithmetic itself.

Usage: python3 scripts/hf_fixture_flips.py [--model DIR] [--golden FILE] [--device cuda]
"""
import argparse
import json

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/tiny-llama3")
    ap.add_argument("--golden", default="tests/golden/tiny-llama3.expected.json")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    golden = json.load(open(args.golden))
    for dtype in (torch.float32, torch.bfloat16):
        model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype).to(args.device).eval()
        counts = {0.05: [0, 0], 0.15: [0, 0]}
        for case in golden["logits"]:
            ids = torch.tensor([case["ids"]], device=args.device)
            with torch.no_grad():
                got = model(ids).logits[0].float().argmax(-1).tolist()
            for g, want, margin in zip(got, case["pos_argmax"], case["pos_margin"]):
                for thr, c in counts.items():
                    if margin > thr:
                        c[0] += 1
                        c[1] += g != want
        for thr, (n, wrong) in counts.items():
            print(f"transformers {str(dtype):15s} margin > {thr:.2f}: {wrong} of {n} positions differ")


if __name__ == "__main__":
    main()
