"""Training algorithms a recipe can name, each a `Policy`: what it registers on the model and when it updates.

| algorithm | kind | parameters |
|---|---|---|
| `magnitude` | pruning, per tensor | `sparsity`, optional `schedule = {start, end, every, initial}` (AGP cubic) or `at` |
| `global_magnitude` | pruning, ranked over all matched tensors | as `magnitude` |
| `ln_structured` | pruning of slices | `sparsity`, `p` (1, 2), `axis`, schedule or `at` |
| `nm` | N:M pruning | `n`, `m`, `axis`, `at` |
| `random` | pruning | `sparsity`, `seed`, `at` |
| `affine` | weight fake quantization, min-max scales each forward | `bits`, `symmetric`, `axis`, `group_size`, `rounding` |

Mask updates score the *masked* weights (pruned weights count as 0), so masks are nested as sparsity grows.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn.utils import parametrize

import reference as ref
import torch_backend as tb
from spec import validate
from torch_backend.nn.compressions import AffineQuant, Mask

ALGORITHMS: dict[str, type] = {}


def algorithm(cls):
    ALGORITHMS[cls.name] = cls
    return cls


class Policy:
    """One recipe rule applied to its matched modules."""

    name = ""
    PARAMS: dict = {}  # parameter -> (checker, default); a default of `validate.REQUIRED` means required

    def __init__(self, rule, targets, params, verify_masks=True):
        self.rule, self.targets, self.params, self.verify_masks = rule, targets, params, verify_masks
        self.checks = 0
        self.mismatches = 0
        self.attach()

    @classmethod
    def validate(cls, params: dict) -> dict:
        unknown = set(params) - set(cls.PARAMS)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; {cls.name!r} takes {sorted(cls.PARAMS)}")
        out = {}
        for key, (check, default) in cls.PARAMS.items():
            if key in params:
                out[key] = check(key, params[key])
            elif default is REQUIRED:
                raise ValueError(f"missing parameter {key!r}")
            else:
                out[key] = default
        return out

    @classmethod
    def check_targets(cls, targets, tensor):
        for name, module in targets:
            t = getattr(module, tensor, None)
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise ValueError(f"module {name!r} has no floating-point tensor {tensor!r}")

    @classmethod
    def check_shapes(cls, targets, tensor, params):
        """Shape checks that need the validated parameters (run for every rule before anything is registered)."""

    def tensors(self):
        yield from self.targets

    def attach(self):
        raise NotImplementedError

    def on_step(self, step):
        pass

    def before_optimizer_step(self):
        pass

    def replay_rows(self):
        from torch_backend.nn.compressor import ReplayRow

        if self.checks == 0:
            return []
        return [ReplayRow(f"{self.rule.where()} mask updates", self.name, self.checks, self.mismatches == 0)]

    def state_dict(self):
        return {"checks": self.checks, "mismatches": self.mismatches}

    def load_state_dict(self, state):
        self.checks, self.mismatches = state["checks"], state["mismatches"]

    def finalize(self):
        pass


REQUIRED = object()


def _schedule(key, value):
    if not isinstance(value, dict):
        raise TypeError(f"{key} must be a table with start, end, every (and optional initial), got {value!r}")
    unknown = set(value) - {"start", "end", "every", "initial"}
    if unknown:
        raise ValueError(f"{key} has unknown key(s) {sorted(unknown)}")
    start = validate.integer(f"{key}.start", value.get("start", 0), lo=0)
    end = validate.integer(f"{key}.end", value.get("end", REQUIRED) if "end" in value else None, lo=start + 1)
    every = validate.integer(f"{key}.every", value.get("every", 1), lo=1)
    initial = validate.fraction(f"{key}.initial", value.get("initial", 0.0))
    return {"start": start, "end": end, "every": every, "initial": initial}


def agp_sparsity(step, final, schedule):
    """Zhu & Gupta's cubic schedule, updated every `every` steps: `s_f + (s_i - s_f) (1 - (t - t0) / (t1 - t0))**3`.

    Before `start` the sparsity is `initial`; from `end` on it is `final`; in between, `t` is rounded down to the
    last update step. Python float arithmetic, the same for every backend.
    """
    start, end, every, initial = schedule["start"], schedule["end"], schedule["every"], schedule["initial"]
    if step < start:
        return initial
    if step >= end:
        return final
    t = start + (step - start) // every * every
    return final + (initial - final) * (1.0 - (t - start) / (end - start)) ** 3


class _Pruning(Policy):
    """Registers a `Mask` on every matched tensor; subclasses compute new masks."""

    def attach(self):
        self.masks = []
        for _, module in self.tensors():
            w = getattr(module, self.rule.tensor)
            m = Mask(w.shape, device=w.device)
            parametrize.register_parametrization(module, self.rule.tensor, m)
            self.masks.append((module, m))

    def _chain_index(self, module, mask):
        return list(module.parametrizations[self.rule.tensor]).index(mask)

    def _input(self, module, mask):
        """The weight this mask sees: the master weight through the compressions registered before it."""
        plist = module.parametrizations[self.rule.tensor]
        w = plist.original.detach()
        for c in list(plist)[: self._chain_index(module, mask)]:
            w = c(w)
        return w.float()  # float16 / bfloat16 weights are scored on their exact float32 widening

    def due(self, step):
        sched = self.params.get("schedule")
        if sched:
            return sched["start"] <= step <= sched["end"] and (step - sched["start"]) % sched["every"] == 0
        return step == self.params.get("at", 0)

    def target(self, step):
        sched = self.params.get("schedule")
        return agp_sparsity(step, self.params["sparsity"], sched) if sched else self.params["sparsity"]

    def on_step(self, step):
        if not self.due(step):
            return
        with torch.no_grad():
            inputs = [tb.apply_mask(self._input(mod, m), m.mask) for mod, m in self.masks]
            new = self.new_masks(inputs, step)
            if self.verify_masks:
                want = self.reference_masks([x.cpu().numpy() for x in inputs], step)
                for got, w in zip(new, want, strict=True):
                    self.checks += 1
                    self.mismatches += int(not np.array_equal(got.cpu().numpy(), w))
            for (_, m), mask in zip(self.masks, new, strict=True):
                m.mask.copy_(mask)

    def new_masks(self, inputs, step):
        raise NotImplementedError

    def reference_masks(self, inputs, step):
        raise NotImplementedError


_SCHEDULED = {"schedule": (_schedule, None), "at": (lambda k, v: validate.integer(k, v, lo=0), 0)}


@algorithm
class Magnitude(_Pruning):
    name = "magnitude"
    PARAMS = {"sparsity": (validate.fraction, REQUIRED), **_SCHEDULED}

    def new_masks(self, inputs, step):
        return [tb.magnitude_mask(w, self.target(step)) for w in inputs]

    def reference_masks(self, inputs, step):
        return [ref.magnitude_mask(w, self.target(step)) for w in inputs]


@algorithm
class GlobalMagnitude(_Pruning):
    name = "global_magnitude"
    PARAMS = {"sparsity": (validate.fraction, REQUIRED), **_SCHEDULED}

    def new_masks(self, inputs, step):
        return tb.global_magnitude_masks(inputs, self.target(step))

    def reference_masks(self, inputs, step):
        return ref.global_magnitude_masks(inputs, self.target(step))


def _p(key, value):
    return validate.choice(key, value, (1, 2))


@algorithm
class LnStructured(_Pruning):
    name = "ln_structured"
    PARAMS = {"sparsity": (validate.fraction, REQUIRED), "p": (_p, 2), "axis": (validate.integer, 0), **_SCHEDULED}

    def new_masks(self, inputs, step):
        return [tb.ln_structured_mask(w, self.target(step), self.params["p"], self.params["axis"]) for w in inputs]

    def reference_masks(self, inputs, step):
        return [ref.ln_structured_mask(w, self.target(step), self.params["p"], self.params["axis"]) for w in inputs]


@algorithm
class NM(_Pruning):
    name = "nm"
    PARAMS = {
        "n": (lambda k, v: validate.integer(k, v, lo=0), 2),
        "m": (lambda k, v: validate.integer(k, v, lo=1), 4),
        "axis": (validate.integer, -1),
        "at": _SCHEDULED["at"],
    }

    @classmethod
    def validate(cls, params):
        out = super().validate(params)
        if out["n"] > out["m"]:
            raise ValueError(f"n must be <= m, got n={out['n']}, m={out['m']}")
        return out

    @classmethod
    def check_shapes(cls, targets, tensor, params):
        for name, module in targets:
            rows = _rows(getattr(module, tensor))
            axis = params["axis"]
            if not -rows.ndim <= axis < rows.ndim or rows.shape[axis] % params["m"]:
                raise ValueError(
                    f"module {name!r}: {tensor} viewed as {tuple(rows.shape)} has no axis {axis} divisible "
                    f"by m={params['m']}"
                )

    def new_masks(self, inputs, step):
        return [tb.nm_mask(_rows(w), self.params["n"], self.params["m"], self.params["axis"]).reshape(w.shape)
                for w in inputs]  # fmt: skip

    def reference_masks(self, inputs, step):
        return [ref.nm_mask(_rows(w), self.params["n"], self.params["m"], self.params["axis"]).reshape(w.shape)
                for w in inputs]  # fmt: skip


def _rows(w):
    """Conv weights (out, in, kh, kw) are pruned N:M as the matrix (out, in * kh * kw), like Linear weights."""
    return w.reshape(w.shape[0], math.prod(w.shape[1:])) if w.ndim > 2 else w


@algorithm
class Random(_Pruning):
    name = "random"
    PARAMS = {"sparsity": (validate.fraction, REQUIRED), "seed": (lambda k, v: validate.integer(k, v, lo=0), 0),
              "at": _SCHEDULED["at"]}  # fmt: skip

    def _key(self, i):
        return tb.fold_in(tb.make_key(self.params["seed"]), i)

    def new_masks(self, inputs, step):
        return [tb.random_mask(w, self.params["sparsity"], self._key(i)) for i, w in enumerate(inputs)]

    def reference_masks(self, inputs, step):
        return [ref.random_mask(w, self.params["sparsity"], self._key(i)) for i, w in enumerate(inputs)]


def _optional_int(key, value):
    return None if value is None else validate.integer(key, value)


@algorithm
class Affine(Policy):
    name = "affine"
    PARAMS = {
        "bits": (lambda k, v: validate.integer(k, v, lo=2, hi=16), 8),
        "symmetric": (validate.boolean, True),
        "axis": (_optional_int, 0),
        "group_size": (_optional_int, None),
        "rounding": (lambda k, v: validate.choice(k, v, ("half_even", "half_away", "floor", "ceil")), "half_even"),
    }

    def attach(self):
        for _, module in self.tensors():
            parametrize.register_parametrization(module, self.rule.tensor, AffineQuant(**self.params))
