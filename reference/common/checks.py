"""The scalar argument checks of individual algorithms, shared by both backends and written once.

Each function takes Python values (option strings, ints, bools, keys), never an array; it raises the wording of
`reference.common.validate` and returns the values normalized, so a bad option fails the same way, in the same
order, in `reference` and in `torch_backend`. The tables of choices (the rounding modes, the float formats) stay in
the reference module that defines them and are passed in: this module depends on `validate` and the standard
library alone.
"""

from __future__ import annotations

import numbers

from reference.common import validate

__all__ = [
    "binary_connect",
    "compressed_tensors_options",
    "float_options",
    "gptq_options",
    "lsq_bounds",
    "mx_block_size",
    "packed_multiple",
    "paired",
    "rounding",
]


def rounding(mode, key, modes) -> tuple[str, tuple[int, int] | None]:
    """A rounding mode among `modes`, and its key: required for `"stochastic"`, refused for every other mode.

    Returns `(mode, key)`, the key checked (`None` unless stochastic).
    """
    validate.choice("rounding", mode, modes)
    if mode == "stochastic":
        if key is None:
            raise ValueError("rounding='stochastic' needs a key; pass key=make_key(seed)")
        return mode, validate.key("key", key)
    if key is not None:
        raise ValueError(f"key is only used with rounding='stochastic', got rounding={mode!r}")
    return mode, None


def binary_connect(stochastic, key, ste, stes):
    """BinaryConnect's options: `stochastic` (a bool), its key (required exactly when stochastic), `ste` in `stes`.

    Returns `(stochastic, key, ste)`.
    """
    stochastic = validate.boolean("stochastic", stochastic)
    if stochastic:
        if key is None:
            raise ValueError("stochastic=True needs a key; pass key=make_key(seed)")
        key = validate.key("key", key)
    elif key is not None:
        raise ValueError("key is only used with stochastic=True")
    validate.choice("ste", ste, stes)
    return stochastic, key, ste


def float_options(fmt, saturate, rounding_mode, key, formats, roundings):
    """A low-bit float format's options: `fmt` a key of `formats`; `saturate=False` only for a format with Inf or
    NaN; `rounding_mode` in `roundings` with its key (see `rounding`).

    Returns `(form, saturate, mode, key)`, `form` the format's entry of `formats`.
    """
    form = formats[validate.choice("fmt", fmt, tuple(formats))]
    saturate = validate.boolean("saturate", saturate)
    if not saturate and not (form.has_inf or form.has_nan):
        raise ValueError(f"{fmt} has neither Inf nor NaN, so only saturate=True is defined; got saturate=False")
    mode, key = rounding(rounding_mode, key, roundings)
    return form, saturate, mode, key


def lsq_bounds(bits, signed) -> tuple[int, int]:
    """LSQ's $(Q_N, Q_P)$: $(2^{b-1}, 2^{b-1} - 1)$ signed (which needs $b \\ge 2$), $(0, 2^b - 1)$ unsigned."""
    bits = validate.integer("bits", bits, lo=1, hi=16)
    signed = validate.boolean("signed", signed)
    if signed and bits < 2:
        raise ValueError(f"signed LSQ needs bits >= 2 (so that Qp = 2**(bits-1) - 1 >= 1), got bits={bits}")
    return (2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def mx_block_size(block_size, max_block) -> int:
    """An MX block size: a power of two in `[1, max_block]`."""
    bs = validate.integer("block_size", block_size, lo=1, hi=max_block)
    if bs & (bs - 1):
        raise ValueError(f"block_size must be a power of two, got {bs}")
    return bs


def gptq_options(bits, zero_format, bit_widths, zero_formats) -> tuple[int, int, int]:
    """The GPTQ layout's options: `bits` in `bit_widths`, `zero_format` in `zero_formats` (`"v1"` or `"v2"`).

    Returns `(bits, codes per int32 word, the zero-point offset: 1 for "v1", 0 for "v2")`.
    """
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"bits must be an int, got {type(bits).__name__} {bits!r}")
    if bits not in bit_widths:
        raise ValueError(f"bits must be one of 2, 4, 8 (3-bit GPTQ is not covered), got {bits}")
    zero_format = validate.choice("zero_format", zero_format, zero_formats)
    return int(bits), 32 // int(bits), 1 if zero_format == "v1" else 0


def packed_multiple(what, n, per, bits) -> None:
    """Raise `ValueError` unless `n` (the size named `what`) is a multiple of `per`, the codes per int32 word."""
    if n % per:
        raise ValueError(f"{what} = {n} must be a multiple of {per} ({per} codes of {bits} bits per int32)")


def compressed_tensors_options(bits, packed_dim) -> tuple[int, int]:
    """The pack-quantized format's options: `bits` in `[1, 8]`, `packed_dim` 0 or 1."""
    b = validate.integer("bits", bits, lo=1, hi=8)
    dim = validate.integer("packed_dim", packed_dim, lo=0, hi=1)
    return b, dim


def paired(grads, gammas) -> None:
    """Raise `ValueError` unless the sequences `grads` and `gammas` have one entry each for the same layers."""
    if len(grads) != len(gammas):
        raise ValueError(f"grads has {len(grads)} arrays but gammas has {len(gammas)}; they pair up one to one")
