"""Training algorithms a recipe can name, each a `Policy`: what it registers on the model and when it updates.

| algorithm | kind | parameters |
|---|---|---|
| `magnitude` | pruning, per tensor | `sparsity`, optional `schedule = {start, end, every, initial}` (AGP cubic) or `at` |
| `global_magnitude` | pruning, ranked over all matched tensors | as `magnitude` |
| `ln_structured` | pruning of slices | `sparsity`, `p` (1, 2), `axis`, schedule or `at` |
| `nm` | N:M pruning | `n`, `m`, `axis`, `at` |
| `random` | pruning | `sparsity`, `seed`, `at` |
| `affine` | weight fake quantization, min-max scales each forward | `bits`, `symmetric`, `axis`, `group_size`, `rounding` |
| `lsq` | weight quantization with a learned step (LSQ) | `bits`, `axis` |
| `twn` | ternary weights (TWN) | `axis` |
| `xnor` | binary weights scaled by mean magnitude (XNOR-Net / BWN) | `axis` |
| `ttq` | ternary weights with learned scales (TTQ) | `t` |
| `activation_affine` | output fake quantization with an EMA min-max observer | `bits`, `averaging_constant` |
| `pact` | output clipping at a learned alpha, quantized (PACT) | `bits`, `alpha` |
| `slimming` | network slimming on batch norms: L1 on scales, then channel masks | `lam`, `ratio`, `min_channels`, `at` |
| `lottery` | iterative magnitude pruning with rewinding (`Compressor.next_round()`) | `fraction`, `rewind_step` |

Mask updates score the *masked* weights (pruned weights count as 0), so masks are nested as sparsity grows.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn.utils import parametrize

import reference as ref
import torch_backend as tb
from reference.common import validate
from torch_backend.nn.compressions import AffineQuant, LSQQuant, Mask, TTQQuant, TWNQuant, XNORQuant, _fake_quantize

ALGORITHMS: dict[str, type] = {}


def algorithm(cls):
    ALGORITHMS[cls.name] = cls
    return cls


class Policy:
    """One recipe rule applied to its matched modules."""

    name = ""
    PARAMS: dict = {}  # parameter -> (checker, default); a default of `validate.REQUIRED` means required

    def __init__(self, rule, targets, params, verify_masks=True, record_activations=True):
        self.rule, self.targets, self.params, self.verify_masks = rule, targets, params, verify_masks
        self.record_activations = record_activations
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
    """Zhu & Gupta's cubic schedule (`torch_backend.agp_sparsity`): from `initial` at `start` to `final`, updated
    every `every` steps over `(end - start) // every` pruning steps; `initial` before, `final` after."""
    start, end, every, initial = schedule["start"], schedule["end"], schedule["every"], schedule["initial"]
    return tb.agp_sparsity(step, s_i=initial, s_f=final, t0=start, n=max(1, (end - start) // every), dt=every)


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
            last = sched["start"] + max(1, (sched["end"] - sched["start"]) // sched["every"]) * sched["every"]
            return sched["start"] <= step <= last and (step - sched["start"]) % sched["every"] == 0
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


def _bits_between(lo, hi):
    return lambda k, v: validate.integer(k, v, lo=lo, hi=hi)


class _WeightQuant(Policy):
    """Registers one compression per matched tensor, built by `make(weight)`."""

    def attach(self):
        for _, module in self.tensors():
            w = getattr(module, self.rule.tensor)
            parametrize.register_parametrization(module, self.rule.tensor, self.make(w))


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


class ActivationQuant(torch.nn.Module):
    """Fake quantization of a module's output, installed as a child `pqref_activation` with a forward hook.

    `affine`: unsigned `bits`-bit codes over an EMA min-max range (torch.ao's observer arithmetic), updated in
    training mode only. `pact`: clip at a learned `alpha` (an `nn.Parameter`) and quantize. The last call is kept
    (inputs, state before, output) so that `Compressor.replay` can recompute it with the reference.
    """

    def __init__(self, kind, bits, averaging_constant=0.01, alpha=6.0, record=True):
        super().__init__()
        self.kind, self.bits, self.averaging_constant, self.record = kind, bits, averaging_constant, record
        self.qmin, self.qmax = tb.integer_range(bits, False, False)
        self.register_buffer("min_val", torch.zeros(()))
        self.register_buffer("max_val", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        if kind == "pact":
            self.alpha = torch.nn.Parameter(torch.tensor(float(alpha)))
        self.last = None

    def forward(self, x):
        initialized = bool(self.initialized)  # read once: on CUDA each read waits for the GPU
        before = (self.min_val.clone(), self.max_val.clone(), initialized)
        if self.kind == "pact":
            before = (self.alpha.detach().clone(), None, None)  # the optimizer moves alpha after this call
        xf = x.float()
        if self.kind == "pact":
            y = tb.pact_quantize(xf, self.alpha, self.bits)
        else:
            if self.training:
                state = (self.min_val, self.max_val) if initialized else None
                lo, hi = tb.ema_minmax_observer(xf.detach(), state, averaging_constant=self.averaging_constant)
                with torch.no_grad():
                    self.min_val.copy_(lo)
                    self.max_val.copy_(hi)
                    self.initialized.fill_(True)
            scale, zero_point = tb.qparams_from_range(self.min_val, self.max_val, qmin=self.qmin, qmax=self.qmax)
            y = _fake_quantize(xf, scale, zero_point, qmin=self.qmin, qmax=self.qmax)
        if self.record:
            self.last = (xf.detach().clone(), before, self.training, y.detach().clone())
        return y.to(x.dtype)

    def replay(self):
        """`(elements, match)` for the last call, recomputed with the reference."""
        if self.last is None:
            return 0, True
        x, (lo0, hi0, init0), training, y = self.last
        xn = x.cpu().numpy()
        if self.kind == "pact":
            want = ref.pact_quantize(xn, lo0.cpu().numpy(), self.bits)  # the alpha this call used
        else:
            lo, hi = lo0.cpu().numpy(), hi0.cpu().numpy()
            if training:
                state = (lo, hi) if init0 else None
                lo, hi = ref.ema_minmax_observer(xn, state, averaging_constant=self.averaging_constant)
                if not (
                    np.array_equal(lo, self.min_val.cpu().numpy()) and np.array_equal(hi, self.max_val.cpu().numpy())
                ):
                    return int(x.numel()), False
            scale, zero_point = ref.qparams_from_range(np.asarray(lo), np.asarray(hi), qmin=self.qmin, qmax=self.qmax)
            want = ref.fake_quantize(xn, scale, zero_point, qmin=self.qmin, qmax=self.qmax)
        return int(x.numel()), want.tobytes() == y.cpu().numpy().tobytes()


class _Activation(Policy):
    kind = ""

    @classmethod
    def check_targets(cls, targets, tensor):
        pass  # any module's output can be quantized

    def attach(self):
        self.handles = []
        for _, module in self.tensors():
            module.pqref_activation = ActivationQuant(self.kind, **self.params, record=self.record_activations)
            self.handles.append(module.register_forward_hook(lambda m, args, out: m.pqref_activation(out)))

    def replay_rows(self):
        from torch_backend.nn.compressor import ReplayRow

        rows = []
        for name, module in self.tensors():
            if not module.pqref_activation.record:
                detail = "not recorded: compress(..., record_activations=False)"
                rows.append(ReplayRow(f"{name} output", f"activation {self.kind}", 0, True, detail))
                continue
            n, ok = module.pqref_activation.replay()
            if n:
                rows.append(ReplayRow(f"{name} output (last batch)", f"activation {self.kind}", n, ok))
        return rows


@algorithm
class ActivationAffine(_Activation):
    name = "activation_affine"
    kind = "affine"
    PARAMS = {
        "bits": (_bits_between(2, 16), 8),
        "averaging_constant": (lambda k, v: validate.real(k, v, lo=0.0, hi=1.0, lo_open=True), 0.01),
    }


@algorithm
class PACT(_Activation):
    name = "pact"
    kind = "pact"
    PARAMS = {"bits": (_bits_between(1, 16), 4), "alpha": (lambda k, v: validate.real(k, v, lo=0.0, lo_open=True), 6.0)}


# ---- network slimming ---------------------------------------------------------------------------------------


@algorithm
class Slimming(Policy):
    """Network slimming on batch norms: `lam * sign(gamma)` added to the scales' gradients until step `at`; at `at`,
    channel masks from one global threshold on |gamma| (`slimming_masks`), applied to the scale *and* the shift,
    so a pruned channel outputs exactly 0 and `surgery.remove_channels` can delete it."""

    name = "slimming"
    PARAMS = {
        "lam": (lambda k, v: validate.real(k, v, lo=0.0), 1e-4),
        "ratio": (validate.fraction, REQUIRED),
        "min_channels": (lambda k, v: validate.integer(k, v, lo=0), 1),
        "at": _SCHEDULED["at"],
    }

    @classmethod
    def check_targets(cls, targets, tensor):
        for name, module in targets:
            if not isinstance(module, torch.nn.modules.batchnorm._BatchNorm) or module.weight is None:
                raise ValueError(f"module {name!r} is not an affine batch norm")

    def attach(self):
        self.masks = []
        for _, module in self.tensors():
            pair = []
            for tname in ("weight", "bias"):
                m = Mask(module.weight.shape, device=module.weight.device)
                parametrize.register_parametrization(module, tname, m)
                pair.append(m)
            self.masks.append((module, pair))
        self.pruned = False

    def _gammas(self):
        return [module.parametrizations.weight.original for module, _ in self.masks]

    def on_step(self, step):
        if step != self.params["at"]:
            return
        with torch.no_grad():
            gammas = [g.detach() for g in self._gammas()]
            new = tb.slimming_masks(gammas, self.params["ratio"], self.params["min_channels"])
            if self.verify_masks:
                want = ref.slimming_masks(
                    [g.cpu().numpy() for g in gammas], self.params["ratio"], self.params["min_channels"]
                )
                for got, w in zip(new, want, strict=True):
                    self.checks += 1
                    self.mismatches += int(not np.array_equal(got.cpu().numpy(), w))
            for (_, pair), mask in zip(self.masks, new, strict=True):
                for m in pair:
                    m.mask.copy_(mask)
        self.pruned = True

    def before_optimizer_step(self):
        if self.pruned or self.params["lam"] == 0:
            return
        gammas = self._gammas()
        if any(g.grad is None for g in gammas):
            return
        with torch.no_grad():
            new = tb.slimming_penalty_grad([g.grad for g in gammas], [g.detach() for g in gammas], self.params["lam"])
            for g, n in zip(gammas, new, strict=True):
                g.grad.copy_(n)

    def state_dict(self):
        return {**super().state_dict(), "pruned": self.pruned}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.pruned = state["pruned"]


# ---- lottery tickets ----------------------------------------------------------------------------------------


@algorithm
class Lottery(_Pruning):
    """Iterative magnitude pruning with rewinding. The master weights are snapshotted at `rewind_step` (0: the
    initialization); each `Compressor.next_round()` prunes `fraction` of the surviving weights by magnitude
    (`imp_mask`) and rewinds the survivors to the snapshot (`lottery_rewind`). Train between rounds."""

    name = "lottery"
    PARAMS = {"fraction": (validate.fraction, 0.2), "rewind_step": (lambda k, v: validate.integer(k, v, lo=0), 0)}

    def attach(self):
        super().attach()
        for _, m in self.masks:
            m.register_buffer("rewind", torch.zeros(m.mask.shape, device=m.mask.device))
        self.rounds = 0

    def _master(self, module):
        return module.parametrizations[self.rule.tensor].original

    def due(self, step):
        return False

    def on_step(self, step):
        if step == self.params["rewind_step"]:
            with torch.no_grad():
                for module, m in self.masks:
                    m.rewind.copy_(self._master(module).detach().float())

    def next_round(self):
        with torch.no_grad():
            for module, m in self.masks:
                w = self._master(module).detach().float()
                new = tb.imp_mask(w, m.mask, self.params["fraction"])
                rewound = tb.lottery_rewind(m.rewind, new)
                if self.verify_masks:
                    want_mask = ref.imp_mask(w.cpu().numpy(), m.mask.cpu().numpy(), self.params["fraction"])
                    want_w = ref.lottery_rewind(m.rewind.cpu().numpy(), want_mask)
                    self.checks += 1
                    ok = (
                        np.array_equal(new.cpu().numpy(), want_mask)
                        and rewound.cpu().numpy().tobytes() == want_w.tobytes()
                    )
                    self.mismatches += int(not ok)
                m.mask.copy_(new)
                self._master(module).copy_(rewound.to(self._master(module).dtype))
        self.rounds += 1

    def state_dict(self):
        return {**super().state_dict(), "rounds": self.rounds}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.rounds = state["rounds"]
