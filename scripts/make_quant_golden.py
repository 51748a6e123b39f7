#!/usr/bin/env python3
"""Writes Tests/Fixtures/quant/golden.h5: float32 rows and their blocks as quantized by the
`gguf` Python package (gguf-py, whose numpy quantizers are written to give the same bits as
ggml's quantize_row_*_ref and its fp32 -> bf16 conversion). The Swift tests check that CALM's
quantizer produces exactly these bytes, so a GGUF file of these types imports bit-identically.

    /input            float32 (rows, 256): random rows at several scales, plus rows built to hit
                      the rounding rules: exact .5 ties, an all-zero block, equal magnitudes of
                      opposite sign, scales that are f16 subnormals
    /q8_0, /q4_0, /q4_1   uint8 (rows, bytes per row)
    /bf16             uint16 (rows, 256)

Run from the repository root (needs numpy, h5py and gguf; never needed by CI):
    python3 scripts/make_quant_golden.py
"""
import os

import h5py
import numpy as np
from gguf import GGMLQuantizationType, quants

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "quant", "golden.h5")
COLS = 256


def special_rows():
    rows = []
    # q8_0 with amax 127: d = 1, so x * id = x and ties are exact (round half away from zero).
    ties = np.array([127, 2.5, -3.5, 0.5, -0.5, 1.5, -1.5, 126.5] * 4, dtype=np.float32)
    # q4_0 with max -8: d = 1, x + 8.5 truncated (ties round up); 7.5 clips to 15.
    q4ties = np.array([-8, 0.5, -0.5, 1.5, -1.5, 7.5, -7.5, 3.5] * 4, dtype=np.float32)
    # q4_1 from 0 to 15: d = 1, m = 0, ties at .5.
    q41ties = np.array([0, 15, 2.5, 3.5, 14.5, 0.5, 7.5, 8.5] * 4, dtype=np.float32)
    zeros = np.zeros(32, dtype=np.float32)
    # Largest magnitude twice with opposite signs: q4_0 keeps the first (negative) one.
    opposite = np.linspace(-1, 1, 32).astype(np.float32)
    opposite[3], opposite[20] = -2.0, 2.0
    # Tiny values: the f16 scales are subnormal.
    tiny = (np.random.default_rng(7).standard_normal(32) * 1e-6).astype(np.float32)
    # All positive and all negative blocks (q4_1's minimum is not zero).
    positive = np.random.default_rng(8).uniform(0.5, 1.5, 32).astype(np.float32)
    negative = -np.random.default_rng(9).uniform(0.5, 1.5, 32).astype(np.float32)
    rows.append(np.concatenate([ties, q4ties, q41ties, zeros, opposite, tiny, positive, negative]))
    # bf16 ties: values whose low 16 bits are exactly 0x8000, with odd and even upper halves.
    bits = np.array([0x3F808000, 0x3F818000, 0xBF808000, 0xBF818000, 0x00018000, 0x46FF8000], dtype=np.uint32)
    row = np.resize(bits.view(np.float32), COLS).astype(np.float32)
    rows.append(row)
    return rows


def main():
    rng = np.random.default_rng(2026)
    rows = [(rng.standard_normal(COLS) * scale).astype(np.float32) for scale in (0.02, 0.02, 0.1, 1.0, 3.0, 0.001)]
    rows += special_rows()
    data = np.stack(rows).astype(np.float32)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with h5py.File(OUT, "w") as f:
        f["input"] = data
        for name, qtype in (("q8_0", GGMLQuantizationType.Q8_0), ("q4_0", GGMLQuantizationType.Q4_0),
                            ("q4_1", GGMLQuantizationType.Q4_1)):
            f[name] = quants.quantize(data, qtype)
        f["bf16"] = quants.quantize(data, GGMLQuantizationType.BF16).view(np.uint16)
    print(f"wrote {OUT}: {data.shape[0]} rows of {COLS}")


if __name__ == "__main__":
    main()
