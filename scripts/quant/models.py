"""Whole tiny Llama models in every quantized checkpoint format, and a Qwen2 (AWQ)
and a Gemma 3 (MLX 4-bit) one, for the model-level tests (pack.py models): the
same packers as the loader fixtures (qformats.py, written from the upstream
sources), applied to every Linear of a 2-layer model (plus the embedding and
lm_head for MLX), with weights drawn so that the logits
have clear argmax margins (weights of standard deviation about 1.5 / sqrt(fan_in),
unit-variance embeddings, norm weights around 1).

Each folder holds config.json and model.safetensors as the format's producer
writes them; `dense_twin` turns one into an unquantized folder whose F32 weights
are the upstream-style dequantization (pack.py dequant), for the loader-wiring test.
"""

import json
import os

import numpy as np

import qformats as qf
from qformats import T

V, H, I, L, HQ, HKV, D = 128, 128, 256, 2, 4, 2, 32

BASE = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H, "intermediate_size": I,
    "num_hidden_layers": L, "num_attention_heads": HQ, "num_key_value_heads": HKV, "head_dim": D, "vocab_size": V,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 512, "tie_word_embeddings": False,
    "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "bos_token_id": 1, "eos_token_id": 2,
    "torch_dtype": "bfloat16",
}


def linears():
    """(prefix, N, K) of every Linear inside the decoder layers."""
    out = []
    for l in range(L):
        p = "model.layers.%d." % l
        out += [(p + "self_attn.q_proj", HQ * D, H), (p + "self_attn.k_proj", HKV * D, H),
                (p + "self_attn.v_proj", HKV * D, H), (p + "self_attn.o_proj", H, HQ * D),
                (p + "mlp.gate_proj", I, H), (p + "mlp.up_proj", I, H), (p + "mlp.down_proj", H, I)]
    return out


def shared_perm(rng, perms, prefix, k):
    """The act-order permutation of a module: one per layer input, as GPTQ's
    argsort(diag(H)) is the same for modules that read the same activations
    (q/k/v; gate/up), so their g_idx agree and they fuse."""
    key = (prefix.rsplit(".", 1)[0].replace("self_attn", "attn_in") if prefix.endswith(("q_proj", "k_proj", "v_proj"))
           else prefix.rsplit(".", 1)[0] + ".mlp_in" if prefix.endswith(("gate_proj", "up_proj")) else prefix)
    if key not in perms:
        perms[key] = rng.permutation(k)
    return perms[key]


def store(v, dtype):
    v = np.asarray(v, dtype=np.float32)
    if dtype == "BF16":
        return T("BF16", qf.f32_to_bf16_bits(v))
    if dtype == "F16":
        return T("F16", v.astype(np.float16))
    return T("F32", v)


def exact(v, dtype):
    """v rounded to the float type the file stores it in, as float32."""
    t = store(v, dtype)
    return qf.to_f32(t.dtype, t.array)


def group_scales(rng, n, groups, k, code_std, dtype, negative=False):
    """Scales giving weights of std ~1.5/sqrt(k), varied by 2^±0.5 per group; exact in dtype."""
    s = 1.5 / (code_std * np.sqrt(k)) * np.exp2(rng.uniform(-0.5, 0.5, size=(n, groups)))
    if negative:
        s = np.where(rng.random((n, groups)) < 0.5, -s, s)
    return exact(s, dtype)


# Other families of the same shape (the module names of linears() are shared):
# Qwen2 adds q/k/v biases; Gemma 3 adds q/k norms, norms after attention and the
# MLP, (1 + w) norms, a scaled embedding, GeGLU and sliding-window layers
# (transformers' Qwen2Config / Gemma3TextConfig keys, as hub checkpoints write them;
# DROP: a Llama key the family's config does not have).
DROP = object()
FAMILIES = {
    "llama": {},
    "qwen2": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "rope_theta": 1000000.0,
              "use_sliding_window": False, "sliding_window": None, "max_window_layers": L,
              "attention_bias": DROP, "mlp_bias": DROP, "head_dim": DROP},
    "gemma3": {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_act": DROP,
               "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": D, "sliding_window": 8,
               "layer_types": ["sliding_attention", "full_attention"][:L], "rope_theta": 1000000.0,
               "rope_local_base_freq": 10000.0, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
               "attn_logit_softcapping": None, "final_logit_softcapping": None, "rms_norm_eps": 1e-6,
               "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": DROP},
}


class Model:
    def __init__(self, name, dense_dtype="BF16", family="llama"):
        self.name = name
        self.dense_dtype = dense_dtype
        self.family = family
        self.config = dict(BASE)
        for k, v in FAMILIES[family].items():
            if v is DROP:
                self.config.pop(k, None)
            else:
                self.config[k] = v
        self.config["torch_dtype"] = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[dense_dtype]
        self.tensors = {}
        self.side_files = {}
        self.metadata = None

    def dense(self, rng, name, shape, std):
        self.tensors[name] = store(rng.normal(0, std, size=shape), self.dense_dtype)

    def common(self, rng, embed=True, lm_head=True):
        """Norms (and the dense embedding / lm_head unless the format quantizes them)."""
        if embed:
            self.dense(rng, "model.embed_tokens.weight", (V, H), 1.0)
        if lm_head and not self.config["tie_word_embeddings"]:
            self.dense(rng, "lm_head.weight", (V, H), 1.5 / np.sqrt(H))
        # Norm weights around the identity: 1 for x̂ · w, 0 for Gemma's x̂ · (1 + w).
        one = 0.0 if self.family == "gemma3" else 1.0
        self.tensors["model.norm.weight"] = store(one + 0.2 * rng.normal(size=H), self.dense_dtype)
        for l in range(L):
            for n in ("input_layernorm", "post_attention_layernorm"):
                self.tensors["model.layers.%d.%s.weight" % (l, n)] = store(one + 0.2 * rng.normal(size=H),
                                                                            self.dense_dtype)
        p = "model.layers.%d.self_attn.%s"
        for l in range(L):
            if self.family == "qwen2":  # unquantized biases of the quantized q/k/v projections
                for n, rows in (("q_proj", HQ * D), ("k_proj", HKV * D), ("v_proj", HKV * D)):
                    self.tensors[p % (l, n) + ".bias"] = store(0.5 * rng.normal(size=rows), self.dense_dtype)
            if self.family == "gemma3":
                for n in ("pre_feedforward_layernorm", "post_feedforward_layernorm"):
                    self.tensors["model.layers.%d.%s.weight" % (l, n)] = store(0.2 * rng.normal(size=H),
                                                                                self.dense_dtype)
                for n in ("q_norm", "k_norm"):
                    self.tensors[p % (l, n) + ".weight"] = store(0.2 * rng.normal(size=D), self.dense_dtype)

    def write(self, root):
        d = os.path.join(root, self.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
        for fname, content in self.side_files.items():
            with open(os.path.join(d, fname), "w") as f:
                json.dump(content, f, indent=2)
        qf.write_safetensors(os.path.join(d, "model.safetensors"), self.tensors, self.metadata)


# ----------------------------------------------------------------------------
# per-format modules
# ----------------------------------------------------------------------------


def awq_model(rng, G, family="llama"):
    m = Model("awq_g%d" % G + ("" if family == "llama" else "_" + family), dense_dtype="F16", family=family)
    m.config["quantization_config"] = {"quant_method": "awq", "zero_point": True, "group_size": G, "bits": 4,
                                       "version": "gemm", "modules_to_not_convert": None}
    m.common(rng)
    for p, n, k in linears():
        q = rng.integers(0, 16, size=(k, n))
        z = rng.integers(4, 12, size=(k // G, n))
        s = group_scales(rng, k // G, n, k, 4.6, "F16")
        m.tensors.update({p + ".qweight": T("I32", qf.awq_pack(q)), p + ".qzeros": T("I32", qf.awq_pack(z)),
                          p + ".scales": store(s, "F16")})
    return m


def gptq_model(rng, bits, G, sym, version, desc_act):
    name = "gptq_%db_g%s_%s_v%d%s" % (bits, "ch" if G == -1 else G, "sym" if sym else "asym", version,
                                     "_descact" if desc_act else "")
    m = Model(name, dense_dtype="F16")
    qc = {"quant_method": "gptq", "bits": bits, "group_size": G, "desc_act": desc_act, "sym": sym,
          "damp_percent": 0.01, "static_groups": False, "true_sequential": True,
          "checkpoint_format": "gptq_v2" if version == 2 else "gptq"}
    m.config["quantization_config"] = qc
    m.common(rng)
    maxq = (1 << bits) - 1
    code_std = 4.6 if bits == 4 else 74.0
    perms = {}
    for p, n, k in linears():
        Gk = k if G == -1 else G
        ng = k // Gk
        q = rng.integers(0, maxq + 1, size=(k, n))
        if sym:
            z = np.full((ng, n), (maxq + 1) // 2)
        else:
            lo = 1 if version == 1 else 0  # v1 cannot store zero 0 (stored as -1)
            z = rng.integers(max(lo, (maxq + 1) // 4), (maxq + 1) * 3 // 4, size=(ng, n))
        s = group_scales(rng, ng, n, k, code_std, "F16")
        if desc_act:
            perm = shared_perm(rng, perms, p, k)
            g_idx = (np.arange(k) // Gk)[np.argsort(perm)].astype(np.int32)
        else:
            g_idx = (np.arange(k) // Gk).astype(np.int32)
        stored_z = z - 1 if version == 1 else z
        m.tensors.update({p + ".qweight": T("I32", qf.gptq_pack_rows(q, bits)),
                          p + ".qzeros": T("I32", qf.gptq_pack_cols(stored_z, bits)),
                          p + ".scales": store(s, "F16"), p + ".g_idx": T("I32", g_idx)})
    return m


def ct_int_model(rng, bits, G, sym, actorder, ignore_o=False):
    name = "ct_w%da16_g%s_%s%s%s" % (bits, "ch" if G == -1 else G, "sym" if sym else "asym",
                                    "_actorder" if actorder else "", "_dense_o" if ignore_o else "")
    m = Model(name)
    weights = {"num_bits": bits, "type": "int", "symmetric": sym, "strategy": "channel" if G == -1 else "group",
               "group_size": None if G == -1 else G, "actorder": "group" if actorder else None, "dynamic": False,
               "block_structure": None, "observer": "minmax", "observer_kwargs": {}}
    ignore = ["lm_head"] + (["re:.*o_proj$"] if ignore_o else [])
    m.config["quantization_config"] = {
        "quant_method": "compressed-tensors", "format": "pack-quantized", "quantization_status": "compressed",
        "ignore": ignore, "kv_cache_scheme": None, "sparsity_config": {}, "version": "0.12.2",
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights, "input_activations": None,
                                      "output_activations": None, "format": "pack-quantized"}}}
    m.common(rng)
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    code_std = 4.6 if bits == 4 else 74.0
    perms = {}
    for p, n, k in linears():
        if ignore_o and p.endswith("o_proj"):
            m.dense(rng, p + ".weight", (n, k), 1.5 / np.sqrt(k))
            continue
        ng = 1 if G == -1 else k // G
        q = rng.integers(lo, hi, size=(n, k))
        s = group_scales(rng, n, ng, k, code_std, "BF16")
        t = {"weight_packed": T("I32", qf.ct_pack_to_int32(q, bits)), "weight_scale": store(s, "BF16"),
             "weight_shape": T("I64", np.array([n, k]))}
        if not sym:
            zp = rng.integers(lo // 2, hi // 2, size=(n, ng))
            t["weight_zero_point"] = T("I32", qf.ct_pack_to_int32(zp, bits, packed_dim=0))
        if actorder:
            perm = shared_perm(rng, perms, p, k)
            t["weight_g_idx"] = T("I32", (np.arange(k) // G)[np.argsort(perm)].astype(np.int32))
        m.tensors.update({p + "." + s_: v for s_, v in t.items()})
    return m


_FP8_VALUES = None


def fp8_near(rng, shape):
    """e4m3fn codes nearest to standard-normal draws (NaN codes never drawn)."""
    global _FP8_VALUES
    if _FP8_VALUES is None:
        codes = np.arange(256, dtype=np.uint8)
        vals = qf.fp8_e4m3fn_to_f32(codes)
        ok = np.isfinite(vals)
        order = np.argsort(vals[ok], kind="stable")
        _FP8_VALUES = (codes[ok][order], vals[ok][order])
    codes, vals = _FP8_VALUES
    x = rng.normal(size=shape).astype(np.float32)
    i = np.clip(np.searchsorted(vals, x), 1, len(vals) - 1)
    pick = np.where(np.abs(vals[i - 1] - x) <= np.abs(vals[i] - x), i - 1, i)
    return codes[pick].astype(np.uint8)


def ct_fp8_model(rng, strategy, static_input, kv=False):
    name = "ct_fp8_%s_%s%s" % (strategy, "static" if static_input else "dynamic", "_kv" if kv else "")
    m = Model(name)
    block = [64, 128] if strategy == "block" else None
    weights = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": strategy, "dynamic": False,
               "group_size": None, "block_structure": block, "actorder": None, "observer": "minmax"}
    if static_input:
        inputs = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "tensor", "dynamic": False}
    elif strategy == "block":
        inputs = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "group", "group_size": 128,
                  "dynamic": True}
    else:
        inputs = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "token", "dynamic": True}
    m.config["quantization_config"] = {
        "quant_method": "compressed-tensors", "format": "float-quantized", "quantization_status": "compressed",
        "ignore": ["lm_head"], "sparsity_config": {}, "version": "0.12.2",
        "kv_cache_scheme": ({"num_bits": 8, "type": "float", "symmetric": True, "strategy": "tensor",
                             "dynamic": False} if kv else None),
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights, "input_activations": inputs}}}
    m.common(rng)
    for p, n, k in linears():
        c = fp8_near(rng, (n, k))
        if strategy == "tensor":
            s = exact(1.5 / np.sqrt(k) * np.exp2(rng.uniform(-0.5, 0.5, size=(1,))), "BF16")
        elif strategy == "channel":
            s = exact(1.5 / np.sqrt(k) * np.exp2(rng.uniform(-0.5, 0.5, size=(n, 1))), "BF16")
        else:
            s = exact(1.5 / np.sqrt(k) * np.exp2(rng.uniform(-0.5, 0.5, size=(-(-n // block[0]), -(-k // block[1])))),
                      "BF16")
        m.tensors[p + ".weight"] = T("F8_E4M3", c)
        m.tensors[p + ".weight_scale"] = store(s, "BF16")
        if static_input:
            # calibrated scales cover the activations: 448 * 2^-4 = 28
            m.tensors[p + ".input_scale"] = store(exact(np.exp2(rng.uniform(-4.5, -3.5, size=(1,))), "BF16"), "BF16")
    if kv:
        for l in range(L):
            for kn in ("k_scale", "v_scale"):
                m.tensors["model.layers.%d.self_attn.%s" % (l, kn)] = store(exact(np.exp2(rng.uniform(-3, -1, size=(1,))),
                                                                                  "BF16"), "BF16")
    return m


def fbgemm_model(rng):
    m = Model("fbgemm_fp8")
    m.config["quantization_config"] = {"quant_method": "fbgemm_fp8", "activation_scale_ub": 1200.0,
                                       "modules_to_not_convert": ["lm_head"]}
    m.common(rng)
    for p, n, k in linears():
        m.tensors[p + ".weight"] = T("F8_E4M3", fp8_near(rng, (n, k)))
        m.tensors[p + ".weight_scale"] = T("F32", (1.5 / np.sqrt(k) * np.exp2(rng.uniform(-0.5, 0.5, size=(n, 1))))
                                          .astype(np.float32))
    return m


def modelopt_model(rng):
    m = Model("modelopt_fp8")
    m.config["quantization_config"] = {"quant_method": "modelopt", "quant_algo": "FP8",
                                       "kv_cache_scheme": {"num_bits": 8, "type": "float", "dynamic": False},
                                       "ignore": ["lm_head"]}
    m.common(rng)
    for p, n, k in linears():
        m.tensors[p + ".weight"] = T("F8_E4M3", fp8_near(rng, (n, k)))
        m.tensors[p + ".weight_scale"] = T("F32", np.array(1.5 / np.sqrt(k) * np.exp2(rng.uniform(-0.5, 0.5)),
                                                         dtype=np.float32))
        m.tensors[p + ".input_scale"] = T("F32", np.array(np.exp2(rng.uniform(-4.5, -3.5)), dtype=np.float32))
    for l in range(L):
        for kn, pn in (("k_scale", "k_proj"), ("v_scale", "v_proj")):
            m.tensors["model.layers.%d.self_attn.%s.%s" % (l, pn, kn)] = T("F32", np.array(
                np.exp2(rng.uniform(-3, -1)), dtype=np.float32))
    return m


def mlx_model(rng, bits, G, tied, quant_lm_head=True, family="llama"):
    name = "mlx%d_g%d_%s%s" % (bits, G, "tied" if tied else "untied", "" if quant_lm_head else "_dense_head")
    m = Model(name + ("" if family == "llama" else "_" + family), family=family)
    m.config["tie_word_embeddings"] = tied
    q = {"group_size": G, "bits": bits, "mode": "affine"}
    m.config["quantization"] = dict(q)
    m.config["quantization_config"] = dict(q)
    m.metadata = {"format": "mlx"}
    m.common(rng, embed=False, lm_head=not quant_lm_head)
    maxq = (1 << bits) - 1
    code_std = 4.6 if bits == 4 else 74.0
    mods = [("model.embed_tokens", V, H, None)] + [(p, n, k, None) for p, n, k in linears()]
    if not tied and quant_lm_head:
        mods.append(("lm_head", V, H, None))
    for p, n, k, _ in mods:
        codes = rng.integers(0, maxq + 1, size=(n, k))
        if p == "model.embed_tokens":  # unit-variance rows
            s = exact((1.0 / code_std) * np.exp2(rng.uniform(-0.5, 0.5, size=(n, k // G))), "BF16")
            s = np.where(rng.random(s.shape) < 0.5, -s, s).astype(np.float32)
        else:
            s = group_scales(rng, n, k // G, k, code_std, "BF16", negative=True)
        b = exact(-s * (maxq / 2.0) + rng.normal(0, 0.1, size=s.shape) * np.abs(s), "BF16")
        m.tensors.update({p + ".weight": T("U32", qf.mlx_pack(codes, bits)), p + ".scales": store(s, "BF16"),
                          p + ".biases": store(b, "BF16")})
    return m


def all_models(seed):
    rng = np.random.default_rng(seed)
    return [
        awq_model(rng, 128), awq_model(rng, 32),
        gptq_model(rng, 4, 64, True, 1, False), gptq_model(rng, 4, 32, False, 2, True),
        gptq_model(rng, 8, 128, True, 1, False), gptq_model(rng, 8, -1, False, 2, False),
        ct_int_model(rng, 4, 64, True, False), ct_int_model(rng, 8, -1, False, False, ignore_o=True),
        ct_int_model(rng, 4, 128, False, True),
        ct_fp8_model(rng, "tensor", True, kv=True), ct_fp8_model(rng, "channel", False), ct_fp8_model(rng, "block", False),
        fbgemm_model(rng), modelopt_model(rng),
        mlx_model(rng, 4, 64, tied=True), mlx_model(rng, 4, 32, tied=False), mlx_model(rng, 8, 128, tied=False,
                                                                                  quant_lm_head=False),
        # Other families (after the Llama ones, so that those keep their draws):
        awq_model(rng, 32, family="qwen2"), mlx_model(rng, 4, 32, tied=True, family="gemma3"),
    ]


def dense_twin(src, dst, dequant_folder):
    """src's config without its quantization keys, its dense tensors as stored, and
    each quantized module as one F32 weight: the upstream-style dequantization."""
    config = json.load(open(os.path.join(src, "config.json")))
    for key in ("quantization_config", "quantization"):
        config.pop(key, None)
    tensors = qf.read_safetensors(os.path.join(src, "model.safetensors"))
    deq = dequant_folder(src)
    out = {}
    quant_prefixes = {name[:-len(".weight")] for name in deq}
    for name, (dtype, arr) in tensors.items():
        prefix = name.rsplit(".", 1)[0]
        # A quantized Linear's bias (Qwen2's q/k/v) is stored unquantized: it stays.
        if (prefix in quant_prefixes and not name.endswith(".bias")) or dtype not in ("BF16", "F16", "F32") \
                or name.endswith("_scale"):
            continue
        out[name] = T(dtype, arr)
    for name, w in deq.items():
        out[name] = T("F32", w)
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    qf.write_safetensors(os.path.join(dst, "model.safetensors"), out)
