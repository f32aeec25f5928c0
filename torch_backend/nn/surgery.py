"""Physical channel removal: turn channel masks on batch norms into a smaller model.

After network slimming (or structured pruning of a producer's output channels) a channel whose batch-norm scale
and shift are both +0.0 outputs exactly 0, so the producer's filter, the batch-norm entries and the consumer's
input slice can be deleted. The smaller model computes the same function; its outputs equal the masked model's up
to float rounding, **not bit for bit**: the consumer's sums now run over fewer terms, in another order. The tests
state the tolerance (relative 1e-5 of the output scale).

It handles one model shape only: a flat `nn.Sequential` whose layers form chains
`Conv2d | Linear -> BatchNorm -> (ReLU, MaxPool, AvgPool, Dropout, Identity)* -> [Flatten] -> Conv2d | Linear`.
Flatten is channel-major: channel c owns `in_features / channels` consecutive inputs of the consumer. Models with
branches (residual additions, concatenations), nested containers, grouped convolutions or attention are not
handled here: their channels must be removed in dependency groups (a separate piece of work). The model must be
plain: call `Compressor.finalize()` first (a parametrized or activation-quantized model is rejected).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

PASS_THROUGH = (nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout, nn.Identity, nn.LeakyReLU)
PRODUCERS = (nn.Conv2d, nn.Linear)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def channel_keep(bn) -> torch.Tensor:
    """The channels a batch norm still uses: those whose scale or shift is not zero."""
    return (bn.weight.detach() != 0) | (bn.bias.detach() != 0)


def remove_channels(model: nn.Sequential, keep: dict[int, torch.Tensor] | None = None) -> nn.Sequential:
    """A copy of `model` without the channels that `keep` drops.

    **Arguments:**

    - `model`: an `nn.Sequential` without parametrizations (call `Compressor.finalize()` first).
    - `keep`: `{index of a batch norm in model: bool mask of its channels}`; by default, every batch norm with
      `channel_keep(bn)`.

    **Returns:**

    A new `nn.Sequential`; `model` is not changed.
    """
    _check_plain(model)
    layers = list(copy.deepcopy(model))
    if keep is None:
        keep = {i: channel_keep(m) for i, m in enumerate(layers) if isinstance(m, NORMS)}
    for i, mask in sorted(keep.items()):
        bn = layers[i]
        if not isinstance(bn, NORMS):
            raise ValueError(f"layer {i} is {type(bn).__name__}, not a batch norm")
        mask = mask.to(torch.bool).cpu()
        if mask.numel() != bn.num_features:
            raise ValueError(f"layer {i}: mask has {mask.numel()} channels, the batch norm {bn.num_features}")
        if not bool(mask.any()):
            raise ValueError(f"layer {i}: removing every channel would disconnect the network")
        p = i - 1
        if p < 0 or not isinstance(layers[p], PRODUCERS):
            raise ValueError(f"layer {i}: expected a Conv2d or Linear right before the batch norm")
        c = i + 1
        flatten = False
        while c < len(layers) and not isinstance(layers[c], PRODUCERS):
            if isinstance(layers[c], nn.Flatten):
                flatten = True
            elif not isinstance(layers[c], PASS_THROUGH):
                raise ValueError(f"layer {c} ({type(layers[c]).__name__}) between batch norm {i} and its consumer")
            c += 1
        if c == len(layers):
            raise ValueError(f"layer {i}: no Conv2d or Linear consumes the batch norm's channels")
        idx = torch.nonzero(mask).reshape(-1)
        layers[p] = _slice_out(layers[p], idx)
        layers[i] = _slice_norm(bn, idx)
        per = layers[c].in_features // bn.num_features if flatten else 1
        if flatten and per * bn.num_features != layers[c].in_features:
            raise ValueError(f"layer {c}: {layers[c].in_features} inputs are not a multiple of {bn.num_features}")
        cols = (idx.reshape(-1, 1) * per + torch.arange(per)).reshape(-1) if per > 1 else idx
        layers[c] = _slice_in(layers[c], cols)
    return nn.Sequential(*layers).train(model.training)


def _check_plain(model):
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"remove_channels handles an nn.Sequential of layers, got {type(model).__name__} (models with branches "
            f"need dependency-aware channel groups, which this function does not build)"
        )
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module):
            raise ValueError(
                f"layer {name!r} is parametrized (a compressed model): call Compressor.finalize() first, then "
                f"remove the channels of the plain model"
            )
        if hasattr(module, "pqref_activation"):
            raise ValueError(f"layer {name!r} has an activation quantizer: call Compressor.finalize() first")


def _slice_out(m, idx):
    if isinstance(m, nn.Conv2d):
        new = nn.Conv2d(m.in_channels, len(idx), m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                        m.bias is not None, m.padding_mode)  # fmt: skip
    else:
        new = nn.Linear(m.in_features, len(idx), m.bias is not None)
    with torch.no_grad():
        new.weight.copy_(m.weight[idx.to(m.weight.device)])
        if m.bias is not None:
            new.bias.copy_(m.bias[idx.to(m.bias.device)])
    return new.to(m.weight.device).train(m.training)


def _slice_in(m, idx):
    if isinstance(m, nn.Conv2d):
        if m.groups != 1:
            raise ValueError("grouped convolutions are not supported as consumers")
        new = nn.Conv2d(len(idx), m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, 1,
                        m.bias is not None, m.padding_mode)  # fmt: skip
    else:
        new = nn.Linear(len(idx), m.out_features, m.bias is not None)
    with torch.no_grad():
        new.weight.copy_(m.weight[:, idx.to(m.weight.device)])
        if m.bias is not None:
            new.bias.copy_(m.bias)
    return new.to(m.weight.device).train(m.training)


def _slice_norm(bn, idx):
    new = type(bn)(len(idx), bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            src = getattr(bn, name)
            if src is not None:
                getattr(new, name).copy_(src[idx.to(src.device)])
        if bn.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.to(bn.weight.device).train(bn.training)
