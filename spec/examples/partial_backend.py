"""A backend that implements two algorithms, one under a misspelled name, to show how `pqref verify` counts it.

`tree_sum` is the reference's; `round_half_awy` (sic) is not `round_half_away`, so verify finds no
`round_half_away`, reports it as `missing` and exits with status 3: asked for, not checked.
"""

from reference import round_half_away as round_half_awy  # noqa: F401
from reference import tree_sum  # noqa: F401
