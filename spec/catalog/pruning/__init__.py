"""Registry entries for `reference.pruning` (pruning), one module per reference module."""
