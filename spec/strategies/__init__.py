"""Hypothesis strategies of valid inputs, for every registry entry: public, so other projects can reuse them.

They are built to hit the places where implementations disagree: ties (arrays are filled with repeated values),
signed zeros, subnormals, exact x.5 rounding midpoints (scales with short mantissas that are not powers of
two), the largest finite floats, all-equal and one-element arrays, empty arrays where they are meaningful.
Every strategy draws a `spec.entry.Case`. One namespace, `spec.strategies`; one submodule per reference module
(`spec/strategies/quantization/affine.py` for `reference/quantization/affine.py`), the shared building blocks
in `spec.strategies.base`.
"""

from .base import *  # noqa: F403
from .codecs.awq import *  # noqa: F403
from .codecs.compressed_tensors import *  # noqa: F403
from .codecs.gguf import *  # noqa: F403
from .codecs.gptq import *  # noqa: F403
from .codecs.nibbles import *  # noqa: F403
from .codecs.nvfp4 import *  # noqa: F403
from .core.exact import *  # noqa: F403
from .core.linalg import *  # noqa: F403
from .core.random import *  # noqa: F403
from .core.reduce import *  # noqa: F403
from .core.rounding import *  # noqa: F403
from .core.select import *  # noqa: F403
from .core.transcendental import *  # noqa: F403
from .posttraining.adaround import *  # noqa: F403
from .posttraining.halfquadratic import *  # noqa: F403
from .posttraining.obs import *  # noqa: F403
from .posttraining.rotation import *  # noqa: F403
from .posttraining.scaling import *  # noqa: F403
from .pruning.groups import *  # noqa: F403
from .pruning.lottery import *  # noqa: F403
from .pruning.magnitude import *  # noqa: F403
from .pruning.random import *  # noqa: F403
from .pruning.regularization import *  # noqa: F403
from .pruning.saliency import *  # noqa: F403
from .pruning.schedules import *  # noqa: F403
from .pruning.slimming import *  # noqa: F403
from .pruning.sparse_formats import *  # noqa: F403
from .pruning.structured import *  # noqa: F403
from .quantization.affine import *  # noqa: F403
from .quantization.binary import *  # noqa: F403
from .quantization.codebook import *  # noqa: F403
from .quantization.conventions import *  # noqa: F403
from .quantization.dorefa import *  # noqa: F403
from .quantization.dynamic import *  # noqa: F403
from .quantization.floats import *  # noqa: F403
from .quantization.lsq import *  # noqa: F403
from .quantization.mx import *  # noqa: F403
from .quantization.nf4 import *  # noqa: F403
from .quantization.observers import *  # noqa: F403
from .quantization.packing import *  # noqa: F403
from .quantization.pact import *  # noqa: F403
from .quantization.power_of_two import *  # noqa: F403
from .quantization.ternary import *  # noqa: F403
