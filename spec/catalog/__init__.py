"""The registry's entries, laid out one-to-one with `reference/`: `spec/catalog/quantization/affine.py` holds the
entries of `reference/quantization/affine.py`, and nothing else; `spec.catalog.common` holds the helpers that
several of them share. `spec.registry.CATALOG` lists the modules in the order of `pqref list`."""
