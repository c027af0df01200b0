#!/usr/bin/env python3
"""Writes fuzz/corpus/chat_template/real_* seeds from the repo's template fixtures.

Each seed is `<template source> NUL <context JSON>` (the format of fuzz_chat_template.cc): the
real Llama 3 (models/tiny-llama3), Qwen3 and Gemma 3 (tests/golden) templates, each with the
contexts of the golden rendering cases in tests/golden/chat-templates.expected.json (messages,
tools, enable_thinking, add_generation_prompt). Run from anywhere; rerun when a fixture changes.
"""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz/corpus/chat_template"
TEMPLATES = {
    "llama3": "models/tiny-llama3/tokenizer_config.json",
    "qwen3": "tests/golden/qwen3-tokenizer/tokenizer_config.json",
    "gemma3": "tests/golden/gemma3-template/tokenizer_config.json",
}


def main():
    golden = json.loads((ROOT / "tests/golden/chat-templates.expected.json").read_text())["templates"]
    # One context per golden case name (the add_generation_prompt=True variant), from all families.
    contexts = {}
    for cases in golden.values():
        for case in cases:
            if case["add_generation_prompt"] and case["name"] not in contexts:
                contexts[case["name"]] = {"messages": case["messages"], **case["kwargs"],
                                          "add_generation_prompt": True}
    for old in OUT.glob("real_*"):
        old.unlink()
    for family, path in TEMPLATES.items():
        source = json.loads((ROOT / path).read_text())["chat_template"]
        assert isinstance(source, str), path
        for name, ctx in contexts.items():
            seed = source.encode() + b"\0" + json.dumps(ctx, ensure_ascii=False).encode()
            (OUT / f"real_{family}_{name}").write_bytes(seed)
    print(f"wrote {len(TEMPLATES) * len(contexts)} seeds to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
