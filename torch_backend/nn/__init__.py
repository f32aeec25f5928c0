"""Training with compression: recipes, parametrizations, replay against the reference, export, channel removal.

torch-only by nature (it drives `torch.nn` modules), so this package has no twin in `reference/`; everything it
computes on tensors goes through `torch_backend` functions, and `Compressor.replay` proves the results equal to
the reference's.
"""

from torch_backend.nn.compressions import AffineQuant, Compression, Mask
from torch_backend.nn.compressor import Compressor, ReplayRow, compress
from torch_backend.nn.export import export_safetensors, load_safetensors
from torch_backend.nn.policies import ALGORITHMS
from torch_backend.nn.recipe import Recipe, RecipeError

__all__ = [
    "ALGORITHMS", "AffineQuant", "Compression", "Compressor", "Mask", "Recipe", "RecipeError", "ReplayRow", "compress",
    "export_safetensors", "load_safetensors",
]  # fmt: skip
