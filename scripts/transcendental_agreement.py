"""How often NumPy and torch disagree on exp, log, pow and the sigmoid, before and after pqref's correctly rounded
functions (`reference.core.transcendental`), on the CPU.

    python scripts/transcendental_agreement.py [--n 1048576] [--seed 0]

For each function and 2**20 float32 inputs (by default) it counts elements whose float32 bits differ:

- **float32**: NumPy's float32 function against torch's float32 function (what a user calling either gets);
- **float64, rounded**: both evaluated in float64, then rounded to float32 (the usual remedy);
- **not CR** (not correctly rounded): each of the above against pqref's correctly rounded result;
- **pqref**: `reference` against `torch_backend` (must be 0), and how many elements the float64 interval could
  not certify (settled on the host by exact arithmetic).

The output is the Markdown table on the exactness page (docs/exactness.md, "Correctly rounded transcendentals").
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import reference as R
import torch_backend as T
from reference.core import transcendental as rt


def inputs(n, seed):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    half = n // 2
    spread = np.concatenate([rng.uniform(-103, 88, half), rng.normal(0, 3, n - half)]).astype(f32)
    positive = np.exp(rng.uniform(-100, 88, n)).astype(f32)
    base = (np.abs(rng.normal(0, 1, n)) * 10.0 ** rng.uniform(-3, 3, n)).astype(f32)
    grid = (rng.integers(0, 20, n) / 20).astype(f32)  # AWQ's exponents k / 20
    return {
        "exp": ((spread,), np.exp, torch.exp, R.cr_exp, T.cr_exp, np.exp),
        "log": ((positive,), np.log, torch.log, R.cr_log, T.cr_log, np.log),
        "pow (y = k/20)": ((base, grid), np.power, torch.pow, R.cr_pow, T.cr_pow, np.power),
        "sigmoid": (
            (rng.normal(0, 4, n).astype(f32),),
            lambda x: f32(1) / (f32(1) + np.exp(-x)),
            torch.sigmoid,
            R.cr_sigmoid,
            T.cr_sigmoid,
            lambda x: 1.0 / (1.0 + np.exp(-x)),
        ),
    }


def differ(a, b) -> int:
    return int((np.asarray(a).view(np.uint32) != np.asarray(b).view(np.uint32)).sum())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2**20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"numpy {np.__version__}, torch {torch.__version__}, {args.n} float32 inputs per function, CPU\n")
    print(
        "| function | float32: NumPy vs torch | float64 rounded: NumPy vs torch | NumPy float32 not CR "
        "| torch float32 not CR | float64 rounded not CR | pqref: reference vs torch | uncertified (host) "
        "| pqref ms (ref / torch) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with np.errstate(all="ignore"):
        for name, (xs, np_f, t_f, ref_f, tb_f, np64) in inputs(args.n, args.seed).items():
            ts = [torch.from_numpy(x) for x in xs]
            np32, t32 = np_f(*xs), t_f(*ts).numpy()
            np64r = np64(*[x.astype(np.float64) for x in xs]).astype(np.float32)
            t64r = t_f(*[t.double() for t in ts]).float().numpy()
            t0 = time.perf_counter()
            ref = ref_f(*xs)
            t1 = time.perf_counter()
            tb = tb_f(*ts).numpy()
            t2 = time.perf_counter()
            _, ok = rt._certified(np64(*[x.astype(np.float64) for x in xs]))
            print(
                f"| {name} | {differ(np32, t32)} | {differ(np64r, t64r)} | {differ(np32, ref)} | {differ(t32, ref)} "
                f"| {differ(np64r, ref)} | {differ(ref, tb)} | {int((~ok).sum())} | {1e3 * (t1 - t0):.0f} / {1e3 * (t2 - t1):.0f} |"
            )


if __name__ == "__main__":
    main()
