"""Apply a recipe to a model and drive it during training: masks on schedule, replay against the reference.

```python
compressor = compress(model, recipe)       # validates the whole recipe first, then registers parametrizations
for step, (x, y) in enumerate(loader):
    compressor.step(step)                  # mask updates due at this step
    loss = loss_fn(model(x), y)
    loss.backward()
    compressor.before_optimizer_step()     # e.g. the slimming L1 subgradient on batch-norm scales
    optimizer.step()
report = compressor.replay()               # every compressed tensor recomputed by the NumPy reference
model = compressor.finalize()              # plain weights, no parametrizations
```
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from torch_backend.nn import policies
from torch_backend.nn.compressions import Compression
from torch_backend.nn.recipe import Recipe, RecipeError


@dataclass
class ReplayRow:
    tensor: str
    algorithms: str
    elements: int
    match: bool
    detail: str = ""


class Compressor:
    """The compression state of one model: its policies, the step counter, and what they registered."""

    def __init__(self, model: nn.Module, recipe: Recipe, policy_list: list):
        self.model, self.recipe, self.policies = model, recipe, policy_list
        self.last_step = -1

    # ---- training ------------------------------------------------------------------------------------------
    def step(self, step: int) -> None:
        """Run the updates due at `step` (mask schedules). Call once per training step, before the forward."""
        for p in self.policies:
            p.on_step(step)
        self.last_step = step

    def next_round(self) -> None:
        """Lottery tickets: prune and rewind, for every `lottery` rule (see `policies.Lottery`)."""
        for p in self.policies:
            if hasattr(p, "next_round"):
                p.next_round()

    def before_optimizer_step(self) -> None:
        """Gradient-side terms (the slimming L1 subgradient), after `backward` and before `optimizer.step()`."""
        for p in self.policies:
            p.before_optimizer_step()

    # ---- inspection ----------------------------------------------------------------------------------------
    def compressed_tensors(self):
        """`(name, module, tensor_name, [compressions])` for every parametrized tensor, in module order."""
        for mname, module in self.model.named_modules():
            if parametrize.is_parametrized(module):
                for tname, plist in module.parametrizations.items():
                    chain = [c for c in plist if isinstance(c, Compression)]
                    if chain:
                        yield f"{mname}.{tname}" if mname else tname, module, tname, chain

    def replay(self) -> list[ReplayRow]:
        """Recompute every compressed tensor with the NumPy reference from the stored master weights and state,
        and compare it bit for bit with what the torch forward produces; plus the mask updates checked on the way."""
        rows = []
        for name, module, tname, chain in self.compressed_tensors():
            master = module.parametrizations[tname].original.detach()
            with torch.no_grad():
                got = to_numpy(getattr(module, tname))
            want = to_numpy(master)
            for c in chain:
                want = c.replay(want)
            match = want.dtype == got.dtype and np.array_equal(_bits(want), _bits(got))
            algos = " + ".join(c.algorithm for c in chain)
            rows.append(ReplayRow(name, algos, int(master.numel()), match))
        for p in self.policies:
            rows.extend(p.replay_rows())
        return rows

    def summary(self) -> dict:
        """Sparsity of the compressed tensors, and bits per weight over all parameters (uncompressed: 32)."""
        total = pruned = 0
        bits = 0.0
        compressed = set()
        for _, module, tname, chain in self.compressed_tensors():
            w = module.parametrizations[tname].original
            compressed.add(id(w))
            n = w.numel()
            total += n
            pruned += sum(n - int(c.mask.sum()) for c in chain if c.kind == "pruning")
            bits += n * min([32.0] + [c.bits_per_weight() for c in chain if c.kind != "pruning"])
        other = sum(p.numel() for p in self.model.parameters() if id(p) not in compressed)
        everything = total + other
        return {
            "sparsity": pruned / total if total else 0.0,
            "bits_per_weight": (bits + 32.0 * other) / everything if everything else 32.0,
        }

    # ---- state -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"last_step": self.last_step, "policies": [p.state_dict() for p in self.policies]}

    def load_state_dict(self, state: dict) -> None:
        self.last_step = state["last_step"]
        for p, s in zip(self.policies, state["policies"], strict=True):
            p.load_state_dict(s)

    def finalize(self) -> nn.Module:
        """Bake every compression into a plain weight and remove the parametrizations and hooks."""
        for p in self.policies:
            p.finalize()
        for _, module, tname, _ in list(self.compressed_tensors()):
            parametrize.remove_parametrizations(module, tname, leave_parametrized=True)
        return self.model


def compress(model: nn.Module, recipe, *, verify_masks: bool = True, record_activations: bool = True) -> Compressor:
    """Validate `recipe` against `model`, then register its compressions. Nothing is changed if any rule is bad.

    `verify_masks`: recompute every mask update with the NumPy reference when it happens. `record_activations`:
    keep the last call of each activation quantizer (a copy of its input and output) for `replay`; turn it off
    for large models, where the two activation-sized copies per quantized layer cost memory, and `replay` then
    lists those quantizers as not recorded.
    """
    recipe = Recipe.parse(recipe)
    planned = []
    for rule in recipe.rules:
        cls = policies.ALGORITHMS.get(rule.algorithm)
        if cls is None:
            known = ", ".join(sorted(policies.ALGORITHMS))
            raise RecipeError(f"{rule.where()}: unknown algorithm {rule.algorithm!r}; known: {known}")
        targets = recipe.match(model, rule)
        if not targets:
            raise RecipeError(f"{rule.where()}: the pattern {rule.modules!r} matches no module of the model")
        try:
            params = cls.validate(dict(rule.params))
            cls.check_targets(targets, rule.tensor)
        except (TypeError, ValueError) as exc:
            raise RecipeError(f"{rule.where()}: {exc}") from None
        planned.append((cls, rule, targets, params))
    for cls, rule, targets, params in planned:
        try:
            cls.check_shapes(targets, rule.tensor, params)
        except (TypeError, ValueError) as exc:
            raise RecipeError(f"{rule.where()}: {exc}") from None
    policy_list = [
        cls(rule, targets, params, verify_masks=verify_masks, record_activations=record_activations)
        for cls, rule, targets, params in planned
    ]
    return Compressor(model, recipe, policy_list)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy copy of a tensor; bfloat16 becomes ml_dtypes.bfloat16 (the same bits)."""
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
    return t.numpy().copy()


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" else a
