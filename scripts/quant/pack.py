#!/usr/bin/env python3
"""Quantized-checkpoint fixtures for kr-serve's loaders, written from the upstream
packers (see qformats.py for the functions followed), never from kr-serve's C++.

  pack.py fixtures --out DIR [--seed N]
      Draws integer/FP8 codes and scales directly, packs them into each format and
      writes one folder per variant: config.json (+ the side files some formats use),
      model.safetensors, dequant.safetensors (float32 [N, K] weight of every
      quantized module, named <module>.weight) and manifest.json (module shapes,
      which modules are quantized, KV-cache scales).
  pack.py fuzz-seeds --out fuzz/corpus/quant_loader
      Seed inputs for fuzz/fuzz_quant_loader.cc (one module of several fixtures).
  pack.py dequant --model DIR --out FILE
      Reads a quantized folder (e.g. one written by `kr-serve quantize`), unpacks the
      codes with the upstream unpackers and writes the float32 dequantized weights
      of its quantized modules, for the round-trip test.

Needs NumPy only (Debian: apt-get install python3-numpy).
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qformats as qf  # noqa: E402
from qformats import T  # noqa: E402

LLAMA_BASE = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 128,
    "intermediate_size": 384, "num_hidden_layers": 1, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 48, "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}

# ----------------------------------------------------------------------------
# drawing codes and scales
# ----------------------------------------------------------------------------


def draw_scales(rng, shape, dtype, negative=False):
    """Positive scales in [2^-9, 2^-4) (MLX may also be negative), exact in `dtype`.
    Returns (float32 values, T to store)."""
    v = np.exp2(rng.uniform(-9, -4, size=shape)).astype(np.float32)
    if negative:
        v = np.where(rng.random(shape) < 0.5, -v, v).astype(np.float32)
    return store_float(v, dtype)


def store_float(v, dtype):
    v = np.asarray(v, dtype=np.float32)
    if dtype == "BF16":
        bits = qf.f32_to_bf16_bits(v)
        return qf.bf16_bits_to_f32(bits), T("BF16", bits)
    if dtype == "F16":
        h = v.astype(np.float16)
        return h.astype(np.float32), T("F16", h)
    return v, T("F32", v)


def dense_weight(rng, n, k, dtype):
    _, t = store_float(rng.normal(0, 0.02, size=(n, k)), dtype)
    return t


def fp8_codes(rng, shape):
    """Random e4m3fn bytes, NaN (S.1111.111) excluded."""
    c = rng.integers(0, 256, size=shape, dtype=np.uint8)
    nan = (c & 0x7F) == 0x7F
    c[nan] = c[nan] - 1
    return c


def act_order_g_idx(rng, K, G):
    """GPTQ desc_act: columns processed in a permuted order `perm`, groups formed in that
    order, g_idx = [i // G][invperm] (auto_gptq GPTQ.fasterquant)."""
    perm = rng.permutation(K)
    invperm = np.argsort(perm)
    return (np.arange(K) // G)[invperm].astype(np.int32)


# ----------------------------------------------------------------------------
# one folder
# ----------------------------------------------------------------------------


class Folder:
    def __init__(self, name, config_extra, dtype="BF16"):
        self.name = name
        self.config = dict(LLAMA_BASE)
        self.config["torch_dtype"] = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[dtype]
        self.config.update(config_extra)
        self.tensors = {}
        self.dequant = {}
        self.modules = []
        self.kv_scales = {}
        self.side_files = {}
        self.metadata = None

    def quantized(self, prefix, n, k, w_nk, tensors):
        self.tensors.update({prefix + "." + s: t for s, t in tensors.items()})
        self.dequant[prefix + ".weight"] = T("F32", w_nk)
        self.modules.append({"name": prefix, "N": n, "K": k, "quantized": True})

    def dense(self, prefix, n, k, t):
        self.tensors[prefix + ".weight"] = t
        self.modules.append({"name": prefix, "N": n, "K": k, "quantized": False})

    def write(self, root):
        d = os.path.join(root, self.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
        for fname, content in self.side_files.items():
            with open(os.path.join(d, fname), "w") as f:
                json.dump(content, f, indent=2)
        qf.write_safetensors(os.path.join(d, "model.safetensors"), self.tensors, self.metadata)
        qf.write_safetensors(os.path.join(d, "dequant.safetensors"), self.dequant)
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump({"modules": self.modules, "kv_scales": self.kv_scales}, f, indent=2)


Q = "model.layers.0.self_attn.q_proj"
DOWN = "model.layers.0.mlp.down_proj"
O = "model.layers.0.self_attn.o_proj"


# ----------------------------------------------------------------------------
# AWQ GEMM
# ----------------------------------------------------------------------------


def awq_module(rng, f, prefix, n, k, G):
    q = rng.integers(0, 16, size=(k, n))
    z = rng.integers(0, 16, size=(k // G, n))
    s, st = draw_scales(rng, (k // G, n), "F16")  # AutoAWQ: scales.clone().half()
    f.quantized(prefix, n, k, qf.awq_dequant(q, z, s, G),
                {"qweight": T("I32", qf.awq_pack(q)), "qzeros": T("I32", qf.awq_pack(z)), "scales": st})


def awq_folder(rng, G, side_file=False):
    qc = {"quant_method": "awq", "zero_point": True, "group_size": G, "bits": 4, "version": "gemm",
          "modules_to_not_convert": ["o_proj"]}
    f = Folder("awq_g%d%s" % (G, "_quant_config_json" if side_file else ""), {} if side_file else {"quantization_config": qc},
               dtype="F16")
    if side_file:  # old AutoAWQ repos: settings only in quant_config.json, AutoAWQ's own names
        f.side_files["quant_config.json"] = {"zero_point": True, "q_group_size": G, "w_bit": 4, "version": "GEMM"}
    awq_module(rng, f, Q, 64, 2 * G, G)
    awq_module(rng, f, DOWN, 32, 3 * G, G)
    f.dense(O, 64, 128, dense_weight(rng, 64, 128, "F16"))
    return f


# ----------------------------------------------------------------------------
# GPTQ
# ----------------------------------------------------------------------------


def gptq_module(rng, f, prefix, n, k, bits, G, sym, version, desc_act):
    Gk = k if G == -1 else G
    ngroups = k // Gk
    maxq = (1 << bits) - 1
    q = rng.integers(0, maxq + 1, size=(k, n))
    if sym:
        z = np.full((ngroups, n), (maxq + 1) // 2)  # Quantizer.find_params: zero = (maxq + 1) / 2
    elif version == 1:
        z = rng.integers(1, maxq + 1, size=(ngroups, n))  # v1 cannot store zero 0 (stored as -1)
    else:
        z = rng.integers(0, maxq + 1, size=(ngroups, n))
    s, st = draw_scales(rng, (ngroups, n), "F16")
    g_idx = act_order_g_idx(rng, k, Gk) if desc_act else (np.arange(k) // Gk).astype(np.int32)
    stored_z = z - 1 if version == 1 else z  # AutoGPTQ pack: zeros -= 1; v2 stores the zero
    f.quantized(prefix, n, k, qf.gptq_dequant(q, z, s, g_idx),
                {"qweight": T("I32", qf.gptq_pack_rows(q, bits)), "qzeros": T("I32", qf.gptq_pack_cols(stored_z, bits)),
                 "scales": st, "g_idx": T("I32", g_idx)})


def gptq_folder(rng, bits, G, sym, version, desc_act, fmt_key="checkpoint_format", dynamic=None):
    name = "gptq_%db_g%s_%s_v%d%s%s" % (bits, "ch" if G == -1 else G, "sym" if sym else "asym", version,
                                       "_descact" if desc_act else "", "_dynamic" if dynamic else "")
    qc = {"quant_method": "gptq", "bits": bits, "group_size": G, "desc_act": desc_act, "sym": sym,
          "damp_percent": 0.01, "static_groups": False, "true_sequential": True}
    if version == 2 or fmt_key == "format":
        qc[fmt_key] = "gptq_v2" if version == 2 else "gptq"
    elif version == 1 and G != -1:
        qc["checkpoint_format"] = "gptq"
    # (version 1 with G == -1 leaves checkpoint_format out: absent means v1)
    if dynamic:
        qc["dynamic"] = dynamic
    f = Folder(name, {"quantization_config": qc}, dtype="F16")
    Gk = 128 if G == -1 else G
    gptq_module(rng, f, Q, 64, 2 * Gk if G != -1 else 96, bits, G, sym, version, desc_act)
    down_bits, down_G = bits, G
    if dynamic:  # "+:.*down_proj": 8 bits, group 32
        down_bits, down_G = 8, 32
    gptq_module(rng, f, DOWN, 32, 3 * (128 if down_G == -1 else down_G), down_bits, down_G, sym, version, desc_act)
    f.dense(O, 64, 128, dense_weight(rng, 64, 128, "F16"))
    return f


# ----------------------------------------------------------------------------
# compressed-tensors pack-quantized (W4A16 / W8A16)
# ----------------------------------------------------------------------------


def ct_int_module(rng, f, prefix, n, k, bits, G, sym, actorder):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    ngroups = 1 if G == -1 else k // G
    q = rng.integers(lo, hi, size=(n, k))
    s, st = draw_scales(rng, (n, ngroups), "BF16")  # ct: scales in the weight's dtype
    if actorder:
        g_idx = act_order_g_idx(rng, k, G)
    else:
        g_idx = np.arange(k) // (k if G == -1 else G)
    zp = None if sym else rng.integers(lo, hi, size=(n, ngroups))
    tensors = {"weight_packed": T("I32", qf.ct_pack_to_int32(q, bits)), "weight_scale": st,
               "weight_shape": T("I64", np.array([n, k]))}
    if not sym:
        tensors["weight_zero_point"] = T("I32", qf.ct_pack_to_int32(zp, bits, packed_dim=0))
    if actorder:
        tensors["weight_g_idx"] = T("I32", g_idx)
    f.quantized(prefix, n, k, qf.ct_dequant(q, zp, s, g_idx), tensors)


def ct_int_folder(rng, bits, G, sym, actorder=False):
    name = "ct_w%da16_g%s_%s%s" % (bits, "ch" if G == -1 else G, "sym" if sym else "asym", "_actorder" if actorder else "")
    weights = {"num_bits": bits, "type": "int", "symmetric": sym, "strategy": "channel" if G == -1 else "group",
               "group_size": None if G == -1 else G, "actorder": "group" if actorder else None, "dynamic": False,
               "block_structure": None, "observer": "minmax", "observer_kwargs": {}}
    qc = {"quant_method": "compressed-tensors", "format": "pack-quantized", "quantization_status": "compressed",
          "ignore": ["lm_head", "re:.*o_proj$"], "kv_cache_scheme": None, "sparsity_config": {}, "transform_config": {},
          "version": "0.12.2", "global_compression_ratio": None,
          "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights, "input_activations": None,
                                        "output_activations": None, "format": "pack-quantized"}}}
    f = Folder(name, {"quantization_config": qc})
    if G == -1:
        ct_int_module(rng, f, Q, 64, 100, bits, G, sym, False)  # K not a multiple of 8: padded words
        ct_int_module(rng, f, DOWN, 30, 96, bits, G, sym, False)  # N not a multiple of 8: padded zero points
    else:
        ct_int_module(rng, f, Q, 64, 2 * G, bits, G, sym, actorder)
        ct_int_module(rng, f, DOWN, 30, 3 * G, bits, G, sym, actorder)
    f.dense(O, 64, 128, dense_weight(rng, 64, 128, "BF16"))
    return f


# ----------------------------------------------------------------------------
# FP8: compressed-tensors float-quantized, fbgemm_fp8, ModelOpt
# ----------------------------------------------------------------------------


def ct_fp8_folder(rng, strategy, static_input, kv=False, old_format=False):
    name = "ct_fp8_%s_%s%s%s" % (strategy, "static" if static_input else "dynamic", "_kv" if kv else "",
                                 "_naive" if old_format else "")
    block = [32, 64] if strategy == "block" else None
    weights = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": strategy, "dynamic": False,
               "group_size": None, "block_structure": block, "actorder": None, "observer": "minmax"}
    if static_input:
        inputs = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "tensor", "dynamic": False}
    elif strategy == "block":
        inputs = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "group", "group_size": 128,
                  "dynamic": True}
    else:
        inputs = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "token", "dynamic": True}
    fmt = "naive-quantized" if old_format else "float-quantized"
    qc = {"quant_method": "compressed-tensors", "format": fmt,
          "quantization_status": "frozen" if old_format else "compressed", "ignore": ["lm_head", O],
          "kv_cache_scheme": ({"num_bits": 8, "type": "float", "symmetric": True, "strategy": "tensor", "dynamic": False}
                              if kv else None),
          "sparsity_config": {}, "version": "0.12.2",
          "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights, "input_activations": inputs}}}
    f = Folder(name, {"quantization_config": qc})
    for prefix, n, k in ((Q, 100, 200), (DOWN, 64, 384)):
        c = fp8_codes(rng, (n, k))
        if strategy == "tensor":
            s, st = draw_scales(rng, (1,), "BF16")
            w = qf.fp8_dequant(c, s, "tensor")
        elif strategy == "channel":
            s, st = draw_scales(rng, (n, 1), "BF16")
            w = qf.fp8_dequant(c, s, "channel")
        else:
            s, st = draw_scales(rng, (-(-n // block[0]), -(-k // block[1])), "BF16")
            w = qf.fp8_dequant(c, s, "block", block)
        t = {"weight": T("F8_E4M3", c), "weight_scale": st}
        if static_input:
            _, t["input_scale"] = draw_scales(rng, (1,), "BF16")
        f.quantized(prefix, n, k, w, t)
    f.dense(O, 64, 128, dense_weight(rng, 64, 128, "BF16"))
    if kv:  # compressed-tensors registers k_scale / v_scale on the attention module
        ks, kst = draw_scales(rng, (1,), "BF16")
        vs, vst = draw_scales(rng, (1,), "BF16")
        f.tensors["model.layers.0.self_attn.k_scale"] = kst
        f.tensors["model.layers.0.self_attn.v_scale"] = vst
        f.kv_scales["0"] = [float(ks[0]), float(vs[0])]
    return f


def fbgemm_folder(rng):
    qc = {"quant_method": "fbgemm_fp8", "activation_scale_ub": 1200.0, "modules_to_not_convert": ["lm_head", O]}
    f = Folder("fbgemm_fp8", {"quantization_config": qc})
    for prefix, n, k in ((Q, 64, 128), (DOWN, 48, 384)):
        c = fp8_codes(rng, (n, k))
        s, st = draw_scales(rng, (n, 1), "F32")  # FbgemmFp8Linear: weight_scale float32 [N, 1]
        f.quantized(prefix, n, k, qf.fp8_dequant(c, s, "channel"), {"weight": T("F8_E4M3", c), "weight_scale": st})
    f.dense(O, 64, 128, dense_weight(rng, 64, 128, "BF16"))
    return f


def modelopt_folder(rng, legacy):
    name = "modelopt_fp8_%s" % ("hf_quant_config" if legacy else "config")
    f = Folder(name, {} if legacy else {"quantization_config": {
        "quant_method": "modelopt", "quant_algo": "FP8", "kv_cache_scheme": {"num_bits": 8, "type": "float",
                                                                            "dynamic": False},
        "ignore": ["lm_head", "*o_proj"]}})
    if legacy:
        f.side_files["hf_quant_config.json"] = {
            "producer": {"name": "modelopt", "version": "0.15.1"},
            "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head", "*o_proj"]}}
    scalar_shape = (1,) if legacy else ()  # 0-d and [1] are both seen; vLLM accepts either
    for prefix, n, k in ((Q, 64, 128), (DOWN, 48, 384)):
        c = fp8_codes(rng, (n, k))
        s, st = draw_scales(rng, scalar_shape, "F32")
        _, ist = draw_scales(rng, scalar_shape, "F32")
        f.quantized(prefix, n, k, qf.fp8_dequant(c, s.reshape(1), "tensor"),
                    {"weight": T("F8_E4M3", c), "weight_scale": st, "input_scale": ist})
    f.dense(O, 64, 128, dense_weight(rng, 64, 128, "BF16"))
    ks, kst = draw_scales(rng, scalar_shape, "F32")
    vs, vst = draw_scales(rng, scalar_shape, "F32")
    f.tensors["model.layers.0.self_attn.k_proj.k_scale"] = kst
    f.tensors["model.layers.0.self_attn.v_proj.v_scale"] = vst
    f.kv_scales["0"] = [float(ks.reshape(-1)[0]), float(vs.reshape(-1)[0])]
    return f


# ----------------------------------------------------------------------------
# MLX affine
# ----------------------------------------------------------------------------


def mlx_module(rng, f, prefix, n, k, bits, G, dtype):
    q = rng.integers(0, 1 << bits, size=(n, k))
    s, st = draw_scales(rng, (n, k // G), dtype, negative=True)  # MLX scales may be negative
    b, bt = store_float(rng.uniform(-0.1, 0.1, size=(n, k // G)), dtype)
    f.quantized(prefix, n, k, qf.mlx_dequant(q, s, b, G),
                {"weight": T("U32", qf.mlx_pack(q, bits)), "scales": st, "biases": bt})


def mlx_folder(rng, bits, G, tied, keys, dtype="BF16"):
    """keys: 'both' (quantization + quantization_config, mlx-lm >= 2024-09), 'old'
    (quantization only), 'new' (quantization_config only)."""
    name = "mlx%d_g%d_%s_%s" % (bits, G, "tied" if tied else "untied", keys)
    q = {"group_size": G, "bits": bits}
    if keys != "old":
        q["mode"] = "affine"
    # A per-module override as mixed recipes write it: the down projection at 8 bits, group 32.
    override = {"group_size": 32, "bits": 8, "mode": "affine"}
    q[DOWN] = override
    extra = {"tie_word_embeddings": tied}
    if keys in ("both", "old"):
        extra["quantization"] = q
    if keys in ("both", "new"):
        extra["quantization_config"] = q
    f = Folder(name, extra, dtype=dtype)
    f.metadata = {"format": "mlx"}
    V, H = LLAMA_BASE["vocab_size"], LLAMA_BASE["hidden_size"]
    mlx_module(rng, f, "model.embed_tokens", V, H, bits, G, dtype)
    if not tied:
        mlx_module(rng, f, "lm_head", V, H, bits, G, dtype)
    mlx_module(rng, f, Q, 64, 2 * max(G, 64), bits, G, dtype)
    mlx_module(rng, f, DOWN, 32, 96, 8, 32, dtype)
    f.dense(O, 64, 128, dense_weight(rng, 64, 128, dtype))  # no .scales: not quantized
    return f


def all_folders(seed):
    rng = np.random.default_rng(seed)
    out = [awq_folder(rng, 32), awq_folder(rng, 64), awq_folder(rng, 128), awq_folder(rng, 64, side_file=True)]
    for bits in (4, 8):
        out.append(gptq_folder(rng, bits, 32, True, 1, False))
        out.append(gptq_folder(rng, bits, 64, False, 2, False))
        out.append(gptq_folder(rng, bits, 32, False, 1, False))
        out.append(gptq_folder(rng, bits, 32, True, 2, True))
        out.append(gptq_folder(rng, bits, 64, False, 1, True, fmt_key="format"))
        out.append(gptq_folder(rng, bits, -1, True, 1, False))
    out.append(gptq_folder(rng, 4, 64, True, 2, False, dynamic={
        "-:.*lm_head": {}, "+:.*down_proj": {"bits": 8, "group_size": 32}}))
    for bits in (4, 8):
        for sym in (True, False):
            out.append(ct_int_folder(rng, bits, 32, sym))
            out.append(ct_int_folder(rng, bits, -1, sym))
        out.append(ct_int_folder(rng, bits, 64, True, actorder=True))
    out.append(ct_int_folder(rng, 4, 128, False, actorder=True))
    out.append(ct_fp8_folder(rng, "tensor", True, kv=True))
    out.append(ct_fp8_folder(rng, "tensor", True, old_format=True))
    out.append(ct_fp8_folder(rng, "channel", False))
    out.append(ct_fp8_folder(rng, "block", False))
    out.append(fbgemm_folder(rng))
    out.append(modelopt_folder(rng, legacy=False))
    out.append(modelopt_folder(rng, legacy=True))
    for bits in (4, 8):
        for G in (32, 64, 128):
            out.append(mlx_folder(rng, bits, G, tied=(G == 64), keys="both"))
    out.append(mlx_folder(rng, 4, 64, tied=False, keys="old", dtype="F16"))
    out.append(mlx_folder(rng, 8, 32, tied=True, keys="new"))
    return out


# ----------------------------------------------------------------------------
# dequant: a quantized folder back to float32, with the upstream unpackers
# ----------------------------------------------------------------------------


def load_folder_tensors(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    tensors = {}
    for fn in files:
        tensors.update(qf.read_safetensors(os.path.join(d, fn)))
    return tensors


def dequant_folder(d):
    config = json.load(open(os.path.join(d, "config.json")))
    tensors = load_folder_tensors(d)
    qc = config.get("quantization_config") or {}
    method = qc.get("quant_method")
    out = {}
    if method is None and ("quantization" in config or "group_size" in qc):
        q = config.get("quantization") or qc
        for name in tensors:
            if not name.endswith(".scales"):
                continue
            p = name[:-len(".scales")]
            o = q.get(p) if isinstance(q.get(p), dict) else q
            bits, G = o["bits"], o["group_size"]
            codes = qf.mlx_unpack(tensors[p + ".weight"][1], bits)
            s = qf.to_f32(*tensors[p + ".scales"])
            b = qf.to_f32(*tensors[p + ".biases"])
            out[p + ".weight"] = qf.mlx_dequant(codes, s, b, G)
        return out
    if method == "awq":
        G = qc["group_size"]
        for name in tensors:
            if name.endswith(".qweight"):
                p = name[:-len(".qweight")]
                q = qf.awq_unpack(tensors[p + ".qweight"][1])
                z = qf.awq_unpack(tensors[p + ".qzeros"][1])
                out[p + ".weight"] = qf.awq_dequant(q, z, qf.to_f32(*tensors[p + ".scales"]), G)
        return out
    if method == "gptq":
        bits = qc["bits"]
        v1 = qc.get("checkpoint_format", qc.get("format", "gptq")) == "gptq"
        for name in tensors:
            if name.endswith(".qweight"):
                p = name[:-len(".qweight")]
                q = qf.gptq_unpack_rows(tensors[p + ".qweight"][1], bits)
                z = qf.gptq_unpack_cols(tensors[p + ".qzeros"][1], bits).astype(np.int64)
                if v1:  # AutoGPTQ forward: zeros + 1 (v1 stores zero - 1)
                    z = z + 1
                out[p + ".weight"] = qf.gptq_dequant(q, z, qf.to_f32(*tensors[p + ".scales"]), tensors[p + ".g_idx"][1])
        return out
    if method == "compressed-tensors":
        for name in tensors:
            p = name.rsplit(".", 1)[0]
            if name.endswith(".weight_packed"):
                w_args = next(iter(qc["config_groups"].values()))["weights"]
                bits = w_args["num_bits"]
                n, k = [int(x) for x in tensors[p + ".weight_shape"][1]]
                q = qf.ct_unpack_from_int32(tensors[name][1], bits, (n, k))
                s = qf.to_f32(*tensors[p + ".weight_scale"])
                ngroups = s.shape[1]
                if p + ".weight_g_idx" in tensors:
                    g = tensors[p + ".weight_g_idx"][1]
                else:
                    g = np.arange(k) // (k // ngroups)
                zp = None
                if p + ".weight_zero_point" in tensors:
                    zp = qf.ct_unpack_from_int32(tensors[p + ".weight_zero_point"][1], bits, (n, ngroups), packed_dim=0)
                out[p + ".weight"] = qf.ct_dequant(q, zp, s, g)
            elif name.endswith(".weight") and tensors[name][0] == "F8_E4M3":
                s = qf.to_f32(*tensors[p + ".weight_scale"])
                n, k = tensors[name][1].shape
                if s.size == 1:
                    out[name] = qf.fp8_dequant(tensors[name][1], s, "tensor")
                elif s.shape == (n, 1):
                    out[name] = qf.fp8_dequant(tensors[name][1], s, "channel")
                else:
                    w_args = next(iter(qc["config_groups"].values()))["weights"]
                    out[name] = qf.fp8_dequant(tensors[name][1], s, "block", w_args["block_structure"])
        return out
    raise SystemExit("pack.py dequant: unsupported folder (quant_method %r)" % method)


def fuzz_seeds(out, seed):
    """Seed inputs of fuzz/fuzz_quant_loader.cc: [u16 N][u16 K][u8 flags][u16 L][config.json][safetensors]
    for the first quantized module (and KV scales) of a few fixture folders."""
    import struct
    os.makedirs(out, exist_ok=True)
    picks = {"awq_g32", "gptq_4b_g32_sym_v2_descact", "gptq_8b_g64_asym_v2", "ct_w4a16_g32_asym", "ct_w8a16_gch_sym",
             "ct_fp8_block_dynamic", "ct_fp8_tensor_static_kv", "fbgemm_fp8", "modelopt_fp8_config",
             "mlx4_g32_untied_both", "mlx8_g32_tied_new"}
    n = 0
    for f in all_folders(seed):
        if f.name not in picks:
            continue
        mod = f.modules[0]
        keep = {k: t for k, t in f.tensors.items() if k.startswith(mod["name"] + ".") or k.endswith("_scale")
                and "self_attn" in k and not k.startswith("model.layers.0.self_attn.q_proj")}
        path = os.path.join(out, "seed_st.tmp")
        qf.write_safetensors(path, keep, f.metadata)
        st = open(path, "rb").read()
        os.remove(path)
        cfg = json.dumps(f.config, separators=(",", ":")).encode()
        flags = 1 if "embed" in mod["name"] else 0
        blob = struct.pack("<HHBH", mod["N"] - 1, mod["K"] - 1, flags, len(cfg)) + cfg + st
        with open(os.path.join(out, f.name), "wb") as fh:
            fh.write(blob)
        n += 1
    print("pack.py: wrote %d fuzz seeds to %s" % (n, out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("fixtures")
    a.add_argument("--out", required=True)
    a.add_argument("--seed", type=int, default=13)
    b = sub.add_parser("dequant")
    b.add_argument("--model", required=True)
    b.add_argument("--out", required=True)
    c = sub.add_parser("fuzz-seeds")
    c.add_argument("--out", required=True)
    c.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    if args.cmd == "fixtures":
        names = []
        for f in all_folders(args.seed):
            f.write(args.out)
            names.append(f.name)
        with open(os.path.join(args.out, "fixtures.json"), "w") as fh:
            json.dump(names, fh, indent=2)
        print("pack.py: wrote %d fixture folders to %s" % (len(names), args.out))
    elif args.cmd == "fuzz-seeds":
        fuzz_seeds(args.out, args.seed)
    else:
        out = dequant_folder(args.model)
        qf.write_safetensors(args.out, {k: T("F32", v) for k, v in out.items()})
        print("pack.py: dequantized %d modules of %s" % (len(out), args.model))


if __name__ == "__main__":
    main()
