"""Registry entries for `reference.core` (exact primitives), one module per reference module."""
