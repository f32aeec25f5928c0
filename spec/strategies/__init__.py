"""Hypothesis strategies of valid inputs, for every registry entry: public, so other projects can reuse them.

They are built to hit the places where implementations disagree: ties (arrays are filled with repeated values),
signed zeros, subnormals, exact x.5 rounding midpoints (scales with short mantissas that are not powers of
two), the largest finite floats, all-equal and one-element arrays, empty arrays where they are meaningful.
Every strategy draws a `spec.entry.Case`. One namespace, `spec.strategies`, split by family into submodules.
"""

from .base import *  # noqa: F403
from .base import _expand  # noqa: F401
from .codecs import *  # noqa: F403
from .exact import *  # noqa: F403
from .groups import *  # noqa: F403
from .lowbit import *  # noqa: F403
from .posttraining import *  # noqa: F403
from .quant_binary import *  # noqa: F403
from .quant_learned import *  # noqa: F403
from .quant_misc import *  # noqa: F403
from .sparsity_regularize import *  # noqa: F403
from .sparsity_scores import *  # noqa: F403
