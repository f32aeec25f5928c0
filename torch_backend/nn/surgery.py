"""Physical channel removal: turn pruned channels into a smaller ordinary model.

Two entry points:

- `remove_pruned_channels(model, example_input)`: any traceable model (residual additions, concatenations,
  depthwise and grouped convolutions, attention heads). The channel dependency groups come from `torch.fx`
  (`torch_backend.nn.graph`); a unit is removed when every parameter entry it owns is zero, which is what the
  grouped `slimming` and `ln_structured` recipes leave after `Compressor.finalize()`. `remove_units(model, graph,
  keep)` removes the units you choose.
- `remove_channels(model, keep=None)`: the flat `nn.Sequential` case, from batch-norm masks alone.

The smaller model computes the same function as the masked one up to float rounding, **not bit for bit**: the
consumers' sums now run over fewer terms, in another order. Every kept parameter value is copied bit for bit.
`remove_pruned_channels` checks the bound on the example input before it returns: the largest difference of any
output is at most `tolerance` (default `1e-5`) times the largest output magnitude of the masked model, else
`RemovalError`. The model must be plain: call `Compressor.finalize()` first (a parametrized or
activation-quantized model is rejected).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.nn.utils import parametrize

from torch_backend.nn.graph import ChannelGraph, channel_graph

__all__ = [
    "PrunedMultiheadAttention", "RemovalError", "channel_keep", "pruned_units", "remove_channels",
    "remove_pruned_channels", "remove_units",
]  # fmt: skip

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
            f"remove_channels handles an nn.Sequential of layers, got {type(model).__name__}; for models with "
            f"branches use remove_pruned_channels(model, example_input), which builds dependency-aware channel groups"
        )
    _check_unparametrized(model)


def _check_unparametrized(model):
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


# ---- any traceable model: dependency groups ------------------------------------------------------------------


class RemovalError(RuntimeError):
    """The smaller model's outputs differ from the masked model's by more than the stated bound on the example
    input: an operation the channel graph mistook for a channel-wise one. Nothing is returned."""


def remove_pruned_channels(model: nn.Module, example_input, *, tolerance: float | None = 1e-5) -> nn.Module:
    """A smaller copy of `model` without the units whose parameters are all zero.

    **Arguments:**

    - `model`: a plain `nn.Module` (call `Compressor.finalize()` first), traceable by `torch.fx`.
    - `example_input`: a tensor or a tuple of tensors for the forward, on the model's device: it gives the shapes
      to the channel graph and is the input on which the bound is checked. Real data are a better check than
      zeros.
    - `tolerance`: the bound, relative to the output scale: every output of the smaller model differs from the
      masked model's by at most `tolerance * max|masked outputs|` (both in eval mode); `None` skips the check.

    **Returns:**

    A new model; `model` is not changed. It is a deep copy of `model` with smaller layers (an
    `nn.MultiheadAttention` that loses heads becomes a `PrunedMultiheadAttention`), or, where the forward states a
    size that changes (`x.view(B, T, n_heads, d)` in hand-written attention), the traced `torch.fx.GraphModule`
    with those sizes rewritten (the same parameter names).

    !!! note
        A unit is removed when every parameter entry it owns (the producer's rows and bias, the norms' scale and
        shift, the consumers' columns) is `+0.0` or `-0.0`; pinned units are never removed (see
        `ChannelGraph.pinned`). Buffers are sliced along (running statistics) but not looked at. A group whose every
        unit is zero raises `ValueError`: removing it would disconnect the network.
    """
    _check_unparametrized(model)
    if tolerance is not None:
        from reference.common import validate

        tolerance = validate.real("tolerance", tolerance, lo=0.0)
    graph = channel_graph(model, example_input)
    keep = pruned_units(model, graph)
    small = remove_units(model, graph, keep)
    if tolerance is not None:
        _check_bound(model, small, graph.example_input, tolerance)
    return small


def pruned_units(model: nn.Module, graph: ChannelGraph) -> list[np.ndarray]:
    """For every group of `graph`, a bool array of its units: False for a unit that is not pinned and whose
    parameter entries (in every member) are all zero, True otherwise."""
    _check_graph(model, graph)
    out = []
    for g in graph.groups:
        alive = np.zeros(g.count, dtype=bool)
        for m in g.members:
            t = _tensor_of(model, m.module, m.tensor)
            if not isinstance(t, nn.Parameter):
                continue
            nonzero = (t.detach() != 0).movedim(m.axis, 0).reshape(t.shape[m.axis], -1).any(dim=1).cpu().numpy()
            owned = g.unit_of[m]
            np.logical_or.at(alive, owned[owned >= 0], nonzero[owned >= 0])
        out.append(alive | np.array([p is not None for p in g.pinned], dtype=bool))
    return out


def remove_units(model: nn.Module, graph: ChannelGraph, keep) -> nn.Module:
    """A smaller copy of `model` without the units `keep` drops (no bound check; see `remove_pruned_channels`).

    **Arguments:**

    - `model`: the plain model `graph` was built from.
    - `graph`: `channel_graph(model, example_input)`.
    - `keep`: one bool array (NumPy or torch) per group of `graph`, of the group's unit count, True where a unit
      stays. A pinned unit must stay; every group keeps at least one unit.

    **Returns:**

    A new model; `model` is not changed.
    """
    _check_unparametrized(model)
    _check_graph(model, graph)
    keep = _check_keep(graph, keep)
    dropped: dict[tuple[str, str, int], np.ndarray] = {}
    for g, k in zip(graph.groups, keep, strict=True):
        for m in g.members:
            owned = g.unit_of[m]
            gone = (owned >= 0) & ~k[np.maximum(owned, 0)]
            key = (m.module, m.tensor, m.axis)
            dropped[key] = dropped.get(key, np.zeros(owned.size, dtype=bool)) | gone
    kept = {key: np.flatnonzero(~gone) for key, gone in dropped.items() if gone.any()}
    small = copy.deepcopy(model)
    by_module: dict[str, dict] = {}
    for (module, tensor, axis), idx in kept.items():
        by_module.setdefault(module, {})[(tensor, axis)] = idx
    attention = {name for name, m in small.named_modules() if isinstance(m, nn.MultiheadAttention)}
    for name in attention:
        own = {k: v for k, v in by_module.items() if k == name or k == f"{name}.out_proj"}
        if own:
            _replace(small, name, _prune_attention(small.get_submodule(name), own.get(name, {}),
                                                   own.get(f"{name}.out_proj", {})))  # fmt: skip
    for name, cut in by_module.items():
        if name in attention or (name.endswith(".out_proj") and name.removesuffix(".out_proj") in attention):
            continue
        _prune_module(small.get_submodule(name), name, cut)
    rewrites = _rewrites(graph, keep)
    if rewrites:
        small = _rewritten(small, graph, rewrites)
    return small


class PrunedMultiheadAttention(nn.Module):
    """`nn.MultiheadAttention` with some heads removed (and possibly fewer input or output channels).

    The state has the names of `nn.MultiheadAttention`'s: `in_proj_weight` (the q, k and v rows of the kept heads,
    stacked), `in_proj_bias`, `out_proj.weight`, `out_proj.bias`. The forward takes the same arguments and
    computes softmax(q k^T / sqrt(head_dim) + mask) v per head, then `out_proj`, as the source does; with
    `need_weights=True` the returned weights are averaged over the kept heads. A 3-D `attn_mask` (one per head) is
    not supported.
    """

    pqref_leaf = True  # torch.fx traces it as one module

    def __init__(self, source: nn.MultiheadAttention, heads, columns, rows):
        super().__init__()
        E, H = source.embed_dim, source.num_heads  # noqa: N806
        hd = E // H
        inner = torch.as_tensor([h * hd + d for h in heads for d in range(hd)], dtype=torch.long)
        stacked = torch.cat([inner, inner + E, inner + 2 * E]).to(source.in_proj_weight.device)
        columns = columns.to(stacked.device)
        rows = rows.to(stacked.device)
        self.num_heads, self.head_dim, self.batch_first = len(heads), hd, source.batch_first
        self.dropout = source.dropout
        self.embed_dim = len(columns)
        with torch.no_grad():
            self.in_proj_weight = nn.Parameter(source.in_proj_weight[stacked][:, columns].clone())
            bias = source.in_proj_bias
            self.in_proj_bias = None if bias is None else nn.Parameter(bias[stacked].clone())
            out = source.out_proj
            self.out_proj = nn.Linear(len(inner), len(rows), bias=out.bias is not None).to(out.weight.device)
            self.out_proj.weight = nn.Parameter(out.weight[rows][:, inner.to(rows.device)].clone())
            if out.bias is not None:
                self.out_proj.bias = nn.Parameter(out.bias[rows].clone())
        self.to(dtype=source.in_proj_weight.dtype)
        self.train(source.training)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):  # fmt: skip
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        n = self.num_heads * self.head_dim
        wq, wk, wv = self.in_proj_weight.split(n)
        bq, bk, bv = (None, None, None) if self.in_proj_bias is None else self.in_proj_bias.split(n)
        batch, length, source = query.shape[0], query.shape[1], key.shape[1]
        q = F.linear(query, wq, bq).reshape(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        k = F.linear(key, wk, bk).reshape(batch, source, self.num_heads, self.head_dim).transpose(1, 2)
        v = F.linear(value, wv, bv).reshape(batch, source, self.num_heads, self.head_dim).transpose(1, 2)
        scores = (q * math.sqrt(1.0 / self.head_dim)) @ k.transpose(-2, -1)
        scores = scores + self._mask(attn_mask, key_padding_mask, is_causal, length, source, scores)
        weights = torch.softmax(scores, dim=-1)
        if self.training and self.dropout > 0:
            weights = F.dropout(weights, p=self.dropout)
        out = (weights @ v).transpose(1, 2).reshape(batch, length, n)
        out = self.out_proj(out)
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        w = weights.mean(dim=1) if average_attn_weights else weights
        return out, (w.squeeze(0) if unbatched else w)

    @staticmethod
    def _mask(attn_mask, key_padding_mask, is_causal, length, source, like):
        mask = torch.zeros((), dtype=like.dtype, device=like.device)
        if attn_mask is None and is_causal:
            attn_mask = torch.ones(length, source, dtype=torch.bool, device=like.device).triu(1)
        for m, view in ((attn_mask, (1, 1, length, source)), (key_padding_mask, (-1, 1, 1, source))):
            if m is None:
                continue
            if m.dim() > 2:
                raise ValueError("PrunedMultiheadAttention takes a 2-D attn_mask only (one for every head)")
            m = m.reshape(view)
            add = torch.zeros(m.shape, dtype=like.dtype, device=like.device).masked_fill(m, float("-inf"))
            mask = mask + (add if m.dtype == torch.bool else m.to(like.dtype))
        return mask


def _check_graph(model, graph):
    """`graph` must be the channel graph of `model`: every member a tensor of it, of the member's length."""
    if not isinstance(graph, ChannelGraph):
        raise TypeError(
            f"graph must be a ChannelGraph (channel_graph(model, example_input)), got {type(graph).__name__}"
        )
    for g in graph.groups:
        for m in g.members:
            try:
                t = _tensor_of(model, m.module, m.tensor)
            except AttributeError:
                t = None
            if isinstance(t, torch.Tensor):
                size = t.shape[m.axis] if t.ndim > m.axis else None
            else:
                size = t if isinstance(t, int) else None
            if size != g.unit_of[m].size:
                raise ValueError(
                    f"graph does not belong to this model: member {m} of group {g.index} has {g.unit_of[m].size} "
                    f"positions, the model's {m.module}.{m.tensor} has {'none' if size is None else size}"
                )


def _check_keep(graph, keep):
    if not isinstance(keep, list | tuple) or len(keep) != len(graph.groups):
        n = len(keep) if isinstance(keep, list | tuple) else type(keep).__name__
        raise ValueError(f"keep must hold one bool array per group ({len(graph.groups)}), got {n}")
    out = []
    for g, k in zip(graph.groups, keep, strict=True):
        k = k.detach().cpu().numpy() if isinstance(k, torch.Tensor) else np.asarray(k)
        if k.dtype != bool or k.shape != (g.count,):
            raise ValueError(f"keep[{g.index}] must be a bool array of shape ({g.count},), got {k.dtype} {k.shape}")
        for u in np.flatnonzero(~k):
            if g.pinned[u] is not None:
                raise ValueError(f"keep[{g.index}] drops unit {u}, which is pinned: {g.pinned[u]}")
        if g.count and not k.any():
            raise ValueError(
                f"keep[{g.index}] drops every unit of group {g.index} ({', '.join(g.modules())}): removing them all "
                f"would disconnect the network"
            )
        out.append(k)
    return out


def _tensor_of(model, module, tensor):
    m = model.get_submodule(module)
    plist = getattr(m, "parametrizations", None)
    if plist is not None and tensor in plist:
        return plist[tensor].original
    return getattr(m, tensor, None)


def _replace(root, name, new):
    """Put `new` wherever the module called `name` sits (a module shared under several names everywhere)."""
    old = root.get_submodule(name)
    for path, m in list(root.named_modules(remove_duplicate=False)):
        if m is old and path:
            parent, _, child = path.rpartition(".")
            setattr(root.get_submodule(parent) if parent else root, child, new)


def _slice(t, axis, idx):
    return t.detach().index_select(axis, torch.as_tensor(idx, dtype=torch.long, device=t.device)).clone()


def _set(module, tensor, value):
    old = getattr(module, tensor)
    if isinstance(old, nn.Parameter):
        setattr(module, tensor, nn.Parameter(value, requires_grad=old.requires_grad))
    else:
        module._buffers[tensor] = value


def _prune_module(m, name, cut):
    """Slice the tensors of one module along the kept positions `cut[(tensor, axis)]`, in place (`m` is a copy)."""
    for (tensor, axis), idx in cut.items():
        if tensor in m._parameters or tensor in m._buffers:
            _set(m, tensor, _slice(getattr(m, tensor), axis, idx))
    if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        if m.groups > 1 and ("weight", 0) in cut:
            per_out, per_in = m.out_channels // m.groups, m.in_channels // m.groups
            rows = cut[("weight", 0)]
            kept_groups = np.unique(rows // per_out)
            if not np.array_equal(rows, (kept_groups[:, None] * per_out + np.arange(per_out)).reshape(-1)):
                raise RuntimeError(f"module {name!r}: a convolution group would be cut in part")  # graph invariant
            m.groups = len(kept_groups)
            m.in_channels = m.groups * per_in
        m.out_channels = m.weight.shape[0]
        if m.groups == 1:
            m.in_channels = m.weight.shape[1]
    elif isinstance(m, nn.Linear):
        m.out_features, m.in_features = m.weight.shape
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        m.num_features = len(next(iter(cut.values())))
    elif isinstance(m, nn.GroupNorm):
        per = m.num_channels // m.num_groups
        m.num_channels = len(next(iter(cut.values())))
        m.num_groups = m.num_channels // per
    elif isinstance(m, nn.Embedding):
        m.embedding_dim = m.weight.shape[1]
    elif isinstance(m, nn.PReLU):
        m.num_parameters = m.weight.shape[0]
    else:
        raise RuntimeError(f"module {name!r} ({type(m).__name__}) has channel members but no removal rule")


def _prune_attention(m, own, out_proj):
    E, H = m.embed_dim, m.num_heads  # noqa: N806
    hd = E // H
    rows = own.get(("in_proj_weight", 0))
    heads = list(range(H)) if rows is None else sorted({int(r) // hd for r in rows if r < E})
    columns = own.get(("in_proj_weight", 1), np.arange(E))
    out_rows = out_proj.get(("weight", 0), np.arange(E))
    return PrunedMultiheadAttention(m, heads, torch.as_tensor(columns), torch.as_tensor(out_rows))


def _rewrites(graph, keep):
    """`{node name: (axis, new size)}` for the reshapes whose output channel axis changes size."""
    out = {}
    for name, axis, roots in graph.reshapes:
        size = 0
        for r in roots:
            g, u = graph.units.get(r, (None, None))
            size += 1 if g is None else bool(keep[g][u])
        if size != len(roots):
            out.setdefault(name, []).append((axis, size))
    return out


def _rewritten(small, graph, rewrites):
    """The traced graph of `model` over the modules of `small`, with the size arguments of `rewrites` changed."""
    new = fx.Graph()
    new.output(new.graph_copy(graph.graph, {}))
    for node in new.nodes:
        for axis, size in rewrites.get(node.name, ()):
            packed = len(node.args) == 2 and isinstance(node.args[1], list | tuple)
            sizes = list(node.args[1] if packed else node.args[1:])
            if axis >= len(sizes):
                raise RemovalError(f"node {node.name!r} states its shape in one argument; cannot rewrite its sizes")
            if sizes[axis] != -1:
                sizes[axis] = size
            node.args = (node.args[0], tuple(sizes)) if packed else (node.args[0], *sizes)
    return fx.GraphModule(small, new, type(small).__name__)


def _check_bound(model, small, args, tolerance):
    a, b = copy.deepcopy(model).eval(), copy.deepcopy(small).eval()
    with torch.no_grad():
        want, got = _flat(a(*args)), _flat(b(*args))
    if len(want) != len(got) or any(w.shape != g.shape for w, g in zip(want, got, strict=True)):
        raise RemovalError("the smaller model's outputs have other shapes than the masked model's")
    scale = max([float(w.detach().abs().max()) for w in want if w.numel()] + [0.0])
    error = max(
        [float((w.double() - g.double()).abs().max()) for w, g in zip(want, got, strict=True) if w.numel()] + [0.0]
    )
    if not error <= tolerance * scale:
        raise RemovalError(
            f"the smaller model differs from the masked one by {error:.3g} on the example input, more than "
            f"tolerance {tolerance:g} x output scale {scale:.3g}: an operation on the channels is not channel-wise "
            f"(please report the model)"
        )


def _flat(value):
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _flat(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flat(v)]
    return []
