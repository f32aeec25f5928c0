"""Training with compression: recipes, parametrizations, replay against the reference, export, channel removal.

torch-only by nature (it drives `torch.nn` modules), so this package has no twin in `reference/`; every
algorithm call in it is written once against a backend (`torch_backend.nn.backend`) and runs on torch for
training and on the NumPy reference for `Compressor.replay`, which proves the results equal.
"""

from reference.checkpoint import Checkpoint, CheckpointError
from torch_backend.nn.activations import ActivationQuant, AffineActivation, PACTActivation
from torch_backend.nn.calibration import calibrate
from torch_backend.nn.compressions import AffineQuant, Compression, Mask
from torch_backend.nn.compressor import Compressor, ReplayRow, compress
from torch_backend.nn.export import export_gptq, export_safetensors, load_safetensors
from torch_backend.nn.policies import ALGORITHMS
from torch_backend.nn.recipe import Recipe, RecipeError

__all__ = [
    "ALGORITHMS", "ActivationQuant", "AffineActivation", "AffineQuant", "Checkpoint", "CheckpointError",
    "Compression", "Compressor", "Mask", "PACTActivation", "Recipe", "RecipeError", "ReplayRow", "calibrate", "compress",
    "export_gptq", "export_safetensors", "load_safetensors",
]  # fmt: skip
