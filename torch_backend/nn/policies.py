"""Training algorithms a recipe can name, each a `Policy`: what it registers on the model and when it updates.

| algorithm | kind | parameters |
|---|---|---|
| `magnitude` | pruning, per tensor | `sparsity`, and `schedule = {start, end, every, initial}` (AGP cubic) or `at` |
| `global_magnitude` | pruning, ranked over all matched tensors | as `magnitude` |
| `ln_structured` | pruning of slices | `sparsity`, `p` (1, 2; default 2), `axis` (default 0), schedule or `at`; grouped: `input_shape`, `input_dtype`, `min_channels` |
| `nm` | N:M pruning | `n`, `m`, `axis`, `at` |
| `random` | pruning | `sparsity`, `seed` (in [0, 2**64)), `at` |
| `affine` | weight fake quantization, min-max scales each forward | `bits`, `symmetric`, `axis` (default 0; 1 with `group_size`: groups of input columns), `group_size`, `rounding` |
| `lsq` | weight quantization with a learned step (LSQ; the step used is `max(abs(s), 2**-23)` of the parameter) | `bits`, `axis` |
| `twn` | ternary weights (TWN) | `axis` |
| `xnor` | binary weights scaled by mean magnitude (XNOR-Net / BWN) | `axis` |
| `ttq` | ternary weights with learned scales (TTQ) | `t` |
| `activation_affine` | output fake quantization with an EMA min-max observer | `bits`, `averaging_constant` |
| `pact` | output clipping at a learned alpha, quantized (PACT) | `bits`, `alpha` |
| `slimming` | network slimming on batch norms: L1 on scales, then channel masks | `lam`, `ratio`, `min_channels`, `at`; grouped: `input_shape`, `input_dtype` |
| `lottery` | iterative magnitude pruning with rewinding (`Compressor.next_round()`) | `fraction`, `rewind_step` |
| `gptq` | post-training quantization (`calibrate`) | `bits`, `group_size`, `symmetric`, `act_order`, `static_groups`, `percdamp`, `block_size`, `scale_dtype` |
| `sparsegpt` | post-training pruning (`calibrate`) | `sparsity` or `n`, `m`; `blocksize`, `percdamp`; `bits`, `group_size`, `symmetric` |
| `awq` | post-training quantization (`calibrate`): AWQ's scale and clipping searches | `bits`, `group_size`, `symmetric`, `grid`, `clip`, `max_shrink`, `clip_grid` |
| `smoothquant` | post-training W8A8 (`calibrate`): smoothed weights, per-token inputs | `alpha`, `bits`, `act_bits` |
| `rotation` | post-training (`calibrate`): Hadamard-rotated weights (round to nearest) and inputs (per token) | `bits`, `group_size`, `symmetric`, `act_bits` (None: not quantized), `seed` |
| `adaround` | post-training (`calibrate`): AdaRound's learned rounding | `bits`, `group_size`, `symmetric`, `iterations`, `warmup`, `lam`, `lr` |
| `hqq` | post-training (`calibrate`), calibration-free: HQQ's solver | `bits`, `group_size`, `lp_norm`, `beta`, `kappa`, `iters`, `optimize` |

Mask updates score the *masked* weights (pruned weights count as 0), so masks are nested as sparsity grows.

**Grouped structured pruning.** `slimming` and `ln_structured` with `input_shape` (the shape of one input batch;
`input_dtype = "int64"` for token ids) prune dependency groups instead of single layers: `compress` traces the model
(`torch_backend.nn.graph.channel_graph`, on zeros of that shape) and finds the channels that must go together
across residual additions, concatenations, grouped convolutions and attention heads. Each unit of a group is scored
by `group_scores` over the entries it owns in the tensors the rule matched (the batch norms' scales for slimming,
L1; the weights for `ln_structured`, Lp; the mean over the member slices, so that a residual channel scaled by
several batch norms competes fairly with an inner one), units are ranked over all groups at once by `group_masks` (`ratio` or
`sparsity` of all units, at least `min_channels` per group), and a pruned unit's mask covers *every* parameter slice
it owns (producer rows and bias, norm scale and shift, consumer columns, in every member), so that
`surgery.remove_pruned_channels` can delete it from the finalized model. A matched module with no prunable unit
(its channels are pinned: the model's output, a layer norm over them) is an error naming it and the reason.

Every algorithm call is written once, as a function of a backend `B` (`torch_backend.nn.backend`): the training
step runs it on `TORCH` (the fused kernels where they exist), and with `verify_masks` the same call runs on the
NumPy reference and the two results are compared bit for bit (`Policy.verified`).

One tensor takes at most one pruning algorithm and at most one weight quantizer (in either order; their
composition is the chain of parametrizations, in rule order); one module's output takes at most one activation
quantizer. A tensor shared by several modules (tied weights) is compressed once, for all of them.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from reference.common import validate
from reference.common.posttraining import hadamard_size
from torch_backend import distributed
from torch_backend.nn import activations, posttraining
from torch_backend.nn import graph as channel_graphs
from torch_backend.nn.backend import NUMPY, SHARDED, TORCH, any_sharded, full_tree, numpy_tree, same_bits
from torch_backend.nn.compressions import (
    AffineQuant,
    Calibrated,
    Compression,
    LSQQuant,
    Mask,
    TTQQuant,
    TWNQuant,
    XNORQuant,
)

ALGORITHMS: dict[str, type] = {}
FLOAT32_MAX = float(np.finfo(np.float32).max)
WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def algorithm(cls):
    ALGORITHMS[cls.name] = cls
    return cls


@dataclass
class Target:
    """One tensor a rule compresses: the module matched (`name`, `module`), the parameter's attribute name
    (`tensor`), and every `(name, module, attribute)` that holds the same parameter (`owners`: more than one for
    tied weights; the matched one first)."""

    name: str
    module: nn.Module
    tensor: str
    owners: list = field(default_factory=list)

    @property
    def param(self) -> torch.Tensor:
        plist = getattr(self.module, "parametrizations", None)
        if plist is not None and self.tensor in plist:
            return plist[self.tensor].original
        return self.module._parameters[self.tensor]

    def describe(self) -> str:
        p = self.param
        return f"module {self.name!r} ({type(self.module).__name__}.{self.tensor}, shape {tuple(p.shape)}, {p.dtype})"


@dataclass
class ReplayRow:
    tensor: str
    algorithms: str
    elements: int
    match: bool
    detail: str = ""


class Policy:
    """One recipe rule applied to its matched modules.

    The life of a policy: `validate` (parameters alone), `targets` (the matched tensors, checked one by one),
    `check` (a dry run of every algorithm call on every matched tensor, changing nothing), `attach` (register the
    parametrizations and hooks), then `on_step` / `before_optimizer_step` / `next_round` during training.
    """

    name = ""
    kind = ""  # "pruning", "quantization" or "activation"
    PARAMS: dict = {}  # parameter -> (checker, default); a default of `REQUIRED` means required

    def __init__(self, rule, targets, params, *, verify_masks=True, record_activations=True):
        self.rule, self.targets, self.params = rule, targets, params
        self.verify_masks, self.record_activations = verify_masks, record_activations
        self.checks = 0
        self.mismatches = 0

    # ---- before the model is touched ----------------------------------------------------------------------
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
    def make_targets(cls, model, rule, matched) -> list[Target]:
        """The tensors the rule compresses on its matched modules, checked: a floating-point `nn.Parameter`, not
        already compressed, no foreign parametrization; tied owners found."""
        out, seen = [], set()
        for name, module in matched:
            param = weight_parameter(name, module, rule.tensor)
            if id(param) in seen:
                continue  # a second owner of a tensor already targeted
            seen.add(id(param))
            out.append(Target(name, module, rule.tensor, owners_of(model, param, name)))
        return out

    def check(self) -> None:
        """A dry run of every algorithm call on detached copies; raises the algorithm's own error."""

    def touched(self) -> list[tuple[object, str, str]]:
        """`(tensor or module, kind, description)` for everything this policy compresses (for conflict checks)."""
        return [(t.param, self.kind, t.describe()) for t in self.targets]

    def compressions(self) -> list[Compression]:
        """The parametrization modules this policy registered."""
        return []

    # ---- on the model -------------------------------------------------------------------------------------
    def attach(self) -> None:
        raise NotImplementedError

    def due(self, lo: int, hi: int) -> bool:
        """Whether an update is scheduled at a step in `(lo, hi]`; `on_step(hi)` then runs it once."""
        return False

    def on_step(self, step) -> None:
        pass

    def before_optimizer_step(self) -> None:
        pass

    def next_round(self) -> None:
        pass

    def finalize(self) -> None:
        pass

    def detach(self) -> None:
        """Undo what `attach` did besides registering parametrizations (hooks, child modules), for a rollback."""

    # ---- verification -------------------------------------------------------------------------------------
    def verified(self, fn, *args):
        """`fn(TORCH, *args)`; with `verify_masks`, also `fn(NUMPY, *NumPy copies of args)`, compared bit for bit
        (counted in `checks` and `mismatches`, reported by `replay`).

        Sharded arguments (DTensors, under FSDP2) run `fn(SHARDED, *args)`, and its DTensor results are gathered
        into whole tensors; the NumPy copies are of the whole tensors."""
        sharded = any_sharded(args)
        got = fn(SHARDED if sharded else TORCH, *args)
        if sharded:
            got = full_tree(got)
        if self.verify_masks:
            want = fn(NUMPY, *numpy_tree(args))
            self.checks += 1
            self.mismatches += int(not same_bits(got, want))
        return got

    def replay_rows(self) -> list[ReplayRow]:
        if self.checks == 0:
            return []
        return [ReplayRow(f"{self.rule.where()} mask updates", self.name, self.checks, self.mismatches == 0)]

    def state_dict(self) -> dict:
        return {"algorithm": self.name, "checks": self.checks, "mismatches": self.mismatches}

    def load_state_dict(self, state: dict) -> None:
        self.checks, self.mismatches = _state_ints(state, self, ("checks", "mismatches"))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({params}) on {len(self.targets)} target(s) [{self.rule.where()}]"


REQUIRED = object()


def _state_ints(state, policy, keys):
    if not isinstance(state, dict):
        raise ValueError(f"{policy.rule.where()}: its state must be a dict, got {type(state).__name__}")
    if state.get("algorithm", policy.name) != policy.name:
        raise ValueError(f"{policy.rule.where()}: the state is of algorithm {state.get('algorithm')!r}")
    out = []
    for key in keys:
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{policy.rule.where()}: state[{key!r}] must be an int, got {value!r}")
        out.append(value)
    return out


def weight_parameter(name, module, tensor) -> nn.Parameter:
    """The floating-point `nn.Parameter` `tensor` of `module`, or a `ValueError` that says why not."""
    plist = getattr(module, "parametrizations", None)
    if plist is not None and parametrize.is_parametrized(module):
        for tname, chain in plist.items():
            foreign = [type(c).__name__ for c in chain if not isinstance(c, Compression)]
            if foreign:
                raise ValueError(
                    f"module {name!r} has a torch parametrization on {tname!r} ({', '.join(foreign)}, e.g. "
                    f"weight_norm): pqref compresses plain parameters; remove it first "
                    f"(torch.nn.utils.parametrize.remove_parametrizations(module, {tname!r}, leave_parametrized=True))"
                )
        if tensor in plist:
            raise ValueError(
                f"module {name!r}: {tensor!r} is already compressed by an earlier compress(); a tensor is compressed "
                f"by one Compressor (call its finalize() first, or put all rules in one recipe)"
            )
    if tensor in module._buffers:
        raise ValueError(
            f"module {name!r}: {tensor!r} is a buffer, not a parameter; pqref compresses parameters (a rule's "
            f"'tensor' key names one, e.g. 'weight', 'bias', 'in_proj_weight')"
        )
    param = module._parameters.get(tensor)
    if param is None:
        have = sorted(k for k, v in module._parameters.items() if v is not None)
        raise ValueError(
            f"module {name!r} ({type(module).__name__}) has no parameter {tensor!r} (it has "
            f"{', '.join(map(repr, have)) or 'none'}); choose one with the rule's 'tensor' key, e.g. "
            f"tensor = 'in_proj_weight' for nn.MultiheadAttention or 'weight_ih_l0' for nn.LSTM"
        )
    if distributed.is_sharded(param):
        raise ValueError(
            f"module {name!r}: {tensor!r} is already sharded (a DTensor, e.g. by fully_shard); compress the model "
            f"first, then shard it (fully_shard keeps pqref's parametrizations)"
        )
    if param.dtype not in WEIGHT_DTYPES:
        raise ValueError(
            f"module {name!r}: {tensor!r} has dtype {param.dtype}; pqref compresses float32, float16, bfloat16 "
            f"and float64 parameters"
        )
    return param


def owners_of(model, param, first_name) -> list[tuple[str, nn.Module, str]]:
    """Every `(module name, module, attribute)` whose parameter is `param`, the one named `first_name` first."""
    owners = []
    for mname, module in model.named_modules():
        if isinstance(module, parametrize.ParametrizationList):
            if module.original is param:
                raise ValueError(
                    f"module {first_name!r}: its tensor is tied to {mname!r}, which an earlier compress() already "
                    f"compressed; a tensor is compressed by one Compressor"
                )
            continue
        for attr, p in module._parameters.items():
            if p is param:
                owners.append((mname, module, attr))
    owners.sort(key=lambda o: o[0] != first_name)
    return owners


ORDER = "_pqref_parameter_order"


def register(target: Target, compression: Compression) -> None:
    """Register `compression` on every owner of the target's tensor (once per module and attribute).

    The module's parameter order is saved first (a parametrization moves the tensor out of `_parameters`), so the
    export, `finalize` and a rollback give the plain module's order back (`model.parameters()` order is what an
    optimizer's state is keyed by)."""
    done = set()
    for _, module, attr in target.owners:
        if (id(module), attr) in done:
            continue
        done.add((id(module), attr))
        module.__dict__.setdefault(ORDER, list(module._parameters))
        parametrize.register_parametrization(module, attr, compression)
        independent_copies(module)


def parameter_order(module) -> list[str]:
    """The names of the module's tensors as the plain module orders its parameters."""
    return list(module.__dict__.get(ORDER, module._parameters))


def unregister(module, attr, *, leave_parametrized: bool) -> None:
    """Remove the parametrizations of `module.attr`; once none is left, the saved parameter order is restored."""
    parametrize.remove_parametrizations(module, attr, leave_parametrized=leave_parametrized)
    if not parametrize.is_parametrized(module) and ORDER in module.__dict__:
        order = module.__dict__.pop(ORDER)
        params = dict(module._parameters)
        module._parameters.clear()
        module._parameters.update({k: params[k] for k in order if k in params})
        module._parameters.update(params)


def independent_copies(module) -> None:
    """Make `copy.deepcopy` give this parametrized module a class of its own.

    torch's parametrization injects a per-instance class (`ParametrizedLinear`) that holds the tensor's property,
    but its default `__deepcopy__` shares that class between the copy and the original, so removing the
    parametrization from one (`finalize`) deletes the property from both. The copy gets a fresh class with the
    same contents instead.
    """
    type(module).__deepcopy__ = _independent_deepcopy


def _independent_deepcopy(self, memo):
    found = memo.get(id(self))
    if found is not None:
        return found
    cls = type(self)
    body = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    fresh = type(cls.__name__, cls.__bases__, body)
    replica = fresh.__new__(fresh)
    memo[id(self)] = replica
    replica.__dict__ = copy.deepcopy(self.__dict__, memo)
    return replica


def chain_input(target: Target, compression: Compression, *, sharded: bool = False) -> torch.Tensor:
    """The float32 tensor `compression` sees: the master weight through the compressions registered before it.

    A sharded master weight (a DTensor) is gathered into the whole tensor, unless `sharded` and no compression
    comes before `compression`: then the float32 DTensor itself (for the exact cross-rank algorithms)."""
    plist = target.module.parametrizations[target.tensor]
    w = plist.original.detach()
    if distributed.is_sharded(w) and not (sharded and plist[0] is compression):
        w = distributed.full_tensor(w)
    for c in plist:
        if c is compression:
            break
        w = c.whole(w)
    return w.float()


def masked_input(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`apply_mask(x, mask)` for a whole `mask`; a DTensor `x` gets its own part of the mask, and stays sharded."""
    if not distributed.is_sharded(x):
        return TORCH.apply_mask(x, mask)
    (block,) = distributed.blocks(["x"], [x])
    return block.like(TORCH.apply_mask(block.local, distributed.shard_like(mask, x).to_local()))


def assign(dst: torch.Tensor, whole: torch.Tensor) -> None:
    """`dst.copy_(whole)`, for a `dst` that may be a DTensor (then its own part of `whole` is copied)."""
    if distributed.is_sharded(dst):
        dst.to_local().copy_(distributed.shard_like(whole, dst).to_local())
    else:
        dst.copy_(whole)


def _in_target(target, fn):
    """Run `fn()`, prefixing a `TypeError`/`ValueError` with the target's description."""
    try:
        return fn()
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{target.describe()}: {exc}") from None


# ---- parameter checks ---------------------------------------------------------------------------------------


def _schedule(key, value):
    if not isinstance(value, dict):
        raise TypeError(f"{key} must be a table with start, end, every (and optional initial), got {value!r}")
    unknown = set(value) - {"start", "end", "every", "initial"}
    if unknown:
        raise ValueError(f"{key} has unknown key(s) {sorted(unknown)}")
    if "end" not in value:
        raise ValueError(f"{key} needs 'end', the step at which the final sparsity is reached")
    start = validate.integer(f"{key}.start", value.get("start", 0), lo=0)
    end = validate.integer(f"{key}.end", value["end"], lo=start + 1)
    every = validate.integer(f"{key}.every", value.get("every", 1), lo=1)
    initial = validate.fraction(f"{key}.initial", value.get("initial", 0.0))
    return {"start": start, "end": end, "every": every, "initial": initial}


def _step(key, value):
    return validate.integer(key, value, lo=0)


def _optional_int(key, value):
    return None if value is None else validate.integer(key, value)


def _bits_between(lo, hi):
    return lambda k, v: validate.integer(k, v, lo=lo, hi=hi)


def _float32(key, value, *, positive=False):
    """A real number that is a finite float32 (and > 0 there, with `positive`): what the algorithm will see."""
    v = validate.real(key, value, lo=0.0, lo_open=positive)
    f = float(np.float32(v)) if abs(v) <= FLOAT32_MAX else math.inf
    if not math.isfinite(f) or (positive and f == 0.0):
        what = "inf" if not math.isfinite(f) else "0"
        raise ValueError(
            f"{key} must be a {'positive ' if positive else ''}finite float32 value, got {value!r} ({what} in float32)"
        )
    return v


def agp_sparsity(step, final, schedule):
    """Zhu & Gupta's cubic schedule (`torch_backend.agp_sparsity`): from `initial` at `start` to `final`, updated
    every `every` steps over `(end - start) // every` pruning steps; `initial` before, `final` after."""
    start, end, every, initial = schedule["start"], schedule["end"], schedule["every"], schedule["initial"]
    return TORCH.agp_sparsity(step, s_i=initial, s_f=final, t0=start, n=max(1, (end - start) // every), dt=every)


# ---- pruning ------------------------------------------------------------------------------------------------

_SCHEDULED = {"schedule": (_schedule, None), "at": (_step, None)}


class _Pruning(Policy):
    """Registers a `Mask` on every matched tensor; subclasses state `masks(B, inputs, sparsity)` once."""

    kind = "pruning"

    @classmethod
    def validate(cls, params):
        out = super().validate(params)
        if out.get("schedule") is not None and out.get("at") is not None:
            raise ValueError("give either 'schedule' (gradual pruning) or 'at' (one step), not both")
        if "at" in out and out["at"] is None:
            out["at"] = 0
        return out

    def masks(self, B, inputs, sparsity):
        raise NotImplementedError

    def final_sparsity(self):
        return self.params.get("sparsity", 0.0)

    def check(self):
        for t in self.targets:
            x = t.param.detach().float()
            _in_target(t, lambda x=x: self.masks(TORCH, [x], self.final_sparsity()))

    def attach(self):
        self.mask_modules = []
        for t in self.targets:
            m = Mask(t.param.shape, device=t.param.device)
            register(t, m)
            self.mask_modules.append(m)

    def compressions(self):
        return list(getattr(self, "mask_modules", []))

    def due(self, lo, hi):
        sched = self.params.get("schedule")
        if sched is None:
            return lo < self.params["at"] <= hi
        start, every = sched["start"], sched["every"]
        last = start + max(1, (sched["end"] - start) // every) * every  # updates at start, start + every, ..., last
        a, b = max(lo + 1, start), min(hi, last)
        return a <= b and start + -(-(a - start) // every) * every <= b

    def target_sparsity(self, step):
        sched = self.params.get("schedule")
        return agp_sparsity(step, self.params["sparsity"], sched) if sched else self.final_sparsity()

    def on_step(self, step):
        with torch.no_grad():
            pairs = zip(self.targets, self.mask_modules, strict=True)
            inputs = [masked_input(chain_input(t, m, sharded=True), m.mask) for t, m in pairs]
            sparsity = self.target_sparsity(step)
            new = self.verified(lambda B, xs: self.masks(B, xs, sparsity), inputs)
            for m, mask in zip(self.mask_modules, new, strict=True):
                m.mask.copy_(mask)


@algorithm
class Magnitude(_Pruning):
    name = "magnitude"
    PARAMS = {"sparsity": (validate.fraction, REQUIRED), **_SCHEDULED}

    def masks(self, B, inputs, sparsity):
        return [B.magnitude_mask(w, sparsity) for w in inputs]


@algorithm
class GlobalMagnitude(_Pruning):
    name = "global_magnitude"
    PARAMS = {"sparsity": (validate.fraction, REQUIRED), **_SCHEDULED}

    def masks(self, B, inputs, sparsity):
        return B.global_magnitude_masks(inputs, sparsity)

    def check(self):
        self.masks(TORCH, [t.param.detach().float() for t in self.targets], self.final_sparsity())


def _p(key, value):
    return validate.choice(key, value, (1, 2))


@algorithm
class LnStructured(_Pruning):
    """Slices of each matched tensor by their Lp norm (`ln_structured_mask`), or, with `input_shape`, the units of
    the dependency groups the matched tensors produce along `axis`, ranked over all groups (`GroupedLnStructured`)."""

    name = "ln_structured"
    PARAMS = {
        "sparsity": (validate.fraction, REQUIRED),
        "p": (_p, 2),
        "axis": (validate.integer, 0),
        **_SCHEDULED,
        "input_shape": (lambda k, v: _input_shape(k, v), None),
        "input_dtype": (lambda k, v: validate.choice(k, v, INPUT_DTYPES), "float32"),
        "min_channels": (lambda k, v: None if v is None else validate.integer(k, v, lo=0), None),
    }

    def __new__(cls, *args, **kwargs):
        return object.__new__(GroupedLnStructured if cls is LnStructured and _grouped(args, kwargs) else cls)

    @classmethod
    def validate(cls, params):
        out = super().validate(params)
        _check_grouped_params(out, "sparsity")
        return out

    @classmethod
    def make_targets(cls, model, rule, matched):
        if rule.params.get("input_shape") is not None:
            return GroupedLnStructured.make_targets(model, rule, matched)
        return super().make_targets(model, rule, matched)

    def masks(self, B, inputs, sparsity):
        return [B.ln_structured_mask(w, sparsity, self.params["p"], self.params["axis"]) for w in inputs]


def _rows(w):
    """Conv weights (out, in, kh, kw) are pruned N:M as the matrix (out, in * kh * kw), like Linear weights."""
    return w.reshape(w.shape[0], math.prod(w.shape[1:])) if w.ndim > 2 else w


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

    def check(self):
        for t in self.targets:
            rows = _rows(t.param.detach())
            axis, m = self.params["axis"], self.params["m"]
            if not -rows.ndim <= axis < rows.ndim or rows.shape[axis] % m:
                raise ValueError(
                    f"module {t.name!r}: {t.tensor} viewed as {tuple(rows.shape)} has no axis {axis} divisible by m={m}"
                )
        super().check()

    def masks(self, B, inputs, sparsity):
        n, m, axis = self.params["n"], self.params["m"], self.params["axis"]
        return [B.nm_mask(_rows(w), n, m, axis).reshape(w.shape) for w in inputs]


@algorithm
class Random(_Pruning):
    name = "random"
    PARAMS = {
        "sparsity": (validate.fraction, REQUIRED),
        "seed": (lambda k, v: validate.integer(k, v, lo=0, hi=2**64 - 1), 0),
        "at": _SCHEDULED["at"],
    }

    def masks(self, B, inputs, sparsity):
        key = B.make_key(self.params["seed"])
        return [B.random_mask(w, sparsity, B.fold_in(key, i)) for i, w in enumerate(inputs)]

    def check(self):
        self.masks(TORCH, [t.param.detach().float() for t in self.targets], self.final_sparsity())


@algorithm
class Lottery(_Pruning):
    """Iterative magnitude pruning with rewinding. The master weights are snapshotted at `rewind_step` (0: at
    `compress`, before training); each `Compressor.next_round()` prunes `fraction` of the surviving weights by
    magnitude (`imp_mask`) and rewinds the survivors to the snapshot (`lottery_rewind`). Train between rounds."""

    name = "lottery"
    PARAMS = {"fraction": (validate.fraction, 0.2), "rewind_step": (_step, 0)}

    def check(self):
        for t in self.targets:
            w = t.param.detach().float()
            _in_target(t, lambda w=w: self.prune(TORCH, w, torch.ones(w.shape, dtype=torch.bool), w))

    def attach(self):
        super().attach()
        for m, t in zip(self.mask_modules, self.targets, strict=True):
            m.register_buffer("rewind", torch.zeros(m.mask.shape, dtype=torch.float32, device=t.param.device))
        self.rounds = 0

    def due(self, lo, hi):
        return lo < self.params["rewind_step"] <= hi

    def prune(self, B, w, mask, rewind):
        new = B.imp_mask(w, mask, self.params["fraction"])
        return new, B.lottery_rewind(rewind, new)

    def on_step(self, step):
        with torch.no_grad():
            for m, t in zip(self.mask_modules, self.targets, strict=True):
                m.rewind.copy_(distributed.full_tensor(t.param.detach()).float())

    def next_round(self):
        with torch.no_grad():
            for m, t in zip(self.mask_modules, self.targets, strict=True):
                master = t.param
                new, rewound = self.verified(self.prune, master.detach().float(), m.mask, m.rewind)
                m.mask.copy_(new)
                assign(master, rewound.to(master.dtype))
        self.rounds += 1

    def state_dict(self):
        return {**super().state_dict(), "rounds": self.rounds}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        (self.rounds,) = _state_ints(state, self, ("rounds",))


# ---- weight quantization ------------------------------------------------------------------------------------


class _WeightQuant(Policy):
    """One compression per matched tensor, built by `make(weight)` during `check`, registered by `attach`."""

    kind = "quantization"

    def make(self, w) -> Compression:
        raise NotImplementedError

    def check(self):
        self.built = []
        for t in self.targets:
            w = t.param.detach().float()

            def build(w=w):
                c = self.make(w).to(w.device)
                c.compute(TORCH, w, c.state(TORCH))
                return c

            self.built.append(_in_target(t, build))

    def attach(self):
        for t, c in zip(self.targets, self.built, strict=True):
            register(t, c)

    def compressions(self):
        return list(getattr(self, "built", []))


@algorithm
class Affine(_WeightQuant):
    name = "affine"
    PARAMS = {
        "bits": (_bits_between(2, 16), 8),
        "symmetric": (validate.boolean, True),
        "axis": (_optional_int, 0),
        "group_size": (_optional_int, None),
        "rounding": (lambda k, v: validate.choice(k, v, ("half_even", "half_away", "floor", "ceil")), "half_even"),
    }

    @classmethod
    def validate(cls, params):
        out = super().validate(params)
        if out["group_size"] is not None and "axis" not in params:
            out["axis"] = 1  # groups run along the input dimension, as GPTQ's, AWQ's and HQQ's do
        return out

    def make(self, w):
        return AffineQuant(**self.params)


@algorithm
class LSQ(_WeightQuant):
    name = "lsq"
    PARAMS = {"bits": (_bits_between(2, 16), 4), "axis": (_optional_int, 0)}

    def make(self, w):
        return LSQQuant(w, **self.params)


@algorithm
class TWN(_WeightQuant):
    name = "twn"
    PARAMS = {"axis": (_optional_int, 0)}

    def make(self, w):
        return TWNQuant(**self.params)


@algorithm
class XNOR(_WeightQuant):
    name = "xnor"
    PARAMS = {"axis": (_optional_int, 0)}

    def make(self, w):
        return XNORQuant(**self.params)


@algorithm
class TTQ(_WeightQuant):
    name = "ttq"
    PARAMS = {"t": (lambda k, v: validate.real(k, v, lo=0.0, hi=1.0), 0.05)}

    def make(self, w):
        return TTQQuant(w, **self.params)


# ---- activations --------------------------------------------------------------------------------------------


class _Activation(Policy):
    """Quantizes the output of every matched module with one `ActivationQuant` each (no `tensor`)."""

    kind = "activation"
    quantizer: type = activations.ActivationQuant

    @classmethod
    def make_targets(cls, model, rule, matched):
        if rule.tensor != "weight":
            raise ValueError(f"{cls.name!r} quantizes a module's output and takes no 'tensor' (got {rule.tensor!r})")
        out = []
        for name, module in matched:
            if activations.quantizer_of(module) is not None:
                raise ValueError(
                    f"module {name!r} already has an activation quantizer from an earlier compress(); one module's "
                    f"output takes one"
                )
            out.append(Target(name, module, "output", [(name, module, "output")]))
        return out

    def touched(self):
        return [(t.module, "activation", f"module {t.name!r} ({type(t.module).__name__})") for t in self.targets]

    def check(self):
        self.quantizers = []
        for t in self.targets:

            def build():
                q = self.quantizer(**self.params, record=self.record_activations)
                q.compute(TORCH, torch.zeros(1), q.state(TORCH))  # the parameters are valid for the algorithm
                return q

            self.quantizers.append(_in_target(t, build))

    def attach(self):
        self.handles = []
        for t, q in zip(self.targets, self.quantizers, strict=True):
            device = _device_of(t.module)
            if device is not None:
                q.to(device)
            self.handles.append(activations.install(t.module, q))

    def replay_rows(self):
        rows = []
        for t, q in zip(self.targets, self.quantizers, strict=True):
            if not q.record:
                detail = "not recorded: compress(..., record_activations=False)"
                rows.append(ReplayRow(f"{t.name} output", f"activation {self.name}", 0, True, detail))
                continue
            n, ok = q.replay()
            if n:
                rows.append(ReplayRow(f"{t.name} output (last batch)", f"activation {self.name}", n, ok))
        return rows

    def finalize(self):
        for t, handle in zip(self.targets, self.handles, strict=True):
            activations.uninstall(t.module, handle)

    def detach(self):
        for t, handle in zip(self.targets, getattr(self, "handles", []), strict=False):
            activations.uninstall(t.module, handle)


def _device_of(module):
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return None


@algorithm
class ActivationAffine(_Activation):
    name = "activation_affine"
    quantizer = activations.AffineActivation
    PARAMS = {
        "bits": (_bits_between(2, 16), 8),
        "averaging_constant": (lambda k, v: validate.real(k, v, lo=0.0, hi=1.0, lo_open=True), 0.01),
    }


@algorithm
class PACT(_Activation):
    name = "pact"
    quantizer = activations.PACTActivation
    PARAMS = {
        "bits": (_bits_between(1, 16), 4),
        "alpha": (lambda k, v: _float32(k, v, positive=True), 6.0),
    }


# ---- network slimming ---------------------------------------------------------------------------------------


@algorithm
class Slimming(Policy):
    """Network slimming on batch norms: `lam * sign(gamma)` added to the scales' gradients until step `at`; at `at`,
    channel masks from one global threshold on |gamma| (`slimming_masks`), applied to the scale *and* the shift,
    so a pruned channel outputs exactly 0 and `surgery.remove_channels` can delete it."""

    name = "slimming"
    kind = "pruning"
    PARAMS = {
        "lam": (lambda k, v: _float32(k, v), 1e-4),
        "ratio": (validate.fraction, REQUIRED),
        "min_channels": (lambda k, v: validate.integer(k, v, lo=0), 1),
        "at": (_step, 0),
        "input_shape": (lambda k, v: _input_shape(k, v), None),
        "input_dtype": (lambda k, v: validate.choice(k, v, INPUT_DTYPES), "float32"),
    }

    def __new__(cls, *args, **kwargs):
        return object.__new__(GroupedSlimming if cls is Slimming and _grouped(args, kwargs) else cls)

    @classmethod
    def validate(cls, params):
        out = super().validate(params)
        _check_grouped_params(out, "ratio")
        return out

    @classmethod
    def make_targets(cls, model, rule, matched):
        if rule.params.get("input_shape") is not None and cls is Slimming:
            return GroupedSlimming.make_targets(model, rule, matched)
        if rule.tensor != "weight":
            raise ValueError(f"'slimming' masks a batch norm's weight and bias together; it takes no 'tensor' "
                             f"(got {rule.tensor!r})")  # fmt: skip
        out = []
        for name, module in matched:
            if not isinstance(module, nn.modules.batchnorm._BatchNorm) or not module.affine:
                raise ValueError(f"module {name!r} ({type(module).__name__}) is not an affine batch norm")
            for tname in ("weight", "bias"):
                param = weight_parameter(name, module, tname)
                out.append(Target(name, module, tname, owners_of(model, param, name)))
        return out

    def _pairs(self):
        return list(zip(self.targets[0::2], self.targets[1::2], strict=True))

    def _gammas(self):
        return [w.param.detach().float() for w, _ in self._pairs()]

    def select(self, B, gammas):
        return B.slimming_masks(gammas, self.params["ratio"], self.params["min_channels"])

    def check(self):
        gammas = self._gammas()
        self.select(TORCH, gammas)
        TORCH.slimming_penalty_grad([torch.zeros_like(g) for g in gammas], gammas, self.params["lam"])

    def attach(self):
        self.mask_modules = []
        for t in self.targets:
            m = Mask(t.param.shape, device=t.param.device)
            register(t, m)
            self.mask_modules.append(m)
        self.pruned = False

    def compressions(self):
        return list(getattr(self, "mask_modules", []))

    def due(self, lo, hi):
        return lo < self.params["at"] <= hi

    def on_step(self, step):
        with torch.no_grad():
            new = self.verified(self.select, self._gammas())
            pairs = zip(self.mask_modules[0::2], self.mask_modules[1::2], strict=True)
            for (mw, mb), mask in zip(pairs, new, strict=True):
                mw.mask.copy_(mask)
                mb.mask.copy_(mask)
        self.pruned = True

    def before_optimizer_step(self):
        if self.pruned or self.params["lam"] == 0:
            return
        gammas = [w.param for w, _ in self._pairs()]
        if any(g.grad is None for g in gammas):
            return
        with torch.no_grad():
            grads = [g.grad.float() for g in gammas]
            B = SHARDED if any_sharded(gammas) else TORCH
            new = B.slimming_penalty_grad(grads, [g.detach().float() for g in gammas], self.params["lam"])
            for g, n in zip(gammas, new, strict=True):
                g.grad.copy_(n.to(g.grad.dtype))

    def state_dict(self):
        return {**super().state_dict(), "pruned": self.pruned}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        if not isinstance(state.get("pruned"), bool):
            raise ValueError(f"{self.rule.where()}: state['pruned'] must be a bool, got {state.get('pruned')!r}")
        self.pruned = state["pruned"]


# ---- grouped structured pruning: dependency groups from torch.fx ------------------------------------------------

INPUT_DTYPES = ("float32", "int64")


def _input_shape(key, value):
    """The shape of one example input batch: 1 to 8 ints >= 1, at most 2**24 elements in all."""
    if value is None:
        return None
    dims = validate.shape(key, value)
    if not 1 <= len(dims) <= 8 or 0 in dims or math.prod(dims) > 2**24:
        raise ValueError(
            f"{key} must be the shape of one input batch: 1 to 8 sizes >= 1 and at most 2**24 elements, got {value!r}"
        )
    return list(dims)


def _grouped(args, kwargs) -> bool:
    params = args[2] if len(args) > 2 else kwargs.get("params")
    return isinstance(params, dict) and params.get("input_shape") is not None


def _check_grouped_params(out, amount):
    if out["input_shape"] is None:
        for key, default in (("input_dtype", "float32"), ("min_channels", None)):
            if key in out and out[key] != default and not (key == "min_channels" and amount == "ratio"):
                raise ValueError(f"{key} is used with input_shape (grouped pruning over dependency groups)")
    elif "min_channels" in out and out["min_channels"] is None:
        out["min_channels"] = 1


@dataclass
class GroupPlan:
    """What a grouped rule prunes, fixed at `compress`: the channel graph, the groups it ranks, and how each unit's
    scored entries and each mask are laid out.

    - `groups[g]`: the `graph.Group` (from `channel_graph`); `count[g]` its prunable units; `scored[g]`: `(target index, axis, rows,
      units)` for every scored member (`rows`: the positions along `axis` that belong to a prunable unit, `units`:
      the prunable unit of every entry they hold, flattened as `moveaxis(w, axis, 0)[rows]`);
    - `masks[i]`: for target `i`, `(group position, axis, unit of every position or -1)` per member slice.
    """

    groups: list
    count: list
    scored: list
    masks: list


class _GroupTargets(list):
    """The targets of a grouped rule (every parameter a pruned unit owns), carrying the `GroupPlan`."""

    plan: GroupPlan


class _Grouped:
    """The common part of `GroupedSlimming` and `GroupedLnStructured`: one mask per member tensor of the selected
    groups, computed by `select(B, tensors, ...)`, once for both backends."""

    criterion = "l1"

    @classmethod
    def selects(cls, rule, member, matched, model) -> bool:
        """Whether `member` makes its group one the rule prunes."""
        raise NotImplementedError

    @classmethod
    def scores_member(cls, rule, member, matched, model) -> bool:
        """Whether `member`'s entries count in its units' scores."""
        raise NotImplementedError

    @classmethod
    def make_targets(cls, model, rule, matched):
        params = cls.validate(dict(rule.params))
        names = {name for name, _ in matched}
        for name, module in matched:
            weight_parameter(name, module, rule.tensor)
        device = next((t.device for t in list(model.parameters()) + list(model.buffers())), torch.device("cpu"))
        dtype = torch.float32 if params["input_dtype"] == "float32" else torch.int64
        graph = channel_graphs.channel_graph(model, torch.zeros(params["input_shape"], dtype=dtype, device=device))
        chosen = [g for g in graph.groups if any(cls.selects(rule, m, names, model) for m in g.members)]
        for name in dict.fromkeys(n for n, _ in matched):
            mine = [
                g for g in chosen if any(m.module == name and cls.selects(rule, m, {name}, model) for m in g.members)
            ]
            if not any(g.prunable for g in mine):
                reasons = sorted({p for g in mine for p in g.pinned if p is not None})
                why = f"its channels are pinned: {'; '.join(reasons)}" if reasons else "it is in no channel group"
                raise ValueError(
                    f"module {name!r} ({type(model.get_submodule(name)).__name__}) has no prunable channel: {why}; "
                    f"leave it out of the rule's modules (graph.channel_graph(model, x).describe() shows the groups)"
                )
        chosen = [g for g in chosen if g.prunable]
        targets, index = _GroupTargets(), {}
        masks, scored, counts = [], [], []
        for gi, g in enumerate(chosen):
            prunable = np.cumsum([p is None for p in g.pinned]) - 1
            local = np.where([p is None for p in g.pinned], prunable, -1)
            counts.append(int(local.max() + 1) if local.size else 0)
            rows_scored = []
            for m in g.members:
                module = model.get_submodule(m.module)
                if not isinstance(getattr(module, m.tensor, None), torch.Tensor) or m.tensor in module._buffers:
                    continue  # running statistics and bookkeeping: sliced on removal, never masked
                key = (m.module, m.tensor)
                if key not in index:
                    param = weight_parameter(m.module, module, m.tensor)
                    index[key] = len(targets)
                    targets.append(Target(m.module, module, m.tensor, owners_of(model, param, m.module)))
                    masks.append([])
                i = index[key]
                units = np.where(g.unit_of[m] >= 0, local[np.maximum(g.unit_of[m], 0)], -1)
                masks[i].append((gi, m.axis, torch.as_tensor(units, device=device)))
                if cls.scores_member(rule, m, names, model):
                    rows = np.flatnonzero(units >= 0)
                    width = math.prod(targets[i].param.shape) // max(1, targets[i].param.shape[m.axis])
                    per_entry = np.repeat(units[rows], width)
                    rows_scored.append(
                        (i, m.axis, torch.as_tensor(rows, device=device), torch.as_tensor(per_entry, device=device))
                    )
            scored.append(rows_scored)
        targets.plan = GroupPlan(chosen, counts, scored, masks)
        return targets

    @property
    def plan(self) -> GroupPlan:
        return self.targets.plan

    def select(self, B, tensors, amount, min_channels):
        """Scores of every prunable unit (`group_scores`), one global ranking (`group_masks`), and the mask of
        every target: True except on the slices of the pruned units."""
        plan = self.plan

        def local(index, like):  # the plan's index arrays, on the tensors' device (torch) or as NumPy copies
            return index.to(like.device) if B.is_torch else B.array(index)

        scores = []
        for count, members in zip(plan.count, plan.scored, strict=True):
            values = [
                B.moveaxis(tensors[i], axis, 0)[local(rows, tensors[i])].reshape(-1) for i, axis, rows, _ in members
            ]
            units = [local(u, tensors[i]) for i, _, _, u in members]
            scores.append(B.group_scores(values, units, count, self.criterion, "mean"))
        keep = B.group_masks(scores, amount, min_channels)
        masks = []
        for w, slices in zip(tensors, plan.masks, strict=True):
            mask = None
            for g, axis, units in slices:
                column = B.concatenate([keep[g], keep[g][:1] | True])[local(units, w)]  # unit -1: not pruned here
                column = column.reshape(tuple(-1 if a == axis else 1 for a in range(w.ndim)))
                mask = column if mask is None else mask & column
            masks.append(B.broadcast_to(mask, w.shape))
        return scores, keep, masks

    def describe_groups(self) -> str:
        """The groups this rule prunes, with their members (`graph.Group.describe`)."""
        return "\n".join(g.describe() for g in self.plan.groups)

    def attach(self):
        self.mask_modules = []
        for t in self.targets:
            m = Mask(t.param.shape, device=t.param.device)
            register(t, m)
            self.mask_modules.append(m)

    def compressions(self):
        return list(getattr(self, "mask_modules", []))

    def apply(self, tensors, amount):
        with torch.no_grad():
            _, _, masks = self.verified(lambda B, ts: self.select(B, ts, amount, self.params["min_channels"]), tensors)
            for m, mask in zip(self.mask_modules, masks, strict=True):
                m.mask.copy_(mask)

    def __repr__(self) -> str:
        units = sum(self.plan.count)
        return f"{super().__repr__()}: {len(self.plan.groups)} channel group(s), {units} prunable unit(s)"


class GroupedSlimming(_Grouped, Slimming):
    r"""Network slimming over dependency groups (`slimming` with `input_shape`): the L1 subgradient on the matched
    batch norms' scales until `at`; at `at`, each unit scores the mean over its matched batch norms of $|\gamma|$
    (`group_scores`, `"l1"`, `"mean"`: $|\gamma|$ itself for one batch norm per unit), units are ranked over all groups (`group_masks` with `ratio`
    and `min_channels`), and a pruned unit's mask covers every parameter slice it owns."""

    @classmethod
    def selects(cls, rule, member, matched, model):
        return member.module in matched and member.tensor == "weight" and member.role == "norm"

    scores_member = selects

    @classmethod
    def make_targets(cls, model, rule, matched):
        if rule.tensor != "weight":
            raise ValueError(f"'slimming' masks a batch norm's weight and bias together; it takes no 'tensor' "
                             f"(got {rule.tensor!r})")  # fmt: skip
        for name, module in matched:
            if not isinstance(module, nn.modules.batchnorm._BatchNorm) or not module.affine:
                raise ValueError(f"module {name!r} ({type(module).__name__}) is not an affine batch norm")
        targets = _Grouped.make_targets.__func__(cls, model, rule, matched)
        targets.gammas = [
            i for i, t in enumerate(targets) if t.tensor == "weight" and t.name in {n for n, _ in matched}
        ]
        return targets

    def _gamma_targets(self):
        return [self.targets[i] for i in self.targets.gammas]

    def check(self):
        self.select(
            TORCH, [t.param.detach().float() for t in self.targets], self.params["ratio"], self.params["min_channels"]
        )
        gammas = [t.param.detach().float() for t in self._gamma_targets()]
        TORCH.slimming_penalty_grad([torch.zeros_like(g) for g in gammas], gammas, self.params["lam"])

    def attach(self):
        _Grouped.attach(self)
        self.pruned = False

    def on_step(self, step):
        self.apply([t.param.detach().float() for t in self.targets], self.params["ratio"])
        self.pruned = True

    def before_optimizer_step(self):
        if self.pruned or self.params["lam"] == 0:
            return
        gammas = [t.param for t in self._gamma_targets()]
        if any(g.grad is None for g in gammas):
            return
        with torch.no_grad():
            grads = [g.grad.float() for g in gammas]
            B = SHARDED if any_sharded(gammas) else TORCH
            new = B.slimming_penalty_grad(grads, [g.detach().float() for g in gammas], self.params["lam"])
            for g, n in zip(gammas, new, strict=True):
                g.grad.copy_(n.to(g.grad.dtype))


class GroupedLnStructured(_Grouped, LnStructured):
    """Structured Ln pruning over dependency groups (`ln_structured` with `input_shape`): the groups of the slices
    of the matched tensors along `axis` (output channels, attention heads for `axis=0`); each unit scores the Lp
    norm of the entries it owns in the matched tensors, a mean over the member slices (`group_scores`), units are ranked over all groups
    (`group_masks`: `sparsity` of all units, at least `min_channels` per group), on the masked weights, and a
    pruned unit's mask covers every parameter slice it owns. Gradual schedules work as for `ln_structured`."""

    @property
    def criterion(self):
        return f"l{self.params['p']}"

    @classmethod
    def selects(cls, rule, member, matched, model):
        if member.module not in matched or member.tensor != rule.tensor:
            return False
        ndim = getattr(model.get_submodule(member.module), member.tensor).ndim
        return member.axis == validate.axis("axis", rule.params.get("axis", 0), ndim)

    @classmethod
    def scores_member(cls, rule, member, matched, model):
        return member.module in matched and member.tensor == rule.tensor

    @classmethod
    def make_targets(cls, model, rule, matched):
        return _Grouped.make_targets.__func__(cls, model, rule, matched)

    def check(self):
        self.select(TORCH, [t.param.detach().float() for t in self.targets], self.final_sparsity(),
                    self.params["min_channels"])  # fmt: skip

    def attach(self):
        _Grouped.attach(self)

    def on_step(self, step):
        pairs = zip(self.targets, self.mask_modules, strict=True)
        with torch.no_grad():
            inputs = [TORCH.apply_mask(chain_input(t, m), m.mask) for t, m in pairs]
        self.apply(inputs, self.target_sparsity(step))


# ---- post-training: GPTQ and SparseGPT (run by `torch_backend.nn.calibrate`) --------------------------------


def _optional(check):
    return lambda k, v: None if v is None else check(k, v)


class _PostTraining(Policy):
    """A `Calibrated` compression per matched `nn.Linear`-shaped (2-D) weight; `calibrate` runs the algorithm on
    each layer's calibration Hessian. `compress` alone refuses these rules."""

    post_training = True

    def check(self):
        for t in self.targets:
            shape = tuple(t.param.shape)
            if len(shape) != 2:
                raise ValueError(f"{t.describe()}: {self.name} compresses 2-D (nn.Linear) weights")
            for key in ("group_size", "m"):
                if self.params.get(key) is not None and shape[1] % self.params[key]:
                    raise ValueError(f"{t.describe()}: {key}={self.params[key]} must divide in_features={shape[1]}")

    def attach(self):
        self.built = []
        for t in self.targets:
            c = Calibrated(self.name, self.params)
            register(t, c)
            self.built.append(c)

    def compressions(self):
        return list(getattr(self, "built", []))

    def replay_rows(self):
        rows = []
        for t, c in zip(self.targets, self.compressions(), strict=True):
            if not c.calibrated:
                rows.append(ReplayRow(f"{t.name}.{t.tensor}", self.name, 0, False, "not calibrated: run calibrate()"))
        return rows


@algorithm
class GPTQ(_PostTraining):
    name = "gptq"
    kind = "quantization"
    PARAMS = {
        "bits": (_bits_between(2, 8), 4),
        "group_size": (_optional(lambda k, v: validate.integer(k, v, lo=1)), None),
        "symmetric": (validate.boolean, False),
        "act_order": (validate.boolean, False),
        "static_groups": (validate.boolean, False),
        "percdamp": (lambda k, v: validate.real(k, v, lo=0.0, hi=1e6), 0.01),
        "block_size": (lambda k, v: validate.integer(k, v, lo=1, hi=2**20), 128),
        "scale_dtype": (lambda k, v: validate.choice(k, v, ("float32", "float16")), "float32"),
    }


@algorithm
class SparseGPT(_PostTraining):
    name = "sparsegpt"
    kind = "pruning"
    PARAMS = {
        "sparsity": (_optional(validate.fraction), None),
        "n": (_optional(lambda k, v: validate.integer(k, v, lo=0)), None),
        "m": (_optional(lambda k, v: validate.integer(k, v, lo=1)), None),
        "blocksize": (lambda k, v: validate.integer(k, v, lo=1, hi=2**20), 128),
        "percdamp": (lambda k, v: validate.real(k, v, lo=0.0, hi=1e6), 0.01),
        "bits": (_optional(_bits_between(2, 8)), None),
        "group_size": (_optional(lambda k, v: validate.integer(k, v, lo=1)), None),
        "symmetric": (validate.boolean, False),
        "scale_dtype": (lambda k, v: validate.choice(k, v, ("float32", "float16")), "float32"),
    }

    @classmethod
    def validate(cls, params):
        out = super().validate(params)
        if (out["sparsity"] is None) == (out["n"] is None and out["m"] is None) or (out["n"] is None) != (
            out["m"] is None
        ):
            raise ValueError("give either 'sparsity' (unstructured) or 'n' and 'm' (N:M), not both and not neither")
        if out["n"] is not None and out["n"] > out["m"]:
            raise ValueError(f"n must be <= m, got n={out['n']}, m={out['m']}")
        if out["bits"] is None and out["group_size"] is not None:
            raise ValueError("group_size is only used with bits")
        return {k: v for k, v in out.items() if v is not None or k in ("sparsity",)}

    def touched(self):
        kinds = ["pruning"] + (["quantization"] if self.params.get("bits") is not None else [])
        return [(t.param, kind, t.describe()) for t in self.targets for kind in kinds]


# ---- post-training that reads the layer's inputs: AWQ, SmoothQuant, rotation, AdaRound, HQQ (`calibrate`) ------


def _post(name, cls, kind, params, doc):
    """A post-training rule whose compression is `cls` (`torch_backend.nn.posttraining`), with an input hook."""

    def attach(self):
        self.built, self.hooks = [], []
        for t in self.targets:
            c = cls(self.params)
            register(t, c)
            self.built.append(c)
            if cls.TRANSFORMS_INPUT:
                hook = posttraining.InputTransform(c, self.record_activations)
                hook.handle = t.module.register_forward_pre_hook(hook)
                self.hooks.append(hook)

    def replay_rows(self):
        rows = _PostTraining.replay_rows(self)
        hooks = getattr(self, "hooks", [])
        for t, hook in zip(self.targets if hooks else [], hooks, strict=True):
            n, ok = hook.replay()
            if n:
                rows.append(ReplayRow(f"{t.name} input (last batch)", f"input {self.name}", n, ok))
        return rows

    def finalize(self):
        for c in self.compressions():
            c.folded = True
        self.detach()

    def detach(self):
        for hook in getattr(self, "hooks", []):
            hook.handle.remove()
        self.hooks = []

    body = {"__doc__": doc, "name": name, "kind": kind, "PARAMS": params, "attach": attach,
            "replay_rows": replay_rows, "finalize": finalize, "detach": detach}  # fmt: skip
    return algorithm(type(cls.__name__ + "Rule", (_PostTraining,), body))


def _real(lo=None, hi=None, **kw):
    return lambda k, v: validate.real(k, v, lo=lo, hi=hi, **kw)


def _int(lo=None, hi=None):
    return lambda k, v: validate.integer(k, v, lo=lo, hi=hi)


_GROUP = (_optional(lambda k, v: validate.integer(k, v, lo=1)), None)
AWQRule = _post("awq", posttraining.AWQQuant, "quantization", {
    "bits": (_bits_between(2, 8), 4), "group_size": _GROUP, "symmetric": (validate.boolean, False),
    "grid": (_int(1, 1000), 20), "clip": (validate.boolean, True), "max_shrink": (_real(0.0, 1.0, hi_open=True), 0.5),
    "clip_grid": (_int(1, 1000), 20),
}, "AWQ (`reference.posttraining.scaling.awq`): the input divided by s, the weight `dequantize(codes of W * s)`.")  # fmt: skip
SmoothQuantRule = _post("smoothquant", posttraining.SmoothQuantW8A8, "quantization", {
    "alpha": (_real(0.0, 1.0), 0.5), "bits": (_bits_between(2, 16), 8), "act_bits": (_bits_between(2, 16), 8),
}, "SmoothQuant W8A8: `smoothquant` weights, the input divided by s and quantized per token.")  # fmt: skip
RotationRule = _post("rotation", posttraining.RotatedQuant, "quantization", {
    "bits": (_bits_between(2, 8), 4), "group_size": _GROUP, "symmetric": (validate.boolean, False),
    "act_bits": (_optional(_bits_between(2, 16)), 8), "seed": (_int(0, 2**64 - 1), 0),
}, "A randomized Hadamard rotation of the input dimension, round-to-nearest weights, per-token inputs.")  # fmt: skip
AdaRoundRule = _post("adaround", posttraining.AdaRoundQuant, "quantization", {
    "bits": (_bits_between(2, 8), 4), "group_size": _GROUP, "symmetric": (validate.boolean, False),
    "iterations": (_int(1, 10**6), 200), "warmup": (_real(0.0, 1.0, hi_open=True), 0.2), "lam": (_real(0.0), 0.01),
    "lr": (_real(0.0, lo_open=True), 0.01),
}, "AdaRound's layer-wise loop (`adaround_init`, `adaround_step`, `adaround_quantize`) on the calibration Hessian.")  # fmt: skip
HQQRule = _post("hqq", posttraining.HQQQuant, "quantization", {
    "bits": (_bits_between(1, 8), 4), "group_size": (_int(1), 64), "lp_norm": (_real(0.0, 1.0, lo_open=True), 0.7),
    "beta": (_real(0.0, lo_open=True), 10.0), "kappa": (_real(1.0), 1.01), "iters": (_int(0, 10000), 20),
    "optimize": (validate.boolean, True),
}, "HQQ (`reference.posttraining.halfquadratic.hqq`), calibration-free; run by `calibrate` like the others.")  # fmt: skip


def _check_rotation(self):
    _PostTraining.check(self)
    for t in self.targets:
        try:
            hadamard_size(t.param.shape[1], f"{t.describe()}: in_features")
        except ValueError as exc:
            raise ValueError(str(exc)) from None


RotationRule.check = _check_rotation
