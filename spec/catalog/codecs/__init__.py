"""Registry entries for `reference.codecs` (checkpoint codecs), one module per reference module."""
