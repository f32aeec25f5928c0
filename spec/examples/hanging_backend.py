"""A backend whose functions never return, to show that `pqref verify --timeout` stops them.

It is the NumPy reference except for `tree_sum` (a pure-Python endless loop) and `apply_mask` (a sleep in C, which
no signal handler can interrupt before it ends). Verify kills the worker process running a case that takes longer
than `--timeout` seconds and reports the row as `timeout`:
`pqref verify --backend spec.examples.hanging_backend --algorithm tree_sum --timeout 5`.
"""

import time

from reference import *  # noqa: F403


def tree_sum(x, axis=None):
    while True:
        pass


def apply_mask(w, mask):
    time.sleep(10**6)
