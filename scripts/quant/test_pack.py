#!/usr/bin/env python3
"""Checks the NumPy packers (qformats.py) against the worked words of the quantized
format specification's section 0, and each unpacker against its packer.
Exit status 0 when every check passes. Needs NumPy."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qformats as qf  # noqa: E402

failures = []


def check(name, got, want):
    got = int(np.uint32(np.asarray(got).reshape(-1)[0].astype(np.int64) & 0xFFFFFFFF))
    if got != want:
        failures.append("%s: got 0x%08x, want 0x%08x" % (name, got, want))


codes_1_8 = np.arange(1, 9)
# AWQ qweight, columns n..n+7 have codes 1..8 (one row of [K, N])
check("AWQ qweight", qf.awq_pack(codes_1_8.reshape(1, 8)), 0x86427531)
# GPTQ qweight, rows k..k+7 have codes 1..8 (one column of [K, N])
check("GPTQ qweight", qf.gptq_pack_rows(codes_1_8.reshape(8, 1), 4), 0x87654321)
# GPTQ symmetric 4-bit qzeros: zero 8 stored as 7 (v1) and as 8 (v2)
check("GPTQ v1 sym qzeros", qf.gptq_pack_cols(np.full((1, 8), 8) - 1, 4), 0x77777777)
check("GPTQ v2 sym qzeros", qf.gptq_pack_cols(np.full((1, 8), 8), 4), 0x88888888)
if int(qf.gptq_pack_cols(np.full((1, 8), 7), 4)[0, 0]) != 2004318071:
    failures.append("GPTQ v1 sym qzeros as int32 is not 2004318071")
if int(qf.gptq_pack_cols(np.full((1, 8), 8), 4)[0, 0]) != -2004318072:
    failures.append("GPTQ v2 sym qzeros as int32 is not -2004318072")
# compressed-tensors weight_packed, k..k+7 signed codes -3..4 (stored 5..12)
check("CT weight_packed", qf.ct_pack_to_int32(np.arange(-3, 5).reshape(1, 8), 4), 0xCBA98765)
# MLX 4-bit, k..k+7 codes 1..8; MLX 8-bit, k..k+3 codes 1..4
check("MLX 4-bit", qf.mlx_pack(codes_1_8.reshape(1, 8), 4), 0x87654321)
check("MLX 8-bit", qf.mlx_pack(np.arange(1, 5).reshape(1, 4), 8), 0x04030201)

# Round trips through the unpackers.
rng = np.random.default_rng(0)
q = rng.integers(0, 16, size=(16, 24))
if not np.array_equal(qf.awq_unpack(qf.awq_pack(q)), q):
    failures.append("AWQ unpack(pack(q)) != q")
for bits in (4, 8):
    q = rng.integers(0, 1 << bits, size=(32, 16))
    if not np.array_equal(qf.gptq_unpack_rows(qf.gptq_pack_rows(q, bits), bits), q):
        failures.append("GPTQ rows %d-bit round trip" % bits)
    if not np.array_equal(qf.gptq_unpack_cols(qf.gptq_pack_cols(q, bits), bits), q):
        failures.append("GPTQ cols %d-bit round trip" % bits)
    if not np.array_equal(qf.mlx_unpack(qf.mlx_pack(q, bits), bits), q):
        failures.append("MLX %d-bit round trip" % bits)
    s = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(13, 21))
    if not np.array_equal(qf.ct_unpack_from_int32(qf.ct_pack_to_int32(s, bits), bits, s.shape), s):
        failures.append("CT %d-bit round trip (padded)" % bits)
    if not np.array_equal(qf.ct_unpack_from_int32(qf.ct_pack_to_int32(s, bits, 0), bits, s.shape, 0), s):
        failures.append("CT %d-bit round trip along dim 0" % bits)

# FP8 e4m3fn decoding: a few known values.
for code, val in ((0x00, 0.0), (0x38, 1.0), (0x7E, 448.0), (0xFE, -448.0), (0x01, 2.0 ** -9), (0x08, 2.0 ** -6),
                  (0x3C, 1.5)):
    got = float(qf.fp8_e4m3fn_to_f32(np.array([code], dtype=np.uint8))[0])
    if got != val:
        failures.append("fp8 0x%02x -> %r, want %r" % (code, got, val))
if not np.isnan(qf.fp8_e4m3fn_to_f32(np.array([0x7F, 0xFF], dtype=np.uint8))).all():
    failures.append("fp8 0x7f/0xff must be NaN")

if failures:
    print("\n".join("FAIL " + f for f in failures))
    sys.exit(1)
print("test_pack: all worked words and round trips match")
