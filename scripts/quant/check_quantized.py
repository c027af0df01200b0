#!/usr/bin/env python3
"""Checks a folder written by `kr-serve quantize` against what the upstream loaders
read (the quantized-format specification's tables), independently of kr-serve's C++:
tensor names, dtypes and shapes of every module, the config keys, the safetensors
metadata and the copied tokenizer files.

  check_quantized.py --source SRC_DIR --folder OUT_DIR --format F --group-size G

Exit status 0 when the folder conforms; otherwise every problem is printed.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qformats as qf  # noqa: E402
from pack import load_folder_tensors  # noqa: E402

problems = []


def want(cond, msg):
    if not cond:
        problems.append(msg)


def is_block_linear(name, shape):
    return (len(shape) == 2 and name.endswith(".weight") and ".layers." in name and "norm" not in name
            and not name.endswith(".mlp.gate.weight"))


def expected_module_tensors(fmt, n, k, G, model_dtype):
    """suffix -> (dtype, shape) per the format tables (AutoAWQ WQLinear_GEMM, AutoGPTQ
    QuantLinear, compressed-tensors compression_param_info / initialize_qparams, MLX
    affine_quantize)."""
    if fmt == "awq":
        return {"qweight": ("I32", [k, n // 8]), "qzeros": ("I32", [k // G, n // 8]), "scales": ("F16", [k // G, n])}
    if fmt == "gptq":
        return {"qweight": ("I32", [k // 8, n]), "qzeros": ("I32", [k // G, n // 8]), "scales": ("F16", [k // G, n]),
                "g_idx": ("I32", [k])}
    if fmt == "w4a16":
        return {"weight_packed": ("I32", [n, -(-k // 8)]), "weight_scale": (model_dtype, [n, k // G]),
                "weight_shape": ("I64", [2])}
    if fmt == "fp8":
        return {"weight": ("F8_E4M3", [n, k]), "weight_scale": (model_dtype, [1])}
    if fmt == "fp8-dynamic":
        return {"weight": ("F8_E4M3", [n, k]), "weight_scale": (model_dtype, [n, 1])}
    bits = 4 if fmt == "mlx4" else 8
    return {"weight": ("U32", [n, k * bits // 32]), "scales": (model_dtype, [n, k // G]), "biases": (model_dtype, [n, k // G])}


def check_config(fmt, G, cfg, folder):
    qc = cfg.get("quantization_config")
    want(isinstance(qc, dict), "config.json: quantization_config missing")
    if not isinstance(qc, dict):
        return
    if fmt == "awq":  # AwqConfig.to_transformers_dict; vLLM AWQConfig.from_config
        want(qc.get("quant_method") == "awq", "awq: quant_method")
        want(qc.get("bits") == 4 and qc.get("group_size") == G, "awq: bits/group_size")
        want(qc.get("zero_point") is True and qc.get("version") == "gemm", "awq: zero_point/version")
        want("modules_to_not_convert" in qc, "awq: modules_to_not_convert key")
        want(cfg.get("torch_dtype") == "float16", "awq: torch_dtype float16")
    elif fmt == "gptq":  # AutoGPTQ BaseQuantizeConfig.to_dict
        want(qc.get("quant_method") == "gptq", "gptq: quant_method")
        for key, val in (("bits", 4), ("group_size", G), ("desc_act", False), ("sym", True), ("checkpoint_format", "gptq")):
            want(qc.get(key) == val, "gptq: %s should be %r, is %r" % (key, val, qc.get(key)))
        for key in ("damp_percent", "static_groups", "true_sequential", "model_name_or_path", "model_file_base_name"):
            want(key in qc, "gptq: key %s" % key)
        side = os.path.join(folder, "quantize_config.json")
        want(os.path.exists(side) and json.load(open(side)) == qc, "gptq: quantize_config.json equal to quantization_config")
        want(cfg.get("torch_dtype") == "float16", "gptq: torch_dtype float16")
    elif fmt in ("w4a16", "fp8", "fp8-dynamic"):  # ModelCompressor.update_config; QuantizationArgs
        want(qc.get("quant_method") == "compressed-tensors", "ct: quant_method")
        want(qc.get("format") == ("pack-quantized" if fmt == "w4a16" else "float-quantized"), "ct: format")
        want(qc.get("quantization_status") == "compressed", "ct: quantization_status")
        want("lm_head" in (qc.get("ignore") or []), "ct: ignore lm_head")
        groups = qc.get("config_groups") or {}
        want(len(groups) == 1, "ct: one config group")
        for g in groups.values():
            want(g.get("targets") == ["Linear"], "ct: targets Linear")
            w, a = g.get("weights") or {}, g.get("input_activations")
            if fmt == "w4a16":
                want((w.get("num_bits"), w.get("type"), w.get("symmetric"), w.get("strategy"), w.get("group_size")) ==
                     (4, "int", True, "group", G), "ct w4a16: weights args %r" % w)
                want(a is None, "ct w4a16: input_activations null")
            else:
                strat = "tensor" if fmt == "fp8" else "channel"
                want((w.get("num_bits"), w.get("type"), w.get("symmetric"), w.get("strategy"), w.get("dynamic")) ==
                     (8, "float", True, strat, False), "ct fp8: weights args %r" % w)
                a = a or {}
                astrat = "tensor" if fmt == "fp8" else "token"
                want((a.get("num_bits"), a.get("type"), a.get("strategy"), a.get("dynamic")) == (8, "float", astrat, True),
                     "ct fp8: input_activations %r" % a)
    else:  # mlx_lm quantize_model / save_config
        q = cfg.get("quantization")
        bits = 4 if fmt == "mlx4" else 8
        want(q == {"group_size": G, "bits": bits, "mode": "affine"}, "mlx: quantization is %r" % q)
        want(qc == q, "mlx: quantization_config equals quantization")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--folder", required=True)
    ap.add_argument("--format", required=True)
    ap.add_argument("--group-size", type=int, default=0)
    a = ap.parse_args()
    fmt, G = a.format, a.group_size
    src_cfg = json.load(open(os.path.join(a.source, "config.json")))
    cfg = json.load(open(os.path.join(a.folder, "config.json")))
    check_config(fmt, G, cfg, a.folder)
    for k, v in src_cfg.items():
        if k not in ("torch_dtype", "dtype"):
            want(cfg.get(k) == v, "config.json: key %s changed" % k)

    src = load_folder_tensors(a.source)
    out = load_folder_tensors(a.folder)
    model_dtype = next(d for n, (d, arr) in src.items() if is_block_linear(n, arr.shape))
    mlx = fmt.startswith("mlx")
    expected = {}
    for name, (dtype, arr) in src.items():
        n_k = arr.shape
        quantize = is_block_linear(name, n_k) or (mlx and len(n_k) == 2 and (name.endswith("embed_tokens.weight")
                                                                          or name == "lm_head.weight"))
        if quantize and mlx and n_k[1] % G != 0:
            quantize = False  # mlx-lm leaves such modules unquantized
        if quantize:
            prefix = name[:-len(".weight")]
            for suffix, spec in expected_module_tensors(fmt, n_k[0], n_k[1], G, model_dtype).items():
                expected[prefix + "." + suffix] = spec
        else:
            expected[name] = ("F16" if fmt in ("awq", "gptq") else dtype, list(n_k))
    for name, (dtype, shape) in expected.items():
        if name not in out:
            problems.append("missing tensor %s" % name)
            continue
        got_dtype, arr = out[name]
        want(got_dtype == dtype, "%s: dtype %s, expected %s" % (name, got_dtype, dtype))
        want(list(arr.shape) == shape, "%s: shape %s, expected %s" % (name, list(arr.shape), shape))
    for name in out:
        want(name in expected, "unexpected tensor %s" % name)
    # weight_shape holds [N, K]; GPTQ g_idx is k // G; symmetric GPTQ v1 zeros are 7 per nibble.
    for name, (dtype, arr) in out.items():
        if name.endswith(".weight_shape"):
            src_name = name[:-len("_shape")]
            want(list(arr) == list(src[src_name][1].shape), "%s: %s" % (name, list(arr)))
        if fmt == "gptq" and name.endswith(".g_idx"):
            want((arr == (qf.np.arange(arr.size) // G)).all(), "%s: not k // group_size" % name)
        if fmt == "gptq" and name.endswith(".qzeros"):
            want((arr.view(qf.np.uint32) == 0x77777777).all(), "%s: symmetric v1 zeros must be 0x77777777" % name)
    meta = qf.read_safetensors_metadata(os.path.join(a.folder, "model.safetensors"))
    want(meta.get("format") == ("mlx" if mlx else "pt"), "safetensors metadata format is %r" % meta.get("format"))
    for f in os.listdir(a.source):
        if f.startswith("tokenizer") or f == "generation_config.json":
            want(os.path.exists(os.path.join(a.folder, f)), "file %s not copied" % f)
    if problems:
        print("\n".join("FAIL " + p for p in problems))
        sys.exit(1)
    print("check_quantized: %s folder conforms (%d tensors)" % (fmt, len(out)))


if __name__ == "__main__":
    main()
