"""Strategies of valid inputs for `reference.codecs`, one module per reference module.

- The packed layouts (`gptq`, `awq`, ...): Packed words are drawn as arbitrary int32 bit patterns (every pattern is
  a valid packed word); codes and zero points cover their whole ranges, the ends included; float16 scales include
  signed zeros, subnormals and +-65504; `g_idx` is either GPTQ's contiguous `i // group_size` or an arbitrary
  (act-order) assignment.
"""
