"""Declarative compression recipes: which modules, which tensor, which algorithm, which parameters.

A recipe is a list of rules (a dict with a `rules` list, a list of rule dicts, or a TOML file of `[[rules]]`
tables):

```toml
[[rules]]
modules = "features.*"        # fnmatch pattern over module names (model.named_modules())
types = ["Conv2d", "Linear"]  # optional: only modules that are instances of these classes
algorithm = "magnitude"       # see torch_backend.nn.ALGORITHMS
sparsity = 0.9
schedule = { start = 0, end = 300, every = 20 }
```

Keys of a rule:

- `modules` (required): an `fnmatch` pattern over the names `model.named_modules()` gives (`"*"`, `"layer1.*"`,
  `"[!0]*"`); the root module (name `""`) is never matched.
- `types` (optional): a class name or a list of them, or (in Python) the classes themselves. A name is looked up
  in `torch.nn` (`"Conv2d"`, `"Linear"`, `"MultiheadAttention"`), then among the classes of the model's modules
  and their bases (your own `"MyBlock"`); a module matches if it is an *instance* of one of them, so `"Linear"`
  also selects subclasses such as the `out_proj` of `nn.MultiheadAttention`. An unknown name is an error (with
  the closest names), never a silent skip.
- `tensor` (optional, default `"weight"`): the parameter to compress, by its attribute name on the module:
  `"bias"`, `"in_proj_weight"` of `nn.MultiheadAttention`, `"weight_ih_l0"` of `nn.LSTM`. It must be an
  `nn.Parameter` (a buffer such as `running_mean` is rejected). Activation rules (`activation_affine`, `pact`)
  quantize the module's *output* and take no `tensor`.
- `algorithm` (required) and the algorithm's parameters.

Every rule is checked against the model before anything touches it (`compress`): an unknown algorithm or
parameter, a pattern or type that selects nothing, a tensor that is missing, not a parameter or of the wrong
dtype, a parameter value that would fail on a matched tensor's shape, and two rules that conflict on one tensor
or module all raise `RecipeError` naming the rule, and the model is left exactly as it was.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import tomllib
from torch import nn


class RecipeError(ValueError):
    """A recipe rule is invalid for this model; the message names the rule (and the module, where one is at
    fault). Raised before the model is changed."""


@dataclass(frozen=True)
class Rule:
    index: int
    modules: str
    algorithm: str
    params: dict = field(default_factory=dict)
    tensor: str = "weight"
    types: tuple = ()

    def where(self) -> str:
        return f"rule {self.index} ({self.algorithm!r} on {self.modules!r})"


RULE_KEYS = ("modules", "algorithm", "tensor", "types")


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
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise RecipeError(f"cannot read recipe {path}: {exc}") from None
            fallback = path.stem
        if isinstance(source, dict):
            name = name or source.get("name")
            extra = set(source) - {"rules", "name"}
            if extra:
                raise RecipeError(f"unknown recipe key(s) {sorted(extra)}; a recipe has 'name' and 'rules'")
            if name is not None and not isinstance(name, str):
                raise RecipeError(f"the recipe's 'name' must be a string, got {type(name).__name__} {name!r}")
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
            if isinstance(types, str | type):
                types = (types,)
            if not isinstance(types, list | tuple) or not all(
                isinstance(t, str) or (isinstance(t, type) and issubclass(t, nn.Module)) for t in types
            ):
                raise RecipeError(f"rule {i}: 'types' must be a list of module class names (or classes), got {types!r}")
            if not isinstance(modules, str) or not modules:
                raise RecipeError(f"rule {i} needs 'modules', a name pattern such as 'features.*'")
            if not isinstance(algorithm, str):
                raise RecipeError(f"rule {i} needs 'algorithm' (one of the names in pqref's training algorithms)")
            if not isinstance(tensor, str) or not tensor:
                raise RecipeError(f"rule {i}: 'tensor' must be a parameter name such as 'weight', got {tensor!r}")
            rules.append(Rule(i, modules, algorithm, raw, tensor, tuple(types)))
        return cls(tuple(rules), name or fallback)

    def match(self, model: nn.Module, rule: Rule) -> list[tuple[str, nn.Module]]:
        """The modules a rule selects, in `named_modules` order; `RecipeError` if it selects none, saying whether
        the pattern or the types are the cause."""
        classes = resolve_types(model, rule)
        named = [(n, m) for n, m in model.named_modules() if n and fnmatch.fnmatchcase(n, rule.modules)]
        if not named:
            names = [n for n, _ in model.named_modules() if n]
            sample = ", ".join(repr(n) for n in names[:6]) + (", ..." if len(names) > 6 else "")
            raise RecipeError(
                f"{rule.where()}: the pattern {rule.modules!r} matches no module of the model "
                f"(module names are {sample or 'none: the model has no submodules'})"
            )
        if not classes:
            return named
        chosen = [(n, m) for n, m in named if isinstance(m, classes)]
        if not chosen:
            seen = sorted({type(m).__name__ for _, m in named})
            wanted = ", ".join(c.__name__ for c in classes)
            raise RecipeError(
                f"{rule.where()}: the pattern {rule.modules!r} matches {len(named)} module(s), but none is an "
                f"instance of {wanted} (their types: {', '.join(seen)})"
            )
        return chosen


def resolve_types(model: nn.Module, rule: Rule) -> tuple[type, ...]:
    """The classes a rule's `types` name: classes as given; names from `torch.nn`, else from the classes (and
    bases) of the model's modules."""
    local = {}
    for m in model.modules():
        for c in type(m).__mro__:
            if isinstance(c, type) and issubclass(c, nn.Module):
                local.setdefault(c.__name__, c)
    out = []
    for t in rule.types:
        if isinstance(t, type):
            out.append(t)
            continue
        cls = getattr(nn, t, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            out.append(cls)
        elif t in local:
            out.append(local[t])
        else:
            known = [n for n in dir(nn) if isinstance(getattr(nn, n), type) and issubclass(getattr(nn, n), nn.Module)]
            close = difflib.get_close_matches(t, sorted(set(known) | set(local)), n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise RecipeError(
                f"{rule.where()}: unknown module type {t!r} in 'types': not a torch.nn class nor a class of the "
                f"model's modules{hint}"
            )
    return tuple(out)
