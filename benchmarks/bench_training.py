"""One SGD training step of a ResNet-18-sized model on synthetic data: W8A8 fake quantization + 2:4 masks vs float.

The quantized step, in every conv and linear layer: a 2:4 mask of the weight along its flattened input
dimension (recomputed every step, ties to the lower index; layers whose input size is not a multiple of 4,
like the 3-channel stem, stay dense), `apply_mask` (`where(mask, w, +0.0)`), per-output-channel symmetric int8
fake quantization of the weight (min-max scales), and per-tensor asymmetric uint8 fake quantization of the
layer's input (min-max of the batch). Straight-through gradients; everything goes through `torch_backend`
(`torch_backend.kernels` where it has a fused path).
The step runs inside `kernels.deferred_checks()` (its input checks read from the device once, at the end); a
second row times the same step with every call reading its checks at once, and a third the same step composed
of torch's own (not exact) operations: `topk` 2:4 masks and `torch.fake_quantize_per_*_affine`, the floor that
eager torch gives for this work. The float step and the two
quantized ones take turns, rep by rep, so a change of the machine's load weighs on all of them alike.
On CPU the model is narrower and the images smaller (`Config.size`); a full CPU run also times batch 32.
"""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F
from torch import nn

import torch_backend.kernels as kernels
from benchmarks.common import Config, Row, timeit
from torch_backend.kernels import _dispatch
from torch_backend.pruning.magnitude import apply_mask
from torch_backend.quantization.affine import minmax_qparams


def quantize_weight(w):
    w2 = w.reshape(w.shape[0], -1)
    if w2.shape[1] % 4 == 0:
        mask = kernels.nm_mask(w2.detach(), 2, 4, axis=1)
        w2 = apply_mask(w2, mask)
    s, z = minmax_qparams(w2.detach(), qmin=-127, qmax=127, symmetric=True, axis=0)
    return kernels.fake_quantize(w2, s, z, qmin=-127, qmax=127, axis=0).reshape(w.shape)


def quantize_activation(x):
    s, z = minmax_qparams(x.detach(), qmin=0, qmax=255)
    return kernels.fake_quantize(x, s, z, qmin=0, qmax=255)


def native_weight(w):
    """The peer's composition of the same step (not exact, and not pqref's semantics): a 2:4 mask by `topk` (ties
    unspecified), `where`, and `torch.fake_quantize_per_channel_affine` with scales `max|w| / 127` (which
    multiplies by `1 / scale`). The floor that torch's own eager operations give, for comparison."""
    w2 = w.reshape(w.shape[0], -1)
    if w2.shape[1] % 4 == 0:
        g = w2.detach().abs().reshape(-1, 4)
        mask = torch.zeros_like(g, dtype=torch.bool).scatter_(1, g.topk(2, dim=1).indices, True)
        w2 = torch.where(mask.reshape(w2.shape), w2, 0.0)
    scale = (w2.detach().abs().amax(dim=1) / 127).clamp_min(torch.finfo(torch.float32).eps)
    zero = torch.zeros(w2.shape[0], dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w2, scale, zero, 0, -127, 127).reshape(w.shape)


def native_activation(x):
    """The peer's per-tensor uint8 fake quantization (not exact): min-max qparams on the host (one read of
    `aminmax`), then `torch.fake_quantize_per_tensor_affine`."""
    lo, hi = (v.item() for v in torch.aminmax(x.detach()))
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / 255, torch.finfo(torch.float32).eps)
    zero = int(min(255, max(0, round(-lo / scale))))
    return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


# `quantized` of a layer: False (float), True (pqref) or "native" (the peer's operations)
QUANTIZERS = {True: (quantize_activation, quantize_weight), "native": (native_activation, native_weight)}


class Conv(nn.Conv2d):
    quantized = False

    def forward(self, x):
        if not self.quantized:
            return super().forward(x)
        qa, qw = QUANTIZERS[self.quantized]
        return self._conv_forward(qa(x), qw(self.weight), self.bias)


class Linear(nn.Linear):
    quantized = False

    def forward(self, x):
        if not self.quantized:
            return super().forward(x)
        qa, qw = QUANTIZERS[self.quantized]
        return F.linear(qa(x), qw(self.weight), self.bias)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = Conv(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = Conv(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(Conv(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """ResNet-18 (He et al., 2016): a 7x7 stem, four stages of two basic blocks, global pooling, a classifier."""

    def __init__(self, width=64, classes=1000):
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width]
        self.stem = Conv(3, w[0], 7, 2, 3, bias=False)
        self.bn = nn.BatchNorm2d(w[0])
        layers, cin = [], w[0]
        for i, cout in enumerate(w):
            layers += [Block(cin, cout, 1 if i == 0 else 2), Block(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = Linear(w[3], classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.stem(x))), 3, 2, 1)
        x = self.layers(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def set_quantized(model, on):
    """Every conv and linear layer float (`False`), pqref's W8A8 + 2:4 (`True`) or the peer's (`"native"`)."""
    for module in model.modules():
        if isinstance(module, Conv | Linear):
            module.quantized = on


def _interleaved(model, variants, cfg, reps, warmup):
    """Median ms of each `(quantized, step)` variant, the variants taking turns rep by rep, so a change of the
    machine's load during the run weighs on all of them alike (the ratios are what the suite reports)."""
    for quantized, fn in variants:
        set_quantized(model, quantized)
        for _ in range(warmup):
            fn()
    times = [[] for _ in variants]
    for _ in range(reps):
        for i, (quantized, fn) in enumerate(variants):
            set_quantized(model, quantized)
            times[i].append(timeit(fn, cfg, reps=1, warmup=0))
    return [statistics.median(t) for t in times]


def run(cfg: Config) -> list[Row]:
    """The step at the suite's batch; on a full CPU run also at batch 32, where the float step's work grows with
    the batch and the quantizers' fixed cost per layer (tens of small torch operations per call) does not."""
    rows = _run(cfg, cfg.size(128, 8, 2, 2))
    if not cfg.cuda and not cfg.quick and not cfg.smoke:
        rows += _run(cfg, 32)
    return rows


def _run(cfg: Config, batch: int) -> list[Row]:
    width = cfg.size(64, 16, 8, 4)
    image = cfg.size(224, 64, 32, 32)
    classes = 1000 if cfg.cuda else 100
    torch.manual_seed(0)
    model = ResNet18(width, classes).to(cfg.device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn((batch, 3, image, image), device=cfg.device)
    target = torch.randint(0, classes, (batch,), device=cfg.device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        opt.step()

    def deferred_step():  # the input checks of the whole step read from the device once, at its end
        with kernels.deferred_checks():
            step()

    if cfg.cuda:
        torch.backends.cudnn.benchmark = True
    reps = cfg.size(10, 7, 3, 1)
    float_ms, quant_ms, checked_ms, native_ms = _interleaved(
        model,
        [(False, step), (True, deferred_step), (True, step), ("native", step)],
        cfg,
        reps,
        warmup=cfg.size(3, 1, 1, 0),
    )
    params = sum(p.numel() for p in model.parameters())
    case = f"ResNet-18 width {width}, {params / 1e6:.3g}M params, batch {batch}, {image}x{image}"
    return [
        Row(
            "training step",
            case,
            "W8A8 + 2:4 (pqref kernels)",
            quant_ms,
            "float32 step",
            float_ms,
            quant_ms / float_ms,
            path=_dispatch.path(x),
            note="masks and scales recomputed every step; checks deferred to the step's end (one device read)",
        ),
        Row(
            "training step",
            case,
            "W8A8 + 2:4, checks per call",
            checked_ms,
            "float32 step",
            float_ms,
            checked_ms / float_ms,
            path=_dispatch.path(x),
            note="every call reads its checks from the device at once (about five reads per layer)",
        ),
        Row(
            "training step",
            case,
            "W8A8 + 2:4, torch's native ops (not exact)",
            native_ms,
            "float32 step",
            float_ms,
            native_ms / float_ms,
            path="eager",
            note="the floor of torch's own eager operations: topk 2:4 masks, fake_quantize_per_channel/per_tensor_affine",
        ),
    ]
