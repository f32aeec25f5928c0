"""Declarative compression recipes: which modules, which algorithm, which parameters.

A recipe is a list of rules (a dict with a `rules` list, or a TOML file of `[[rules]]` tables):

```toml
[[rules]]
modules = "features.*"        # fnmatch pattern over module names (model.named_modules())
types = ["Conv2d", "Linear"]  # optional: only modules of these class names
algorithm = "magnitude"       # see ALGORITHMS
sparsity = 0.9
schedule = { start = 0, end = 300, every = 20 }
```

Every rule is checked before anything touches the model: unknown algorithms, unknown or invalid parameters and
patterns that match no module fail with a `RecipeError` that names the rule.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import tomllib
from torch import nn


class RecipeError(ValueError):
    """A recipe rule is invalid; the message names the rule."""


@dataclass(frozen=True)
class Rule:
    index: int
    modules: str
    algorithm: str
    params: dict = field(default_factory=dict)
    tensor: str = "weight"
    types: tuple[str, ...] = ()

    def where(self) -> str:
        return f"rule {self.index} ({self.algorithm!r} on {self.modules!r})"


@dataclass(frozen=True)
class Recipe:
    rules: tuple[Rule, ...]
    name: str = "recipe"

    @classmethod
    def parse(cls, source, name=None) -> Recipe:
        """A recipe from a dict `{"rules": [...]}`, a list of rule dicts, or a path to a TOML file."""
        if isinstance(source, Recipe):
            return source
        fallback = "recipe"
        if isinstance(source, str | Path):
            path = Path(source)
            try:
                source = tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise RecipeError(f"cannot read recipe {path}: {exc}") from None
            fallback = path.stem
        if isinstance(source, dict):
            name = name or source.get("name")
            extra = set(source) - {"rules", "name"}
            if extra:
                raise RecipeError(f"unknown recipe key(s) {sorted(extra)}; a recipe has 'name' and 'rules'")
            source = source.get("rules", [])
        if not isinstance(source, list | tuple):
            raise RecipeError(f"a recipe is a list of rules, got {type(source).__name__}")
        rules = []
        for i, raw in enumerate(source):
            if not isinstance(raw, dict):
                raise RecipeError(f"rule {i} must be a table/dict, got {type(raw).__name__}")
            raw = dict(raw)
            modules = raw.pop("modules", None)
            algorithm = raw.pop("algorithm", None)
            tensor = raw.pop("tensor", "weight")
            types = raw.pop("types", ())
            if isinstance(types, str):
                types = (types,)
            if not isinstance(types, list | tuple) or not all(isinstance(t, str) for t in types):
                raise RecipeError(f"rule {i}: 'types' must be a list of module class names, got {types!r}")
            if not isinstance(modules, str) or not modules:
                raise RecipeError(f"rule {i} needs 'modules', a name pattern such as 'features.*'")
            if not isinstance(algorithm, str):
                raise RecipeError(f"rule {i} needs 'algorithm' (one of the names in pqref's training algorithms)")
            rules.append(Rule(i, modules, algorithm, raw, tensor, tuple(types)))
        return cls(tuple(rules), name or fallback)

    def match(self, model: nn.Module, rule: Rule) -> list[tuple[str, nn.Module]]:
        """The modules a rule selects, in `named_modules` order."""
        return [
            (n, m)
            for n, m in model.named_modules()
            if n and fnmatch.fnmatchcase(n, rule.modules) and (not rule.types or type(m).__name__ in rule.types)
        ]
