"""Registry entries for `reference.quantization` (quantization), one module per reference module."""
