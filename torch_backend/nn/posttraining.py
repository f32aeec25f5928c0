"""Post-training compressions that see the layer's inputs: AWQ, SmoothQuant, Hadamard rotation, AdaRound, HQQ.

Each is a `Stored` compression: `calibrate(model, recipe, data)` hands it the float32 weight and every input row
of its layer (`calibrate_rows(w, x)`); it reduces the rows to the statistics its algorithm needs (the exact
Hessian, the mean or maximum magnitude per input channel), runs the algorithm once with `B = TORCH`, and stores the
statistics and every output as buffers. `replay` runs the same `run(B, w, stats)` with `B = NUMPY` (the reference)
and requires every stored output to be the same bits, as `Calibrated` does for GPTQ.

Some of them also change what the layer sees: AWQ divides its input by the scales `s` (the weight holds the
codes of `W * s`), SmoothQuant divides it by `s` and quantizes it per token, the rotation rotates it (and quantizes
it per token). An `InputTransform` forward pre-hook applies `transform_input(B, x, s)` once the layer is
calibrated; it records its last call, which `Compressor.replay` recomputes with the reference. `finalize` folds the
transform into the weight where a plain `nn.Linear` can hold the result (AWQ, SmoothQuant: `dequantize(codes) / s`;
rotation: the rotation undone, `hadamard_transform(W', inverse=True)`); the per-token quantization is dropped, as
`finalize` drops activation quantizers.
"""

from __future__ import annotations

import numpy as np
import torch

from torch_backend.nn.backend import NUMPY, TORCH, numpy_tree, same_bits
from torch_backend.nn.compressions import Compression, Encoded


class Stored(Compression):
    """A post-training result computed once from the layer's inputs and stored; see the module docstring."""

    algorithm = ""
    STATS: tuple[str, ...] = ()  # the statistics of the inputs that `run` reads
    TRANSFORMS_INPUT = False  # whether `transform_input` changes the layer's input (then an `InputTransform` hook)

    def __init__(self, options):
        super().__init__()
        self.options = dict(options)
        self.calibrated = False
        self.folded = False

    # ---- written once for both backends -----------------------------------------------------------------------
    def statistics(self, B, x) -> dict:
        """The reductions of the input rows `x` (float32 `(rows, in_features)`) that `run` needs."""
        out = {}
        if "hessian" in self.STATS:
            out["hessian"] = B.gptq_hessian(x)
        if "act_scale" in self.STATS:
            out["act_scale"] = B.awq_act_scale(x)
        if "act_max" in self.STATS:
            out["act_max"] = x.abs().amax(dim=0) if B.is_torch else np.abs(x).max(axis=0)
        return out

    def run(self, B, w, stats) -> dict:
        """The algorithm: a dict of outputs, `weight` (what the forward uses) among them."""
        raise NotImplementedError

    def transform_input(self, B, x, s):
        """What the layer's input becomes once calibrated (identity by default)."""
        return x

    def fold(self, B, s):
        """The plain weight `finalize` leaves (the stored weight by default)."""
        return s["result_weight"]

    # ---- the forward and the replay -----------------------------------------------------------------------------
    def calibrate_rows(self, w, x):
        stats = self.statistics(TORCH, x)
        for name, value in stats.items():
            self.register_buffer(f"stat_{name}", value.detach().clone())
        for name, value in self.run(TORCH, w, stats).items():
            self.register_buffer(f"result_{name}", value.detach().clone())
        self.calibrated = True

    def stats(self, B=TORCH) -> dict:
        return {k.removeprefix("stat_"): v for k, v in self.state(B).items() if k.startswith("stat_")}

    def result(self, B=TORCH) -> dict:
        return {k.removeprefix("result_"): v for k, v in self.state(B).items() if k.startswith("result_")}

    def compute(self, B, w, s):
        if not self.calibrated:
            return w
        return self.fold(B, s) if self.folded else s["result_weight"]

    def replay(self, w: np.ndarray) -> np.ndarray:
        if not self.calibrated:
            return w
        s = self.state(NUMPY)
        want = self.run(NUMPY, w.astype(np.float32), self.stats(NUMPY))
        stored = self.result(NUMPY)
        same = want.keys() == stored.keys() and all(same_bits(np.asarray(want[k]), stored[k]) for k in want)
        out = (self.fold(NUMPY, s) if self.folded else want["weight"]) if same else np.full(w.shape, np.nan, np.float32)
        return out if w.dtype == np.float32 else out.astype(w.dtype)

    def encode(self, B, w, s):
        if not self.calibrated or self.folded:
            return None
        return self.encoded(B, s)

    def encoded(self, B, s) -> Encoded | None:
        return None

    def bits_per_weight(self) -> float:
        return float(self.options.get("bits", 32))

    def describe(self) -> dict:
        return {"algorithm": self.algorithm, **self.options}


def _group(w, options):
    return options.get("group_size") or w.shape[1]


def _affine_encoded(B, s, bits, symmetric, axis, group_size):
    qmin, qmax = B.integer_range(bits, True, symmetric)
    parts = {"scale": s["result_scale"], "zero_point": s["result_zero_point"]}
    return Encoded(s["result_codes"], "dequantize", parts, qmin, qmax, {"axis": axis, "group_size": group_size})


class AWQQuant(Stored):
    """`awq` on the layer; the input is divided by `s` and the weight holds `dequantize(codes of W * s)`."""

    algorithm = "awq"
    TRANSFORMS_INPUT = True
    STATS = ("hessian", "act_scale")

    def run(self, B, w, stats):
        o = self.options
        r = B.awq(w, stats["hessian"], stats["act_scale"], **o)
        g = _group(w, o)
        deq = B.dequantize(r.codes, r.scale, r.zero_point, axis=1, group_size=g)
        return {"weight": deq, "codes": r.codes, "scale": r.scale, "zero_point": r.zero_point, "smooth": r.smooth}

    def transform_input(self, B, x, s):
        return x / s["result_smooth"]

    def fold(self, B, s):
        return s["result_weight"] / s["result_smooth"][None, :]

    def encoded(self, B, s):
        g = s["result_codes"].shape[1] // s["result_scale"].shape[1]
        return _affine_encoded(B, s, self.options["bits"], self.options.get("symmetric", False), 1, g)


class SmoothQuantW8A8(Stored):
    """`smoothquant` on the layer; the input is divided by `s` and quantized per token (`act_bits`)."""

    algorithm = "smoothquant"
    TRANSFORMS_INPUT = True
    STATS = ("act_max",)

    def run(self, B, w, stats):
        o = self.options
        r = B.smoothquant(w, stats["act_max"], alpha=o["alpha"], bits=o["bits"])
        zero = B.int32_zeros_like(r.scale)
        return {"weight": r.weight, "codes": r.codes, "scale": r.scale, "zero_point": zero, "smooth": r.smooth}

    def transform_input(self, B, x, s):
        return B.per_token_fake_quantize(x / s["result_smooth"], bits=self.options["act_bits"], symmetric=True)

    def fold(self, B, s):
        return s["result_weight"] / s["result_smooth"][None, :]

    def encoded(self, B, s):
        return _affine_encoded(B, s, self.options["bits"], True, 0, None)


class RotatedQuant(Stored):
    """A randomized Hadamard rotation of the input dimension (`hadamard_transform` of the weight's rows and of the
    input, one key), then round-to-nearest of the rotated weight per group (min-max, `bits`), and the rotated input
    quantized per token (`act_bits`)."""

    algorithm = "rotation"
    TRANSFORMS_INPUT = True

    def key(self, B):
        return B.make_key(self.options["seed"])

    def run(self, B, w, stats):
        o = self.options
        wr = B.hadamard_transform(w, key=self.key(B))
        g = _group(w, o)
        qmin, qmax = B.integer_range(o["bits"], True, o["symmetric"])
        scale, zero = B.minmax_qparams(wr, qmin=qmin, qmax=qmax, symmetric=o["symmetric"], axis=1, group_size=g)
        codes = B.quantize(wr, scale, zero, qmin=qmin, qmax=qmax, axis=1, group_size=g)
        weight = B.dequantize(codes, scale, zero, axis=1, group_size=g)
        return {"weight": weight, "codes": codes, "scale": scale, "zero_point": zero}

    def transform_input(self, B, x, s):
        y = B.hadamard_transform(x, key=self.key(B))
        bits = self.options["act_bits"]
        return y if bits is None else B.per_token_fake_quantize(y, bits=bits, symmetric=True)

    def fold(self, B, s):
        return B.hadamard_transform(s["result_weight"], key=self.key(B), inverse=True)

    def encoded(self, B, s):
        g = s["result_codes"].shape[1] // s["result_scale"].shape[1]
        return _affine_encoded(B, s, self.options["bits"], self.options["symmetric"], 1, g)


class AdaRoundQuant(Stored):
    """AdaRound's layer-wise loop: min-max parameters per group, `adaround_init`, `iterations` steps of
    `adaround_step` (the regularizer off for the warm-up, then `adaround_beta`), `adaround_quantize`."""

    algorithm = "adaround"
    STATS = ("hessian",)

    def run(self, B, w, stats):
        o = self.options
        g = _group(w, o)
        qmin, qmax = B.integer_range(o["bits"], True, o["symmetric"])
        scale, zero = B.minmax_qparams(w, qmin=qmin, qmax=qmax, symmetric=o["symmetric"], axis=1, group_size=g)
        v = B.adaround_init(w, scale)
        m = B.zeros_like(w)
        s2 = B.zeros_like(w)
        total = o["iterations"]
        for t in range(total):
            beta = None if t < o["warmup"] * total else B.adaround_beta(t, total, warmup=o["warmup"])
            v, m, s2 = B.adaround_step(w, stats["hessian"], v, m, s2, scale, zero, step=t, qmin=qmin, qmax=qmax,
                                       beta=beta, lam=o["lam"], lr=o["lr"])  # fmt: skip
        codes = B.adaround_quantize(w, v, scale, zero, qmin=qmin, qmax=qmax)
        weight = B.dequantize(codes, scale, zero, axis=1, group_size=g)
        return {"weight": weight, "codes": codes, "scale": scale, "zero_point": zero}

    def encoded(self, B, s):
        g = s["result_codes"].shape[1] // s["result_scale"].shape[1]
        return _affine_encoded(B, s, self.options["bits"], self.options["symmetric"], 1, g)


class HQQQuant(Stored):
    """`hqq` on the weight (calibration-free: the inputs are not used). HQQ's codes decode as `(c - z) * scale` with
    a float zero point, which pqref's export schema does not hold: the weight is exported dense."""

    algorithm = "hqq"

    def run(self, B, w, stats):
        r = B.hqq(w, **self.options)
        return {"weight": r.weight, "codes": r.codes, "scale": r.scale, "zero": r.zero}


class InputTransform:
    """The forward pre-hook of a layer with a `Stored` compression: once calibrated, its input becomes
    `transform_input(TORCH, x)` (in float32, cast back to the input's dtype); the last call is kept for replay."""

    def __init__(self, compression: Stored, record: bool = True):
        self.compression, self.record = compression, record
        self.last = None
        self.handle = None

    def __call__(self, module, args):
        c = self.compression
        if not c.calibrated or c.folded or not args or not isinstance(args[0], torch.Tensor):
            return None
        x = args[0]
        xf = x.float()
        y = c.transform_input(TORCH, xf, c.state(TORCH))
        if self.record:
            self.last = (xf.detach().clone(), y.detach().clone())
        return (y if y.dtype == x.dtype else y.to(x.dtype), *args[1:])

    def replay(self) -> tuple[int, bool]:
        if self.last is None:
            return 0, True
        x, y = numpy_tree(self.last)
        c = self.compression
        return int(x.size), same_bits(np.asarray(c.transform_input(NUMPY, x, c.state(NUMPY))), y)
