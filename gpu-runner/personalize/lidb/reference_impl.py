"""Independent Python reference of the LiDB aux bases (LIDB.md): regenerates golden-aux-bases.json.

Plain Python floats (binary64) and ints, no numpy, reusing gpu-runner/random/reference_impl.py for PCG32 / FNV-1a /
the polar Gaussian. Slow on purpose (pure Python): about a minute.
Run: python3 gpu-runner/personalize/lidb/reference_impl.py > gpu-runner/personalize/lidb/golden-aux-bases.json
"""
import hashlib
import json
import math
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "random"))
from reference_impl import Pcg32, fnv1a64, gaussians  # noqa: E402

VERSION = "lidb-aux-v1"


def orthonormalize_rows(m, rows, cols):
    for i in range(rows):
        vi = i * cols
        for j in range(i):
            qj = j * cols
            d = 0.0
            for k in range(cols):
                d += m[qj + k] * m[vi + k]
            for k in range(cols):
                m[vi + k] = m[vi + k] - d * m[qj + k]
        s = 0.0
        for k in range(cols):
            s += m[vi + k] * m[vi + k]
        n = math.sqrt(s)
        for k in range(cols):
            m[vi + k] = m[vi + k] / n
    return m


def f32_bytes(values):
    return struct.pack("<%df" % len(values), *values)


def f32(values):
    return list(struct.unpack("<%df" % len(values), f32_bytes(values)))


def aux_basis(seed, name, fan_in, fan_out, a, b):
    a_eff = min(a, fan_in)
    b_eff = min(b, fan_out)
    qa = orthonormalize_rows(gaussians(Pcg32(seed, fnv1a64(f"{VERSION}/{name}/A_aux")), a_eff * fan_in), a_eff, fan_in)
    scale_a = math.sqrt(fan_in / a_eff)
    a_aux = f32([v * scale_a for v in qa])
    qb = orthonormalize_rows(gaussians(Pcg32(seed, fnv1a64(f"{VERSION}/{name}/B_aux")), b_eff * fan_out), b_eff, fan_out)
    b_aux = f32([qb[j * fan_out + o] * 1.0 for o in range(fan_out) for j in range(b_eff)])
    return a_eff, b_eff, a_aux, b_aux


def summary(values):
    return {
        "first": values[:4],
        "sha256_f32le": hashlib.sha256(f32_bytes(values)).hexdigest(),
        "frobenius": math.sqrt(math.fsum(v * v for v in values)),
    }


CASES = [
    (0, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", 320, 320),
    (0, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 768, 320),
    (7, "text_encoder.text_model.encoder.layers.0.mlp.fc1", 768, 3072),
    (1234, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 32, 8),
    (1234, "text_encoder.text_model.encoder.layers.1.mlp.fc2", 128, 32),
    (4294967295, "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0", 32, 32),
]


def main():
    out = {"algorithm": VERSION, "a": 100, "b": 50, "cases": []}
    for seed, name, fan_in, fan_out in CASES:
        a_eff, b_eff, a_aux, b_aux = aux_basis(seed, name, fan_in, fan_out, 100, 50)
        out["cases"].append({
            "seed": seed, "name": name, "in": fan_in, "out": fan_out, "aEff": a_eff, "bEff": b_eff,
            "A_aux": summary(a_aux), "B_aux": summary(b_aux),
        })
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
