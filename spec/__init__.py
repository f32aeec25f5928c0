"""pqref's contract: the registry of algorithms, their valid inputs, invariants, goldens and shared checks.

`spec.registry.REGISTRY` maps each algorithm's name to its `Entry`; `spec.strategies` holds the Hypothesis
strategies of valid inputs; `reference.common.validate` the shared wording of every input error. Importing `spec` imports
no backend.
"""
