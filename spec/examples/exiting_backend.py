"""A backend that tries to end the process that checks it, to show that `pqref verify` survives it.

It is the NumPy reference except for:

- `round_half_away`, which calls `sys.exit(0)` (a `SystemExit` exception: a mismatch on every case);
- `apply_mask`, which raises `KeyboardInterrupt` although nobody pressed Ctrl-C (a mismatch on every case);
- `tree_sum`, which ends its process at once with `os._exit(0)`, past every `except` (the row says `crashed`;
  verify starts a fresh worker process for the algorithms after it).
"""

import os
import sys

from reference import *  # noqa: F403


def round_half_away(x):
    sys.exit(0)


def apply_mask(w, mask):
    raise KeyboardInterrupt


def tree_sum(x, axis=None):
    os._exit(0)
