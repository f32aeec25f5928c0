"""pqref's NumPy reference: one small pure function per algorithm, written to be read. It never imports torch.

Every public name here has a twin of the same name and parameters in `torch_backend`, and the two agree bit for
bit on every valid input (see `spec/` and `pqref verify`).
"""

from .codecs import *  # noqa: F403
from .codecs import __all__ as _codecs
from .core import *  # noqa: F403
from .core import __all__ as _core
from .posttraining import *  # noqa: F403
from .posttraining import __all__ as _posttraining
from .pruning import *  # noqa: F403
from .pruning import __all__ as _pruning
from .quantization import *  # noqa: F403
from .quantization import __all__ as _quantization

__all__ = [*_core, *_quantization, *_pruning, *_posttraining, *_codecs]
