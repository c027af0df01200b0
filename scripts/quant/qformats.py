"""NumPy packers, unpackers and dequantizers for the quantized checkpoint formats
that kr-serve loads, written from the upstream sources (not from kr-serve's C++).

Each function names the upstream function it follows (the team's byte-level
specification, QUANT_FORMATS.md, cites the same files); the upstream sources read are:
  AutoAWQ          awq/modules/linear/gemm.py::WQLinear_GEMM.from_linear,
                   awq/utils/packing_utils.py (AWQ_ORDER, unpack_awq, reverse_awq_order)
  AutoGPTQ         auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py::QuantLinear.pack/forward
  GPTQModel        gptqmodel/utils/model.py::convert_gptq_v{1_to_v2,2_to_v1}_format_module
  compressed-tensors  compressors/quantized_compressors/pack_quantized.py::pack_to_int32,
                   unpack_from_int32; quantization/lifecycle/forward.py::_dequantize
  MLX              mlx/backend/cpu/quantized.cpp::quantize (LSB-first packing),
                   mlx/ops.cpp::affine_dequantize (w * scales + biases)
  vLLM             awq_triton.py::awq_dequantize_kernel (reverse order shifts),
                   csrc/quantization/gptq/q_gemm.cu (zero_offset 1 for v1)

Dequantized weights are float32 [N, K] (torch Linear orientation) computed with one
float32 operation at a time, in the order written here, so that a C++ reader doing
the same operations gets the same bits:
  integer formats  W = (float(q) - float(z)) * s          (exact: small ints x 16-bit floats)
  MLX affine       W = float(q) * s + b                    (product, then one rounding of the sum)
  FP8              W = float(fp8) * s                      (one rounding)

Only NumPy and the standard library are used.
"""

import json
import struct

import numpy as np

# ----------------------------------------------------------------------------
# 16-bit floats and FP8
# ----------------------------------------------------------------------------


def f32_to_bf16_bits(x):
    """float32 array -> bf16 bit patterns (uint16), round to nearest even (torch's cast)."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    nan = (b & 0x7FFFFFFF) > 0x7F800000
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    r[nan] = ((b[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def fp8_e4m3fn_to_f32(codes):
    """float8_e4m3fn bytes -> float32: 1 sign, 4 exponent (bias 7), 3 mantissa bits;
    exponent 0 is subnormal (m * 2^-9); S.1111.111 is NaN; no infinities."""
    c = np.asarray(codes, dtype=np.uint8).astype(np.int64)
    sign = np.where(c & 0x80, -1.0, 1.0)
    e = (c >> 3) & 0xF
    m = c & 0x7
    mag = np.where(e == 0, m * 2.0 ** -9, (1.0 + m / 8.0) * np.exp2(e - 7.0))
    out = (sign * mag).astype(np.float32)
    out[(c & 0x7F) == 0x7F] = np.nan
    return out


# ----------------------------------------------------------------------------
# safetensors (format: 8-byte little-endian header length, JSON header, data)
# ----------------------------------------------------------------------------

_ST_DTYPES = {
    "F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F8_E4M3": np.uint8,
    "I32": np.int32, "U32": np.uint32, "I64": np.int64, "U8": np.uint8, "I8": np.int8,
}


class T:
    """A tensor to write: numpy data plus its safetensors dtype string."""

    def __init__(self, dtype, array):
        assert dtype in _ST_DTYPES, dtype
        self.dtype = dtype
        self.array = np.ascontiguousarray(np.asarray(array).astype(_ST_DTYPES[dtype], copy=False))


def write_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name]
        raw = t.array.tobytes()
        header[name] = {"dtype": t.dtype, "shape": list(t.array.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """name -> (dtype string, numpy array); BF16 comes back as uint16 bits."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        arr = np.frombuffer(data[base + b:base + en], dtype=_ST_DTYPES[e["dtype"]]).reshape(e["shape"])
        out[name] = (e["dtype"], arr)
    return out


def read_safetensors_metadata(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)).get("__metadata__", {})


def to_f32(dtype, arr):
    """A float tensor of any stored dtype as float32 (exact for F16/BF16/F32)."""
    if dtype == "BF16":
        return bf16_bits_to_f32(arr)
    if dtype in ("F16", "F32"):
        return arr.astype(np.float32)
    raise ValueError("not a float dtype: " + dtype)


# ----------------------------------------------------------------------------
# AWQ GEMM (AutoAWQ WQLinear_GEMM.from_linear; vLLM awq_triton reverse order)
# ----------------------------------------------------------------------------

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]          # slot i holds column 8c + AWQ_ORDER[i]
AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]  # column 8c + j sits in slot AWQ_REVERSE_ORDER[j]


def awq_pack(intweight):
    """[R, N] codes 0..15 -> int32 [R, N/8]: `qweight[:, col] |= intweight[:, col*8 + order_map[i]] << (i*4)`."""
    q = np.asarray(intweight).astype(np.uint32)
    R, N = q.shape
    assert N % 8 == 0
    out = np.zeros((R, N // 8), dtype=np.uint32)
    for col in range(N // 8):
        for i in range(8):
            out[:, col] |= q[:, col * 8 + AWQ_ORDER[i]] << np.uint32(i * 4)
    return out.view(np.int32)


def awq_unpack(words):
    """int32 [R, N/8] -> uint8 [R, N]: `(w >> 4*AWQ_REVERSE_ORDER[j]) & 0xF` for column 8c+j."""
    w = np.asarray(words).view(np.uint32)
    R, C = w.shape
    out = np.zeros((R, C * 8), dtype=np.uint8)
    for j in range(8):
        out[:, j::8] = (w >> np.uint32(4 * AWQ_REVERSE_ORDER[j])) & 0xF
    return out


def awq_dequant(q_kn, z_gn, s_gn, group_size):
    """AutoAWQ dequantize_gemm: W[k, n] = (q - z[k // G, n]) * s[k // G, n]; returns [N, K] float32."""
    g = np.arange(q_kn.shape[0]) // group_size
    w = (q_kn.astype(np.float32) - z_gn[g].astype(np.float32)) * s_gn[g].astype(np.float32)
    return np.ascontiguousarray(w.T.astype(np.float32))


# ----------------------------------------------------------------------------
# GPTQ (AutoGPTQ QuantLinear.pack: qweight along K, qzeros along N, LSB first)
# ----------------------------------------------------------------------------


def gptq_pack_rows(q_kn, bits):
    """[K, N] codes -> int32 [K*bits/32, N]: `qweight[row] |= intweight[row*pf + j] << (bits*j)`."""
    pf = 32 // bits
    q = np.asarray(q_kn).astype(np.uint32)
    K, N = q.shape
    assert K % pf == 0
    out = np.zeros((K // pf, N), dtype=np.uint32)
    for j in range(pf):
        out |= q[j::pf, :] << np.uint32(bits * j)
    return out.view(np.int32)


def gptq_unpack_rows(words, bits):
    pf = 32 // bits
    w = np.asarray(words).view(np.uint32)
    out = np.zeros((w.shape[0] * pf, w.shape[1]), dtype=np.uint32)
    for j in range(pf):
        out[j::pf, :] = (w >> np.uint32(bits * j)) & np.uint32((1 << bits) - 1)
    return out


def gptq_pack_cols(z_gn, bits):
    """[G, N] values -> int32 [G, N*bits/32]: `qzeros[:, col] |= zeros[:, col*pf + j] << (bits*j)`."""
    pf = 32 // bits
    z = np.asarray(z_gn).astype(np.uint32)
    G, N = z.shape
    assert N % pf == 0
    out = np.zeros((G, N // pf), dtype=np.uint32)
    for j in range(pf):
        out |= z[:, j::pf] << np.uint32(bits * j)
    return out.view(np.int32)


def gptq_unpack_cols(words, bits):
    pf = 32 // bits
    w = np.asarray(words).view(np.uint32)
    out = np.zeros((w.shape[0], w.shape[1] * pf), dtype=np.uint32)
    for j in range(pf):
        out[:, j::pf] = (w >> np.uint32(bits * j)) & np.uint32((1 << bits) - 1)
    return out


def gptq_dequant(q_kn, zero_gn, s_gn, g_idx):
    """W[k, n] = (q[k, n] - zero[g_idx[k], n]) * s[g_idx[k], n] with the *true* zero
    (v1 readers add 1 to the stored value first). Returns [N, K] float32."""
    g = np.asarray(g_idx)
    w = (q_kn.astype(np.float32) - zero_gn[g].astype(np.float32)) * s_gn[g].astype(np.float32)
    return np.ascontiguousarray(w.T.astype(np.float32))


# ----------------------------------------------------------------------------
# compressed-tensors pack-quantized (pack_to_int32 / unpack_from_int32)
# ----------------------------------------------------------------------------


def ct_pack_to_int32(q_signed, bits, packed_dim=1):
    """Signed codes in [-2^(b-1), 2^(b-1)) -> int32, offset +2^(b-1), zero-padded along
    packed_dim to a multiple of 32/bits, element i of each word at bit bits*i."""
    offset = 1 << (bits - 1)
    v = (np.asarray(q_signed).astype(np.int32) + offset).astype(np.uint32)
    assert v.min() >= 0 and v.max() < (1 << bits)
    if packed_dim == 0:
        v = v.T
    rows, cols = v.shape
    pf = 32 // bits
    padded = -(-cols // pf) * pf
    v = np.pad(v, ((0, 0), (0, padded - cols)))
    v = v.reshape(rows, padded // pf, pf)
    packed = np.zeros((rows, padded // pf), dtype=np.uint32)
    for i in range(pf):
        packed |= v[:, :, i] << np.uint32(bits * i)
    if packed_dim == 0:
        packed = packed.T
    return np.ascontiguousarray(packed).view(np.int32)


def ct_unpack_from_int32(words, bits, shape, packed_dim=1):
    """int32 -> signed codes of `shape` (padding dropped), as unpack_from_int32."""
    pf = 32 // bits
    mask = np.uint32((1 << bits) - 1)
    w = np.asarray(words).view(np.uint32)
    if packed_dim == 1:
        out = np.zeros((w.shape[0], w.shape[1] * pf), dtype=np.int32)
        for i in range(pf):
            out[:, i::pf] = (w >> np.uint32(bits * i)) & mask
        out = out[:, :shape[1]]
    else:
        out = np.zeros((w.shape[0] * pf, w.shape[1]), dtype=np.int32)
        for i in range(pf):
            out[i::pf, :] = (w >> np.uint32(bits * i)) & mask
        out = out[:shape[0], :]
    return out - (1 << (bits - 1))


def ct_dequant(q_nk_signed, zp_ng_signed, s_ng, group_of_k):
    """forward.py::_dequantize: W[n, k] = (q - zp[n, g(k)]) * s[n, g(k)] (zp = 0 when
    symmetric). Returns [N, K] float32."""
    g = np.asarray(group_of_k)
    s = s_ng[:, g].astype(np.float32)
    if zp_ng_signed is None:
        return (q_nk_signed.astype(np.float32) * s).astype(np.float32)
    return ((q_nk_signed.astype(np.float32) - zp_ng_signed[:, g].astype(np.float32)) * s).astype(np.float32)


# ----------------------------------------------------------------------------
# MLX affine (mlx CPU quantize: out_el |= q_k << (k*bits), LSB first along K)
# ----------------------------------------------------------------------------


def mlx_pack(q_nk, bits):
    """[N, K] codes 0..2^b-1 -> uint32 [N, K*bits/32]."""
    assert bits in (2, 4, 8)
    pf = 32 // bits
    q = np.asarray(q_nk).astype(np.uint32)
    N, K = q.shape
    assert K % pf == 0
    out = np.zeros((N, K // pf), dtype=np.uint32)
    for k in range(pf):
        out |= q[:, k::pf] << np.uint32(k * bits)
    return out


def mlx_unpack(words, bits):
    pf = 32 // bits
    w = np.asarray(words).astype(np.uint32)
    out = np.zeros((w.shape[0], w.shape[1] * pf), dtype=np.uint32)
    for k in range(pf):
        out[:, k::pf] = (w >> np.uint32(k * bits)) & np.uint32((1 << bits) - 1)
    return out


def mlx_dequant(q_nk, s_ng, b_ng, group_size):
    """affine_dequantize: W[n, k] = q * scales[n, k/G] + biases[n, k/G] (float32)."""
    g = np.arange(q_nk.shape[1]) // group_size
    prod = (q_nk.astype(np.float32) * s_ng[:, g].astype(np.float32)).astype(np.float32)
    return (prod + b_ng[:, g].astype(np.float32)).astype(np.float32)


# ----------------------------------------------------------------------------
# FP8 (compressed-tensors float-quantized, fbgemm_fp8, ModelOpt)
# ----------------------------------------------------------------------------


def fp8_dequant(codes_nk, scale, granularity, block=None):
    """W = fp8(w) * s: granularity 'tensor' (one scale), 'channel' ([N] or [N,1]),
    'block' ([ceil(N/bn), ceil(K/bk)] with block=(bn, bk))."""
    w = fp8_e4m3fn_to_f32(codes_nk)
    s = np.asarray(scale, dtype=np.float32)
    N, K = w.shape
    if granularity == "tensor":
        full = np.full((N, K), s.reshape(-1)[0], dtype=np.float32)
    elif granularity == "channel":
        full = np.repeat(s.reshape(N, 1), K, axis=1)
    elif granularity == "block":
        bn, bk = block
        full = s[np.arange(N)[:, None] // bn, np.arange(K)[None, :] // bk]
    else:
        raise ValueError(granularity)
    return (w * full).astype(np.float32)
