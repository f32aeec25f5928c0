"""Quantization algorithms."""

from .affine import (
    dequantize,
    fake_quantize,
    fake_quantize_vjp,
    integer_range,
    minmax_qparams,
    qparams_from_range,
    quantize,
)

__all__ = [
    "dequantize", "fake_quantize", "fake_quantize_vjp", "integer_range", "minmax_qparams", "qparams_from_range",
    "quantize",
]  # fmt: skip
