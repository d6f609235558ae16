"""Independent Python reference of gpu-runner/random (see README.md): regenerates golden-values.json.

Plain Python ints and binary64 floats only (no numpy), to show the specification rebuilds bit-for-bit outside
TypeScript. Run: python3 gpu-runner/random/reference_impl.py > gpu-runner/random/golden-values.json
"""
import json
import math
import struct

MASK64 = (1 << 64) - 1
MULT = 6364136223846793005


class Pcg32:
    def __init__(self, initstate, initseq):
        self.state = 0
        self.inc = ((initseq << 1) | 1) & MASK64
        self.next()
        self.state = (self.state + initstate) & MASK64
        self.next()

    def next(self):
        old = self.state
        self.state = (old * MULT + self.inc) & MASK64
        xorshifted = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rot = old >> 59
        return ((xorshifted >> rot) | (xorshifted << ((-rot) & 31))) & 0xFFFFFFFF

    def below(self, bound):
        threshold = (2**32 - bound) % bound
        while True:
            r = self.next()
            if r >= threshold:
                return r % bound


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & MASK64
    return h


def uniform53(rng):
    x = rng.next() >> 5
    y = rng.next() >> 6
    return (x * 67108864.0 + y) * (1.0 / 9007199254740992.0)


def uniform24(rng):
    return (rng.next() >> 8) * (1.0 / 16777216.0)


COEFFS = [1.0 / (2 * k + 1) for k in range(13)]
LN2 = 0.6931471805599453
SQRT2 = 1.4142135623730951


def det_log(x):
    e = 0
    if x < 2.2250738585072014e-308:
        x *= 2.0**54
        e -= 54
    bits = struct.unpack("<Q", struct.pack("<d", x))[0]
    e += ((bits >> 52) & 0x7FF) - 1023
    m = struct.unpack("<d", struct.pack("<Q", (bits & ~(0x7FF << 52)) | (1023 << 52)))[0]
    if m > SQRT2:
        m /= 2
        e += 1
    t = (m - 1) / (m + 1)
    t2 = t * t
    p = COEFFS[12]
    for k in range(11, -1, -1):
        p = p * t2 + COEFFS[k]
    return e * LN2 + 2 * t * p


def polar_pair(rng):
    while True:
        u = 2 * uniform53(rng) - 1
        v = 2 * uniform53(rng) - 1
        s = u * u + v * v
        if s >= 1 or s == 0:
            continue
        f = math.sqrt((-2 * det_log(s)) / s)
        return u * f, v * f


def gaussians(rng, n):
    out = []
    while len(out) < n:
        out.extend(polar_pair(rng))
    return out[:n]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main():
    demo = Pcg32(42, 54)
    golden = {
        "pcg32_demo_42_54": [demo.next() for _ in range(6)],
        "fnv1a64": {s: str(fnv1a64(s)) for s in ["", "a", "foobar", "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q#A"]},
        "streams": [],
        "log": [[x, det_log(x)] for x in [1e-300, 5e-324, 0.001, 0.25, 0.5, 0.7071, 0.9999999, 1.0, 1.5, 2.0, 10.0, 123456.789]],
    }
    for seed, name in [(0, "noise"), (1234, "latents"), (2**32 - 1, "lidb")]:
        seq = fnv1a64(name)
        r = Pcg32(seed, seq)
        uint32 = [r.next() for _ in range(4)]
        r = Pcg32(seed, seq)
        u53 = [uniform53(r) for _ in range(4)]
        r = Pcg32(seed, seq)
        u24 = [uniform24(r) for _ in range(4)]
        r = Pcg32(seed, seq)
        below = [r.below(1000) for _ in range(4)]
        r = Pcg32(seed, seq)
        g = gaussians(r, 1001)
        golden["streams"].append({
            "seed": seed,
            "name": name,
            "uint32": uint32,
            "uniform53": u53,
            "uniform24": u24,
            "below1000": below,
            "gaussian64_first": g[:6],
            "gaussian32_first": [f32(x) for x in g[:6]],
            "gaussian64_count": 1001,
            "gaussian64_sum": math.fsum(g),
            "gaussian64_sumsq": math.fsum(x * x for x in g),
            "gaussian64_last": g[-1],
        })
    print(json.dumps(golden, indent=2))


if __name__ == "__main__":
    main()
