"""Apply a recipe to a model and drive it during training: masks on schedule, replay against the reference.

```python
compressor = compress(model, recipe)       # validates the whole recipe, registers it, runs step 0's updates
for step, (x, y) in enumerate(loader):
    compressor.step(step)                  # mask updates due since the last step (step 0's already ran)
    loss = loss_fn(model(x), y)
    loss.backward()
    compressor.before_optimizer_step()     # e.g. the slimming L1 subgradient on batch-norm scales
    optimizer.step()
report = compressor.replay()               # every compressed tensor recomputed by the NumPy reference
model = compressor.finalize()              # plain weights, no parametrizations, no activation quantizers
```

**Atomic.** `compress` checks every rule against every matched tensor first (parameters, shapes, dtypes,
conflicts between rules, a dry run of every algorithm call) and raises `RecipeError` naming the rule and the
module before it touches the model; if registering still fails, everything registered is removed again, so a
failed `compress` leaves the model exactly as it was (same parameters, same objects, same classes).

**Steps.** `compress` runs the updates due at step 0 (as `torch.nn.utils.prune` applies its mask at once: a
one-shot recipe prunes the model right away). `step(s)` runs every update scheduled in `(last step, s]` once, with
the schedule's value at `s` (skipped steps are not lost); `s` equal to the last step does nothing, and a step
before it raises `ValueError`.

**Copies.** `copy.deepcopy(model)` and `copy.deepcopy(compressor)` (which copies its model) give fully independent
objects: `finalize`, `step`, a new `compress` or `remove_channels` on one leave the other bit-identical and working.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from reference.common import validate
from torch_backend import distributed
from torch_backend.nn import activations, policies
from torch_backend.nn.backend import same_bits, to_numpy
from torch_backend.nn.compressions import Compression
from torch_backend.nn.policies import ReplayRow
from torch_backend.nn.recipe import Recipe, RecipeError

__all__ = ["Compressor", "ReplayRow", "compress"]


class Compressor:
    """The compression state of one model: its policies, the step counter, and what they registered."""

    def __init__(self, model: nn.Module, recipe: Recipe, policy_list: list):
        self.model, self.recipe, self.policies = model, recipe, policy_list
        self.last_step = -1
        self.finalized = False

    def __repr__(self) -> str:
        tensors = (
            len({id(module.parametrizations[t].original) for _, module, t, _ in self.compressed_tensors()})
            if (not self.finalized)
            else 0
        )
        state = "finalized" if self.finalized else f"last step {self.last_step}, {tensors} compressed tensor(s)"
        lines = [f"Compressor(recipe {self.recipe.name!r}, {state})"]
        lines += [f"  {p!r}" for p in self.policies]
        return "\n".join(lines)

    def _alive(self, what: str) -> None:
        if self.finalized:
            raise RuntimeError(f"Compressor.{what}: this compressor was finalized; its model is a plain model now")

    # ---- training ------------------------------------------------------------------------------------------
    def step(self, step: int) -> None:
        """Run the updates due in `(last step, step]` (mask schedules). Call once per training step, before the
        forward; the step numbers must not decrease."""
        self._alive("step")
        step = validate.integer("step", step, lo=0)
        if step < self.last_step:
            raise ValueError(
                f"step must not go backwards: got {step} after {self.last_step} (to start over, compress a fresh "
                f"model or load_state_dict a checkpoint)"
            )
        if step == self.last_step:
            return
        for p in self.policies:
            if p.due(self.last_step, step):
                p.on_step(step)
        self.last_step = step

    def next_round(self) -> None:
        """Lottery tickets: prune and rewind, for every `lottery` rule (see `policies.Lottery`)."""
        self._alive("next_round")
        lottery = [p for p in self.policies if isinstance(p, policies.Lottery)]
        if not lottery:
            raise RuntimeError("Compressor.next_round: the recipe has no 'lottery' rule")
        for p in lottery:
            p.next_round()

    def before_optimizer_step(self) -> None:
        """Gradient-side terms (the slimming L1 subgradient), after `backward` and before `optimizer.step()`."""
        self._alive("before_optimizer_step")
        for p in self.policies:
            p.before_optimizer_step()

    # ---- inspection ----------------------------------------------------------------------------------------
    def compressed_tensors(self):
        """`(name, module, tensor_name, [compressions])` for every tensor this compressor parametrized, in module
        order (a tied tensor once per module that holds it)."""
        ours = {id(c) for p in self.policies for c in p.compressions()}
        for mname, module in self.model.named_modules():
            if parametrize.is_parametrized(module):
                for tname, plist in module.parametrizations.items():
                    chain = [c for c in plist if isinstance(c, Compression)]
                    if any(id(c) in ours for c in chain):
                        yield f"{mname}.{tname}" if mname else tname, module, tname, chain

    def replay(self) -> list[ReplayRow]:
        """Recompute every compressed tensor with the NumPy reference from the stored master weights and state,
        and compare it bit for bit with what the torch forward produces; plus the mask updates checked on the way
        and the last call of every activation quantizer."""
        self._alive("replay")
        rows = []
        for name, module, tname, chain in self.compressed_tensors():
            master = module.parametrizations[tname].original
            with torch.no_grad():
                got = to_numpy(_forward_weight(module, tname))
            want = to_numpy(master)
            for c in chain:
                want = c.replay(want)
            algos = " + ".join(c.algorithm for c in chain)
            rows.append(ReplayRow(name, algos, int(master.numel()), same_bits(want, got)))
        for p in self.policies:
            rows.extend(p.replay_rows())
        return rows

    def summary(self) -> dict:
        """Sparsity of the compressed tensors, and bits per weight over all parameters (uncompressed: 32)."""
        self._alive("summary")
        total = pruned = 0
        bits = 0.0
        compressed = set()
        for _, module, tname, chain in self.compressed_tensors():
            w = module.parametrizations[tname].original
            if id(w) in compressed:
                continue  # a tied tensor counts once
            compressed.add(id(w))
            n = w.numel()
            total += n
            masks = [c.keep_mask() for c in chain if c.keep_mask() is not None]
            if masks:
                keep = masks[0]
                for m in masks[1:]:
                    keep = keep & m
                pruned += n - int(keep.sum())
            bits += n * min([32.0] + [c.bits_per_weight() for c in chain])
        other = sum(p.numel() for p in self.model.parameters() if id(p) not in compressed)
        everything = total + other
        return {
            "sparsity": pruned / total if total else 0.0,
            "bits_per_weight": (bits + 32.0 * other) / everything if everything else 32.0,
        }

    # ---- state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The compressor's own state (step counter, mask-check counts, schedule progress); the masks, scales and
        observer statistics are in `model.state_dict()`."""
        return {"last_step": self.last_step, "policies": [p.state_dict() for p in self.policies]}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`; checked first, so a state of another recipe changes nothing."""
        self._alive("load_state_dict")
        if not isinstance(state, dict) or set(state) != {"last_step", "policies"}:
            raise ValueError("a Compressor state is a dict with keys 'last_step' and 'policies'")
        last = state["last_step"]
        if isinstance(last, bool) or not isinstance(last, int) or last < -1:
            raise ValueError(f"state['last_step'] must be an int >= -1, got {last!r}")
        if not isinstance(state["policies"], list) or len(state["policies"]) != len(self.policies):
            n = len(state["policies"]) if isinstance(state["policies"], list) else state["policies"]
            raise ValueError(f"the state has {n} rule state(s) but this recipe has {len(self.policies)} rule(s)")
        trial = [p.__class__.__new__(p.__class__) for p in self.policies]
        for t, p, s in zip(trial, self.policies, state["policies"], strict=True):
            t.rule = p.rule
            t.name = p.name
            t.load_state_dict(s)  # validates without touching p
        for p, s in zip(self.policies, state["policies"], strict=True):
            p.load_state_dict(s)
        self.last_step = last

    def finalize(self) -> nn.Module:
        """Bake every compression into a plain weight and remove the parametrizations and activation quantizers.

        The result is the plain architecture: its `state_dict` has exactly the keys of an uncompressed model, and
        loads into a fresh one. Weights hold their compressed values (a tied tensor stays tied); activation
        quantization is not part of a plain model, so outputs are no longer fake-quantized (export the model
        *before* finalizing to keep the activation quantizers' parameters in the file). The compressor cannot be
        used afterwards.
        """
        self._alive("finalize")
        tensors = list(self.compressed_tensors())
        for name, module, tname, _ in tensors:
            if distributed.is_sharded(module.parametrizations[tname].original):
                raise RuntimeError(
                    f"Compressor.finalize: {name} is sharded (a DTensor); finalize the unsharded model: save a "
                    f"sharded checkpoint (torch.distributed.checkpoint) and load it into the model in one process"
                )
        for p in self.policies:
            p.finalize()
        baked = set()
        for _, module, tname, _ in tensors:
            original = module.parametrizations[tname].original
            first = id(original) not in baked
            baked.add(id(original))
            # the first owner bakes the shared parameter in place (its identity is kept); the others take it back
            policies.unregister(module, tname, leave_parametrized=first)
        self.finalized = True
        return self.model


def _forward_weight(module, tname) -> torch.Tensor:
    """The weight the module's forward uses: the parametrization chain on the master weight (gathered first when
    it is sharded, as FSDP2 gathers it before the forward)."""
    plist = module.parametrizations[tname]
    if not distributed.is_sharded(plist.original):
        return getattr(module, tname)
    w = distributed.full_tensor(plist.original.detach())
    for c in plist:
        w = c.whole(w)
    return w


def compress(model: nn.Module, recipe, *, verify_masks: bool = True, record_activations: bool = True) -> Compressor:
    """Validate `recipe` against `model`, then register its compressions and run step 0's updates. If anything is
    wrong, `RecipeError` names the rule (and module) and the model is left exactly as it was.

    `verify_masks`: recompute every mask update with the NumPy reference when it happens. `record_activations`:
    keep the last call of each activation quantizer (a copy of its input and output) for `replay`; turn it off
    for large models, where the two activation-sized copies per quantized layer cost memory, and `replay` then
    lists those quantizers as not recorded.
    """
    return apply_recipe(model, recipe, verify_masks, record_activations, post_training=False)


def apply_recipe(model, recipe, verify_masks, record_activations, *, post_training) -> Compressor:
    """The shared path of `compress` and `calibrate`: check, plan and register a recipe atomically. With
    `post_training`, rules of post-training algorithms (`gptq`, `sparsegpt`, ...) are allowed too, registered
    uncalibrated (`torch_backend.nn.calibrate` runs them)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    validate.boolean("verify_masks", verify_masks)
    validate.boolean("record_activations", record_activations)
    recipe = Recipe.parse(recipe)
    planned = []
    for rule in recipe.rules:
        cls = policies.ALGORITHMS.get(rule.algorithm)
        if cls is None:
            known = ", ".join(sorted(policies.ALGORITHMS))
            raise RecipeError(f"{rule.where()}: unknown algorithm {rule.algorithm!r}; known: {known}")
        if getattr(cls, "post_training", False) and not post_training:
            raise RecipeError(
                f"{rule.where()}: {rule.algorithm!r} is a post-training algorithm: run it with "
                f"torch_backend.nn.calibrate(model, recipe, data), which feeds it the layers' calibration inputs"
            )
        with _as_recipe_error(rule):
            params = cls.validate(dict(rule.params))
        matched = recipe.match(model, rule)
        with _as_recipe_error(rule):
            targets = cls.make_targets(model, rule, matched)
        planned.append(cls(rule, targets, params, verify_masks=verify_masks, record_activations=record_activations))
    _check_conflicts(planned)
    for p in planned:
        with _as_recipe_error(p.rule):
            p.check()
    compressor = Compressor(model, recipe, planned)
    try:
        for p in planned:
            p.attach()
        compressor.step(0)
    except BaseException:
        _rollback(planned)
        raise
    return compressor


class _as_recipe_error:
    """A `TypeError`/`ValueError` inside the block becomes a `RecipeError` naming the rule."""

    def __init__(self, rule):
        self.rule = rule

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, TypeError | ValueError) and not isinstance(exc, RecipeError):
            raise RecipeError(f"{self.rule.where()}: {exc}") from None
        return False


def _check_conflicts(planned) -> None:
    """One pruning algorithm and one weight quantizer per tensor, one activation quantizer per module."""
    owner: dict = {}
    for p in planned:
        for obj, kind, what in p.touched():
            key = (id(obj), kind)
            other = owner.get(key)
            if other is not None and other is not p:
                rule = {"pruning": "pruning algorithm", "quantization": "weight quantizer"}.get(
                    kind, "activation quantizer"
                )
                raise RecipeError(
                    f"{p.rule.where()} conflicts with {other.rule.where()}: both apply a {rule} to {what}; one "
                    f"tensor takes at most one pruning algorithm and one weight quantizer, one module's output one "
                    f"activation quantizer"
                )
            owner[key] = p


def _rollback(planned) -> None:
    """Remove everything `attach` registered (the tensors were unparametrized before `compress`)."""
    for p in planned:
        p.detach()
    for p in planned:
        for t in p.targets:
            for _, module, attr in t.owners:
                if parametrize.is_parametrized(module, attr):
                    policies.unregister(module, attr, leave_parametrized=False)


def is_compressed(model: nn.Module) -> bool:
    """Whether `model` carries pqref compressions or activation quantizers (a Compressor that is not finalized)."""
    for module in model.modules():
        if activations.quantizer_of(module) is not None:
            return True
        if parametrize.is_parametrized(module) and any(
            isinstance(c, Compression) for plist in module.parametrizations.values() for c in plist
        ):
            return True
    return False
