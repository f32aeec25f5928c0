"""Elementwise steps of the L1 penalties in torch, by exact arithmetic instead of `torch.where` (package-private).

On the CPU `torch.where` and the comparisons that feed it cost 3 to 10 times an addition or a `sign`; each function
here gives bit for bit what the `where` formula of the reference gives (the proofs are in the docstrings, and
`tests/test_fast_paths_pruning.py` checks them against the reference on signed zeros, subnormals, huge values and
every route).
"""

from __future__ import annotations

import math
import struct

import torch

from torch_backend import _arrays


def signed(w, value, c):
    """`_signed(w, c)` (`c` where `w > 0`, `-c` where `w < 0`, `+0.0` at zeros and wherever the value is a zero)
    for finite `w` and the 0-d float32 `c`, whose value, read on the host, is `value`.

    For finite `c` it is `sign(w) * c + 0`: `sign(w)` is exactly `1`, `-1` or `±0`, so the product is exactly
    `c`, `-c` or `±0` (all `±0` when `c = ±0`), and adding `+0.0` keeps a nonzero value and turns either zero
    into `+0.0` (`-0 + +0 = +0` in round-to-nearest). For `c = ±inf` the product would be NaN at the zeros, so
    `sign(w) * (±FLT_MAX) * 2` takes its place: exactly `±FLT_MAX` or `±0`, then `2 * FLT_MAX` rounds to `inf`
    (it is past the overflow threshold `FLT_MAX + ulp/2`) and `2 * ±0 = ±0`. A NaN `c` (a non-finite cotangent
    in training) takes the `where` formula.
    """
    if math.isnan(value):
        return _signed(w, c)
    out = torch.sign(w)
    if math.isinf(value):
        out.mul_(_arrays.constant(math.copysign(_FLT_MAX, value), w)).mul_(_arrays.constant(2.0, w))
    else:
        out.mul_(c)
    return out.add_(_arrays.constant(0.0, w))


def soft_threshold(w, tau):
    """`where(w > tau, w - tau, where(w < -tau, w + tau, +0.0))` for finite `w` and the float32 value `tau >= 0`.

    Computed as `w - clamp(w, -tau, tau)` (two passes instead of five), with the same bits: where `w > tau`
    the clamp is `tau` and the difference is the reference's `w - tau`; where `w < -tau` it is `-tau`, and
    `w - (-tau)` is the IEEE operation `w + tau`; elsewhere `-tau <= w <= tau`, the clamp returns `w` itself
    (or the bound equal to it: `w = ±tau` with `tau > 0` has the bound's bits, and `±0` lies strictly
    inside), and `w - w = +0.0` in round-to-nearest. `tau = inf` makes every `w` lie strictly inside: all
    `+0.0`, as the reference. `tau = 0` is taken apart, since a clamp of `-0.0` to `[-0, +0]` may return
    either zero: there the reference keeps every nonzero `w` and gives `+0.0` at zeros, which is `w + 0`. The
    bounds are Python floats holding float32 values, so torch converts them to float32 exactly.
    """
    if tau == 0:
        return w + _arrays.constant(0.0, w)
    return w - torch.clamp(w, -tau, tau)


_FLT_MAX = float.fromhex("0x1.fffffep+127")


def float32_value(x):
    """The Python float `x` rounded once to float32 (to nearest even; beyond the range, `inf`), as a Python float:
    what `_to_float32` holds, without making a tensor (`struct` packs with C's `(float)` conversion)."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:  # the rounded value is infinite
        return math.copysign(math.inf, x)


def float32_below(t):
    """The largest float32 value `<= t`, for a finite Python float `t >= 0` (`FLT_MAX` past the float32 range).

    For a float32 `x`, `x > t` (compared in float64) is `x > float32_below(t)`: the bound `d` is `<= t`, so
    `x > t` implies `x > d`; and `x > d` makes `x` at least the float32 after `d`, which is above `t` (`d` is
    the largest float32 not above it), or there is no such finite float32 (`d = FLT_MAX`, `x > d` never holds
    for finite `x`, nor `x > t >= FLT_MAX`). A comparison with a float32 value costs half a conversion of `x`
    to float64 and its comparison."""
    f = float32_value(t)
    if f <= t:
        return f
    if math.isinf(f):
        return _FLT_MAX
    (bits,) = struct.unpack("<I", struct.pack("<f", f))  # f > t >= 0: a positive float32, after its predecessor
    return struct.unpack("<f", struct.pack("<I", bits - 1))[0]


def _signed(w, c):
    """`c` where `w > 0`, `-c` where `w < 0`, `+0.0` where `w` is zero or the value would be a zero."""
    out = torch.where(w > 0, c, -c)
    return torch.where((w == 0) | (out == 0), 0.0, out)
