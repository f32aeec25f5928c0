"""Channel dependency groups from `torch.fx`: which parameter slices must be pruned together.

`channel_graph(model, example_input)` traces the model with `torch.fx`, runs it once on a copy to learn every
tensor's shape, and follows each channel from the layer that makes it to every layer that reads it. Channels that
meet (two tensors added, multiplied, concatenated and normalized together, the groups of a grouped convolution,
the heads of an attention) are joined into one *unit*; units with the same members form a `Group`. Pruning a unit
sets every parameter slice it owns to `+0.0` (the producer's output rows and bias, the batch-norm entries, the
consumers' input columns); `surgery.remove_pruned_channels` then deletes those slices, and the smaller model equals
the masked one up to float rounding.

What joins channels (each pattern has a picture in the docs page *Structured pruning*):

| pattern | rule |
|---|---|
| residual addition, multiplication (gating, squeeze-excitation) | the channels at one position of the operands form one unit |
| concatenation along the channels | each operand keeps its own units; the result lists them in order |
| batch norm, per-channel PReLU | a member of the unit of its channel (scale, shift, running statistics) |
| depthwise and grouped convolution | one unit per convolution group: its input channels and output channels together |
| group norm | one unit per norm group (its statistics span the group) |
| layer norm, RMS norm over the channels | pins them: the statistics span every channel |
| flatten into linear | channel `c` owns the `H * W` consecutive inputs of the linear layer |
| reshape that splits the channels (attention heads) | one unit per block of the outer axis: a head owns its `head_dim` rows |
| `nn.MultiheadAttention` | one unit per head: its q, k, v rows and biases and its `out_proj` columns |

A channel is *pinned* (never pruned) where removing it would change what the kept channels compute, or cannot be
expressed: the model's outputs, statistics over channels (layer norm, a mean over channels, softmax along the
channels), a contraction of two activations over the channels, an operand that cannot be sliced (a model input or a
free parameter added to the channels), slicing or splitting the channel axis, tied parameters, and any operation
pqref does not know (it pins every channel it receives). `ChannelGraph.pinned` says why, naming the node.
"""

from __future__ import annotations

import copy
import math
import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.nn.utils import parametrize

__all__ = ["ChannelGraph", "GraphError", "Group", "Member", "channel_graph"]


class GraphError(ValueError):
    """A model whose channel graph cannot be built: `torch.fx` cannot trace it, or an example input does not run.
    The message names the module or node at fault."""


@dataclass(frozen=True)
class Member:
    """One tensor slice of a group: `module.tensor` (a parameter or buffer) along `axis`, in the role of a producer
    (`"out"`: output rows), a consumer (`"in"`: input columns), a norm (`"norm"`) or an attention head (`"head"`)."""

    module: str
    tensor: str
    axis: int
    role: str

    def __str__(self) -> str:
        return f"{self.module}.{self.tensor}[axis {self.axis}, {self.role}]"


@dataclass
class Group:
    """Units that share their members. `unit_of[m][i]` is the unit (in `[0, count)`) of position `i` of member `m`
    along its axis, or -1 where that position belongs to another group; `pinned[u]` is why unit `u` may not be
    pruned, or None."""

    index: int
    members: tuple[Member, ...]
    unit_of: dict[Member, np.ndarray]
    count: int
    pinned: tuple[str | None, ...]

    @property
    def prunable(self) -> int:
        return sum(p is None for p in self.pinned)

    def modules(self) -> list[str]:
        return list(dict.fromkeys(m.module for m in self.members))

    def picture(self, title: str = "") -> str:
        """An SVG picture of the group: one row per member slice (running statistics left out), one cell per
        position along its axis, colored by unit (grey: a position of another group; hatched: pinned)."""
        return _svg(self, title)

    def describe(self) -> str:
        pins = sorted({p for p in self.pinned if p is not None})
        head = f"group {self.index}: {self.count} unit(s), {self.prunable} prunable"
        lines = [head + (f"; pinned: {'; '.join(pins)}" if pins else "")]
        for m in self.members:
            owned = self.unit_of[m]
            lines.append(f"  {m} ({int((owned >= 0).sum())} of {owned.size} positions)")
        return "\n".join(lines)


@dataclass
class ChannelGraph:
    """The dependency groups of a traced model.

    `groups` in the order their first member appears in the forward; `reshapes` lists the `view`/`reshape` nodes
    whose output has channels along an axis whose size the forward states (`(node name, axis, vars)`): removal
    rewrites those sizes (see `surgery.remove_pruned_channels`). `example_input` is what the graph was built from.
    """

    groups: list[Group]
    reshapes: list = field(default_factory=list)
    graph: fx.Graph | None = None
    example_input: tuple = ()
    units: dict = field(default_factory=dict)  # channel variable (a union-find root) -> (group, unit)

    def describe(self) -> str:
        return "\n".join(g.describe() for g in self.groups)

    @property
    def pinned(self) -> dict[int, list[str]]:
        """`{group index: the distinct reasons of its pinned units}` for every group with a pinned unit."""
        out = {}
        for g in self.groups:
            reasons = sorted({p for p in g.pinned if p is not None})
            if reasons:
                out[g.index] = reasons
        return out

    def groups_with(self, module: str, tensor: str | None = None, axis: int | None = None) -> list[Group]:
        """The groups that have a member on `module` (and `tensor`, and `axis`, when given)."""
        return [
            g
            for g in self.groups
            if any(m.module == module and tensor in (None, m.tensor) and axis in (None, m.axis) for m in g.members)
        ]


def channel_graph(model: nn.Module, example_input) -> ChannelGraph:
    """Trace `model` with `torch.fx` and find its channel dependency groups.

    **Arguments:**

    - `model`: an `nn.Module`; plain or compressed (parametrized modules are traced as the layers they wrap).
    - `example_input`: a tensor, or a tuple of tensors (the forward's positional arguments), on the model's device:
      one forward of a deep copy of the model, in eval mode and without gradients, gives every tensor's shape.
      The model itself is not run and not changed.

    **Returns:**

    A `ChannelGraph`.

    !!! note
        A model `torch.fx` cannot trace (control flow on tensor values, `len(x)`, calls into untraceable code)
        raises `GraphError` naming the module being traced and the last node recorded. Torch modules are
        traced as leaves; pqref knows the common ones (module docstring) and pins the channels of any other.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise TypeError(
            "example_input must be a tensor or a tuple of tensors (the forward's positional arguments), got "
            f"{type(example_input).__name__}"
        )
    replica = copy.deepcopy(model).eval()
    gm = trace(replica)
    try:
        with torch.no_grad():
            _ShapeProp(gm).run(*args)
    except GraphError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the user's forward on the example input
        raise GraphError(f"the model does not run on the example input: {type(exc).__name__}: {exc}") from None
    return _Propagation(gm, model).run(args)


def trace(model: nn.Module) -> fx.GraphModule:
    """`torch.fx.symbolic_trace` with torch modules (parametrized ones too) as leaves, and an error that names the
    module being traced when tracing fails."""
    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # noqa: BLE001 - torch.fx raises TraceError, TypeError, AttributeError, ...
        where = tracer.failed_in or f"{type(model).__name__}.forward"
        last = [n for n in tracer.graph.nodes][-1:] if getattr(tracer, "graph", None) is not None else []
        after = f" (the last node traced: {last[0].name!r}, {_node_text(last[0])})" if last else ""
        raise GraphError(
            f"torch.fx cannot trace {where}{after}: {type(exc).__name__}: {exc}. Channel groups need a traceable "
            f"forward: no control flow on tensor values (see torch.fx's limitations of symbolic tracing)"
        ) from None
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


class _Tracer(fx.Tracer):
    def __init__(self):
        super().__init__()
        self.failed_in = None

    def is_leaf_module(self, m, qualname):
        leaf = parametrize.is_parametrized(m) or getattr(type(m), "pqref_leaf", False)
        return leaf or super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                name = self.path_of_module(m)
                self.failed_in = f"module {name!r} ({type(m).__name__})" if name else f"{type(m).__name__}.forward"
            raise


class _ShapeProp(fx.Interpreter):
    """Record every node's output shapes (`node.meta['shapes']`: a tuple of ints, a tuple of them for tuple
    outputs, or None for non-tensors); a failing node is named in the error."""

    def run_node(self, n):
        try:
            result = super().run_node(n)
        except Exception as exc:  # noqa: BLE001
            why = str(exc).split("\n\nWhile executing")[0].strip()  # torch.fx appends the graph's context
            raise GraphError(
                f"node {n.name!r} ({_node_text(n)}) fails on the example input: {type(exc).__name__}: {why}"
            ) from None
        n.meta["shapes"] = _shapes(result)
        return result


def _shapes(value):
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, list | tuple):
        return tuple(_shapes(v) for v in value)
    return None


def _node_text(n) -> str:
    if n.op == "call_module":
        return f"module {n.target!r}"
    if n.op in ("call_function", "call_method"):
        name = getattr(n.target, "__name__", str(n.target))
        return f"{'method' if n.op == 'call_method' else 'function'} {name}"
    return n.op


# ---- union-find over channel variables ---------------------------------------------------------------------


class _Vars:
    def __init__(self):
        self.parent: list[int] = []
        self.reason: dict[int, str] = {}

    def fresh(self, n: int) -> list[int]:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return list(range(start, start + n))

    def find(self, v: int) -> int:
        root = v
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[v] != root:
            self.parent[v], v = root, self.parent[v]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        if rb in self.reason:
            self.reason.setdefault(ra, self.reason.pop(rb))

    def pin(self, vs, reason: str) -> None:
        for v in vs:
            self.reason.setdefault(self.find(v), reason)


# Modules and functions that act on every element alone (or on each channel alone): channels pass through.
POINTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
    nn.Hardtanh, nn.ELU, nn.SELU, nn.CELU, nn.Mish, nn.Softplus, nn.Softsign, nn.Tanhshrink, nn.Identity,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
)  # fmt: skip
SPATIAL_MODULES = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.Upsample, nn.ZeroPad2d,
)  # fmt: skip
POINTWISE_FUNCTIONS = {
    torch.relu, F.relu, F.relu6, F.gelu, F.silu, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh, F.leaky_relu,
    F.hardswish, F.hardsigmoid, F.elu, F.mish, F.softplus, torch.exp, torch.abs, torch.neg, operator.neg,
    F.dropout, torch.clamp, torch.sqrt, torch.rsqrt, operator.pos,
}  # fmt: skip
POINTWISE_METHODS = {
    "relu", "sigmoid", "tanh", "exp", "abs", "neg", "clamp", "contiguous", "clone", "float", "half", "bfloat16",
    "double", "to", "type_as", "detach", "sqrt", "rsqrt", "relu_", "sigmoid_", "tanh_", "clamp_",
}  # fmt: skip
BINARY_FUNCTIONS = {
    operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, operator.isub, operator.imul,
    operator.itruediv, torch.add, torch.sub, torch.mul, torch.div, torch.maximum, torch.minimum, operator.pow,
    torch.pow,
}  # fmt: skip
BINARY_METHODS = {"add", "sub", "mul", "div", "add_", "sub_", "mul_", "div_", "pow", "maximum", "minimum"}
RESHAPES = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
RESHAPE_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "view_as", "reshape_as"}
SIZED = {"view", "reshape"}  # reshapes whose arguments state the sizes
SOFTMAX = {F.softmax, torch.softmax, F.log_softmax, torch.log_softmax}
REDUCTIONS = {torch.sum, torch.mean, torch.amax, torch.amin}
REDUCTION_METHODS = {"sum", "mean", "amax", "amin", "var", "std"}
SPATIAL_FUNCTIONS = {
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.adaptive_max_pool2d, F.interpolate,
}  # fmt: skip
NOT_TENSORS = {"size", "dim", "numel"}


class _Propagation:
    """Follow channel variables through the traced graph; then gather members into groups."""

    def __init__(self, gm: fx.GraphModule, model: nn.Module):
        self.gm, self.model = gm, model
        self.vars = _Vars()
        self.members: dict[Member, list[int]] = {}
        self.tracks: dict[fx.Node, object] = {}
        self.reshapes: list = []

    # ---- driver ---------------------------------------------------------------------------------------------
    def run(self, args) -> ChannelGraph:
        for node in self.gm.graph.nodes:
            self.tracks[node] = self.visit(node)
        self.pin_tied()
        groups, units = self.groups()
        return ChannelGraph(groups, self.resolved_reshapes(), self.gm.graph, args, units)

    def visit(self, node):
        if node.op in ("placeholder", "get_attr"):
            return {} if isinstance(node.meta.get("shapes"), tuple) else None
        if node.op == "output":
            for value in _nodes_in(node.args):
                for t in _flat_tracks(self.track(value)):
                    self.pin_track(t, f"the model's output (node {value.name!r})")
            return None
        if node.op == "call_module":
            return self.module(node, self.gm.get_submodule(node.target), node.target)
        return self.function(node)

    def track(self, value):
        if isinstance(value, fx.Node):
            return self.tracks.get(value)
        if isinstance(value, list | tuple):
            return tuple(self.track(v) for v in value)
        return None

    def shape(self, value):
        return value.meta.get("shapes") if isinstance(value, fx.Node) else None

    # ---- helpers --------------------------------------------------------------------------------------------
    def member(self, module: str, tensor: str, axis: int, role: str, vs: list[int]) -> list[int]:
        """Register `vs` as the units of `module.tensor` along `axis`; a module called twice (shared) joins the
        second call's channels to the first's, position by position."""
        key = Member(module, tensor, axis, role)
        old = self.members.get(key)
        if old is None:
            self.members[key] = list(vs)
            return list(vs)
        for a, b in zip(old, vs, strict=True):
            self.vars.union(a, b)
        return old

    def pin_track(self, t, reason: str, axes=None) -> None:
        if isinstance(t, dict):
            for a, vs in t.items():
                if axes is None or a in axes:
                    self.vars.pin(vs, reason)

    def pin_inputs(self, node, reason: str) -> None:
        for value in _nodes_in((node.args, node.kwargs)):
            for t in _flat_tracks(self.track(value)):
                self.pin_track(t, reason)

    def opaque(self, node, why: str | None = None):
        what = _node_text(node)
        if node.op == "call_module":
            what = f"{type(self.gm.get_submodule(node.target)).__name__} {node.target!r}"
        self.pin_inputs(node, why or f"{what} (node {node.name!r}) is not known to the channel graph")
        return _untracked(self.shape(node))

    # ---- modules ---------------------------------------------------------------------------------------------
    def module(self, node, m, name):
        x = node.args[0] if node.args else None
        t = self.track(x)
        if isinstance(m, nn.MultiheadAttention):
            return self.attention(node, m, name)
        if not isinstance(t, dict):
            return self.opaque(node) if t is not None else _untracked(self.shape(node))
        here = f"{type(m).__name__} {name!r}"
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            return self.conv(m, name, t, here)
        if isinstance(m, nn.Linear):
            return self.linear(m, name, t, len(self.shape(x)))
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            self.pin_track({a: v for a, v in t.items() if a != 1}, f"{here} mixes them in its statistics")
            if 1 in t:
                tensors = (["weight", "bias"] if m.affine else []) + (
                    ["running_mean", "running_var"] if m.track_running_stats else []
                )
                for tensor in tensors:
                    self.member(name, tensor, 0, "norm", t[1])
            return dict(t)
        if isinstance(m, nn.GroupNorm):
            return self.group_norm(m, name, t, here)
        if isinstance(m, nn.LayerNorm | getattr(nn, "RMSNorm", nn.LayerNorm)):
            nd = len(self.shape(x))
            k = len(m.normalized_shape)
            self.pin_track(t, f"{here} computes its statistics over them", axes=set(range(nd - k, nd)))
            return dict(t)
        if isinstance(m, nn.Embedding):
            return self.embedding(node, m, name)
        if isinstance(m, nn.PReLU):
            if m.num_parameters > 1 and 1 in t:
                self.member(name, "weight", 0, "norm", t[1])
            return dict(t)
        if isinstance(m, POINTWISE_MODULES):
            return dict(t)
        if isinstance(m, nn.Softmax | nn.LogSoftmax):
            return self.softmax(node, t, m.dim, here)
        if isinstance(m, SPATIAL_MODULES):
            self.pin_track({a: v for a, v in t.items() if a >= 2}, f"{here} mixes them")
            return {a: v for a, v in t.items() if a < 2}
        if isinstance(m, nn.Flatten):
            return self.reshape(node, x, sized=False)
        return self.opaque(node)

    def conv(self, m, name, t, here):
        self.pin_track({a: v for a, v in t.items() if a != 1}, f"{here} mixes them")
        cin = t.get(1)
        if m.groups == 1:
            if cin is not None:
                self.member(name, "weight", 1, "in", cin)
            out = self.vars.fresh(m.out_channels)
        else:
            per_in, per_out = m.in_channels // m.groups, m.out_channels // m.groups
            units = self.vars.fresh(m.groups)
            if cin is None:
                self.vars.pin(units, f"the input of grouped {here} cannot be pruned (a model input or not tracked)")
            else:
                for j, v in enumerate(cin):
                    self.vars.union(units[j // per_in], v)
            out = [units[j // per_out] for j in range(m.out_channels)]
        out = self.member(name, "weight", 0, "out", out)
        if m.bias is not None:
            self.member(name, "bias", 0, "out", out)
        return {1: out}

    def linear(self, m, name, t, nd):
        last = nd - 1
        if last in t:
            self.member(name, "weight", 1, "in", t[last])
        out = self.member(name, "weight", 0, "out", self.vars.fresh(m.out_features))
        if m.bias is not None:
            self.member(name, "bias", 0, "out", out)
        return {**{a: v for a, v in t.items() if a != last}, last: out}

    def group_norm(self, m, name, t, here):
        self.pin_track({a: v for a, v in t.items() if a != 1}, f"{here} mixes them in its statistics")
        if 1 in t:
            per = m.num_channels // m.num_groups
            units = self.vars.fresh(m.num_groups)
            for j, v in enumerate(t[1]):
                self.vars.union(units[j // per], v)
            for tensor in ("weight", "bias") if m.affine else ("num_channels",):  # num_channels: no tensor
                self.member(name, tensor, 0, "norm", t[1])
        return dict(t)

    def embedding(self, node, m, name):
        out = self.member(name, "weight", 1, "out", self.vars.fresh(m.embedding_dim))
        return {len(self.shape(node)) - 1: out}

    def attention(self, node, m, name):
        here = f"nn.MultiheadAttention {name!r}"
        names = ("query", "key", "value")
        inputs = [node.args[i] if i < len(node.args) else node.kwargs.get(k) for i, k in enumerate(names)]
        reasons = []
        if not m._qkv_same_embed_dim:
            reasons.append(f"{here} has separate q/k/v weights (kdim or vdim differ from embed_dim)")
        if m.bias_k is not None or m.add_zero_attn:
            reasons.append(f"{here} has bias_k/bias_v or add_zero_attn")
        mask = node.args[5] if len(node.args) > 5 else node.kwargs.get("attn_mask")
        if isinstance(mask, fx.Node) and len(self.shape(mask) or ()) == 3:
            reasons.append(f"{here} gets a per-head (3-D) attn_mask")
        for user in node.users:
            if not (user.op == "call_function" and user.target is operator.getitem):
                reasons.append(f"{here}: its output tuple is used whole")
            elif user.args[1] != 0 and user.users:
                reasons.append(f"{here}: its attention weights (averaged over the heads) are used")
        E, H = m.embed_dim, m.num_heads  # noqa: N806
        hd = E // H
        cols = self.vars.fresh(E) if m._qkv_same_embed_dim else []
        for value in inputs:
            t = self.track(value)
            if isinstance(t, dict):
                nd = len(self.shape(value))
                self.pin_track({a: v for a, v in t.items() if a != nd - 1}, f"{here} mixes them")
                if nd - 1 in t and cols:
                    for a, b in zip(cols, t[nd - 1], strict=True):
                        self.vars.union(a, b)
        heads = self.vars.fresh(H)
        if reasons:
            self.vars.pin(heads, reasons[0])
            self.pin_inputs(node, reasons[0])
            return (_untracked(self.shape(node)[0]), None)
        self.member(name, "in_proj_weight", 1, "in", cols)
        rows = [heads[(r % E) // hd] for r in range(3 * E)]
        self.member(name, "in_proj_weight", 0, "head", rows)
        if m.in_proj_bias is not None:
            self.member(name, "in_proj_bias", 0, "head", rows)
        self.member(f"{name}.out_proj", "weight", 1, "head", [heads[c // hd] for c in range(E)])
        out = self.member(f"{name}.out_proj", "weight", 0, "out", self.vars.fresh(E))
        if m.out_proj.bias is not None:
            self.member(f"{name}.out_proj", "bias", 0, "out", out)
        nd = len(self.shape(node)[0])
        return ({nd - 1: out}, None)

    # ---- functions and methods --------------------------------------------------------------------------------
    def function(self, node):
        fn, is_method, args = node.target, node.op == "call_method", node.args
        out = self.shape(node)
        tensor_out = isinstance(out, tuple) and not (out and isinstance(out[0], tuple | type(None)))
        if not is_method and fn is operator.getitem:
            return self.getitem(node)
        if (is_method and fn in NOT_TENSORS) or (not is_method and fn is getattr):
            return self.opaque(node) if tensor_out else None
        if not is_method and fn in (torch.cat, torch.concat):
            return self.cat(node)
        if not tensor_out:
            if (is_method and fn in ("chunk", "split", "unbind")) or (
                not is_method and fn in (torch.chunk, torch.split, torch.unbind)
            ):
                return self.split(node)
            return self.opaque(node) if self.tracked_inputs(node) else _untracked(out)
        if (is_method and fn in BINARY_METHODS) or (not is_method and fn in BINARY_FUNCTIONS):
            return self.elementwise(node, list(args[:2]))
        if not is_method and fn is torch.where:
            return self.elementwise(node, list(args[:3]))
        first = self.track(args[0]) if args else None
        if (is_method and fn in POINTWISE_METHODS) or (not is_method and fn in POINTWISE_FUNCTIONS):
            if len(self.tracked_inputs(node)) > (1 if first else 0):
                return self.opaque(node)
            return dict(first) if isinstance(first, dict) else _untracked(out)
        if not is_method and fn is F.scaled_dot_product_attention:
            return self.sdpa(node)
        if (is_method and fn in ("matmul", "bmm")) or (
            not is_method and fn in (operator.matmul, torch.matmul, torch.bmm)
        ):
            return self.matmul(node, args[0], args[1])
        if not isinstance(first, dict) or not first:
            return self.opaque(node) if self.tracked_inputs(node) else _untracked(out)
        if (is_method and fn in RESHAPE_METHODS) or (not is_method and fn in RESHAPES):
            return self.reshape(node, args[0], sized=(is_method and fn in SIZED) or fn is torch.reshape)
        if (is_method and fn in ("permute", "transpose", "t", "movedim", "swapaxes")) or (
            not is_method and fn in (torch.permute, torch.transpose, torch.movedim, torch.swapaxes, torch.t)
        ):
            return self.permute(node, first)
        if (is_method and fn in ("softmax", "log_softmax")) or (not is_method and fn in SOFTMAX):
            dim = args[1] if len(args) > 1 else node.kwargs.get("dim")
            return self.softmax(node, first, dim, f"softmax (node {node.name!r})")
        if (is_method and fn in REDUCTION_METHODS) or (not is_method and fn in REDUCTIONS):
            return self.reduction(node, first)
        if not is_method and fn in SPATIAL_FUNCTIONS:
            here = f"{_node_text(node)} (node {node.name!r}) mixes them"
            self.pin_track({a: v for a, v in first.items() if a >= 2}, here)
            return {a: v for a, v in first.items() if a < 2}
        return self.opaque(node)

    def tracked_inputs(self, node) -> list:
        return [t for n in _nodes_in((node.args, node.kwargs)) for t in _flat_tracks(self.track(n))]

    def elementwise(self, node, operands):
        out_shape = self.shape(node)
        nd = len(out_shape)
        result = {}
        here = f"{_node_text(node)} (node {node.name!r})"
        for a in range(nd):
            tracked, plain = [], []
            for value in operands:
                shape = self.shape(value)
                if not isinstance(shape, tuple):
                    continue  # a Python number: the same for every channel
                b = a - (nd - len(shape))
                if b < 0:
                    continue
                t = self.track(value)
                vs = t.get(b) if isinstance(t, dict) else None
                if vs is not None:
                    tracked.append(vs)
                elif shape[b] == out_shape[a]:
                    plain.append(value)
            if not tracked:
                continue
            full = [vs for vs in tracked if len(vs) == out_shape[a]]
            if len(full) != len(tracked):
                for vs in tracked:
                    self.vars.pin(vs, f"{here} broadcasts one channel over many")
                continue
            base = full[0]
            for vs in full[1:]:
                for x, y in zip(base, vs, strict=True):
                    self.vars.union(x, y)
            if plain:
                self.vars.pin(base, f"{here} combines them with {plain[0]!s}, which cannot be sliced")
            result[a] = base
        return result

    def cat(self, node):
        tensors = node.args[0]
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        out_shape = self.shape(node)
        nd = len(out_shape)
        dim %= nd
        here = f"concatenation (node {node.name!r})"
        along, any_tracked = [], False
        for value in tensors:
            t = self.track(value)
            size = self.shape(value)[dim]
            vs = t.get(dim) if isinstance(t, dict) else None
            if vs is None:
                vs = self.vars.fresh(size)
                self.vars.pin(vs, f"{here} joins them with {value!s}, which is not prunable")
            else:
                any_tracked = True
            along.extend(vs)
        result = {dim: along} if any_tracked else {}
        for a in range(nd):
            if a == dim:
                continue
            tracked = [self.track(v).get(a) for v in tensors if isinstance(self.track(v), dict)]
            tracked = [vs for vs in tracked if vs is not None]
            if len(tracked) != len(tensors):
                for vs in tracked:
                    self.vars.pin(vs, f"{here} joins them with a tensor that cannot be sliced")
                continue
            for vs in tracked[1:]:
                for x, y in zip(tracked[0], vs, strict=True):
                    self.vars.union(x, y)
            result[a] = tracked[0]
        return result

    def split(self, node):
        t = self.track(node.args[0])
        shapes = self.shape(node)
        if not isinstance(t, dict) or not t:
            return tuple(_untracked(s) for s in shapes)
        unbind = node.target in ("unbind", torch.unbind)
        k = 1 if unbind else 2
        dim = node.args[k] if len(node.args) > k else node.kwargs.get("dim", 0)
        dim %= len(self.shape(node.args[0]))
        if dim in t:
            self.pin_track(t, f"{_node_text(node)} (node {node.name!r}) splits the channel axis", axes={dim})
        if unbind:
            return tuple({a - (a > dim): v for a, v in t.items() if a != dim} for _ in shapes)
        return tuple({a: v for a, v in t.items() if a != dim} for _ in shapes)

    def getitem(self, node):
        source, index = node.args
        t = self.track(source)
        if isinstance(t, tuple):
            return t[index] if isinstance(index, int) and -len(t) <= index < len(t) else None
        if not isinstance(t, dict):
            return None if not isinstance(self.shape(node), tuple) else _untracked(self.shape(node))
        in_shape = self.shape(source)
        items = index if isinstance(index, tuple) else (index,)
        if any(not (i is None or i is Ellipsis or isinstance(i, int | slice)) for i in items):
            return self.opaque(node, f"indexing with tensors (node {node.name!r}) reorders them")
        if Ellipsis in items:
            k = items.index(Ellipsis)
            fill = len(in_shape) - sum(i is not None for i in items if i is not Ellipsis)
            items = items[:k] + (slice(None),) * fill + items[k + 1 :]
        items = items + (slice(None),) * (len(in_shape) - sum(i is not None for i in items))
        result, a, out = {}, 0, 0
        for i in items:
            if i is None:
                out += 1
                continue
            if isinstance(i, int):
                if a in t:
                    self.pin_track(t, f"indexing (node {node.name!r}) picks one channel", axes={a})
                a += 1
                continue
            if a in t:
                if i == slice(None) or (slice(*i.indices(in_shape[a])) == slice(0, in_shape[a], 1)):
                    result[out] = t[a]
                else:
                    self.pin_track(t, f"slicing (node {node.name!r}) takes part of the channels", axes={a})
            a += 1
            out += 1
        return result

    def softmax(self, node, t, dim, here):
        if dim is None:
            self.pin_track(t, f"{here} normalizes over them")
            return dict(t)
        dim %= len(self.shape(node))
        self.pin_track(t, f"{here} normalizes over them", axes={dim})
        return dict(t)

    def reduction(self, node, t):
        nd = len(self.shape(node.args[0]))
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keep = node.kwargs.get(
            "keepdim", node.args[2] if len(node.args) > 2 and isinstance(node.args[2], bool) else False
        )
        dims = (
            set(range(nd)) if dims is None else {d % nd for d in (dims if isinstance(dims, list | tuple) else [dims])}
        )
        self.pin_track(t, f"{_node_text(node)} (node {node.name!r}) reduces over them", axes=dims)
        if keep:
            return {a: v for a, v in t.items() if a not in dims}
        return {a - sum(d < a for d in dims): v for a, v in t.items() if a not in dims}

    def permute(self, node, t):
        nd = len(self.shape(node.args[0]))
        fn, args = node.target, node.args
        if fn in ("t", torch.t):
            order = list(range(nd))[::-1]
        elif fn == "permute":
            order = [d % nd for d in (args[1] if len(args) == 2 and isinstance(args[1], list | tuple) else args[1:])]
        elif fn is torch.permute:
            order = [d % nd for d in args[1]]
        elif fn in ("movedim", torch.movedim):
            src, dst = args[1] % nd, args[2] % nd
            order = [i for i in range(nd) if i != src]
            order.insert(dst, src)
        else:
            d0, d1 = args[1] % nd, args[2] % nd
            order = list(range(nd))
            order[d0], order[d1] = order[d1], order[d0]
        return {order.index(a): v for a, v in t.items()}

    def reshape(self, node, source, *, sized):
        in_shape, out_shape = self.shape(source), self.shape(node)
        t = self.track(source)
        if not isinstance(t, dict) or not t:
            return {}
        if 0 in in_shape or 0 in out_shape:
            return self.opaque(node, f"reshape of an empty tensor (node {node.name!r})")
        here = f"{_node_text(node)} (node {node.name!r})"
        result = {}
        for (i0, i1), (o0, o1) in _align(in_shape, out_shape):
            axes = [a for a in range(i0, i1) if a in t]
            if not axes:
                continue
            if len(axes) > 1:
                self.pin_track(t, f"{here} merges two axes of channels", axes=set(axes))
                continue
            if o1 == o0:
                self.pin_track(t, f"{here} removes the channel axis", axes=set(axes))
                continue
            a = axes[0]
            flat = [t[a][idx[a - i0]] for idx in np.ndindex(*in_shape[i0:i1])]
            outer = next((o for o in range(o0, o1) if out_shape[o] > 1), o0)
            block = math.prod(out_shape[outer + 1 : o1])
            vs = []
            for k in range(out_shape[outer]):
                piece = flat[k * block : (k + 1) * block]
                for v in piece[1:]:
                    self.vars.union(piece[0], v)
                vs.append(piece[0])
            result[outer] = vs
            if sized:
                self.reshapes.append((node.name, outer, vs))
        return result

    def matmul(self, node, a, b):
        sa, sb = self.shape(a), self.shape(b)
        ta, tb = self.track(a), self.track(b)
        if len(sa) < 2 or len(sb) < 2:
            return self.opaque(node, f"matmul of a vector (node {node.name!r})")
        here = f"matmul (node {node.name!r})"
        ta = ta if isinstance(ta, dict) else {}
        tb = tb if isinstance(tb, dict) else {}
        self.pin_track(ta, f"{here} contracts over them", axes={len(sa) - 1})
        self.pin_track(tb, f"{here} contracts over them", axes={len(sb) - 2})
        nd = len(self.shape(node))
        result = {}
        if len(sa) - 2 in ta:
            result[nd - 2] = ta[len(sa) - 2]
        if len(sb) - 1 in tb:
            result[nd - 1] = tb[len(sb) - 1]
        result.update(self.batch_axes(node, [(a, sa, ta), (b, sb, tb)], nd - 2, here))
        return result

    def sdpa(self, node):
        q, k, v = (node.args[i] if i < len(node.args) else node.kwargs.get(n) for i, n in enumerate("qkv"))
        shapes = [self.shape(x) for x in (q, k, v)]
        tracks = [self.track(x) if isinstance(self.track(x), dict) else {} for x in (q, k, v)]
        here = f"scaled_dot_product_attention (node {node.name!r})"
        nd = len(self.shape(node))
        self.pin_track(tracks[0], f"{here} contracts over them", axes={len(shapes[0]) - 1})
        self.pin_track(tracks[1], f"{here} contracts over them", axes={len(shapes[1]) - 1, len(shapes[1]) - 2})
        self.pin_track(tracks[2], f"{here} contracts over them", axes={len(shapes[2]) - 2})
        for extra in list(node.args[3:]) + [node.kwargs.get("attn_mask")]:
            for t in _flat_tracks(self.track(extra)):
                self.pin_track(t, f"{here} takes them as a mask")
        result = {}
        if len(shapes[0]) - 2 in tracks[0]:
            result[nd - 2] = tracks[0][len(shapes[0]) - 2]
        if len(shapes[2]) - 1 in tracks[2]:
            result[nd - 1] = tracks[2][len(shapes[2]) - 1]
        result.update(self.batch_axes(node, list(zip((q, k, v), shapes, tracks, strict=True)), nd - 2, here))
        return result

    def batch_axes(self, node, operands, nbatch, here):
        """The leading (batch) axes of a matmul-like node: broadcast and joined as in an elementwise operation."""
        result = {}
        nd = nbatch + 2
        for a in range(nbatch):
            tracked, plain = [], False
            for _, shape, t in operands:
                b = a - (nd - len(shape))
                if b < 0:
                    continue
                if b in t:
                    tracked.append(t[b])
                elif shape[b] == self.shape(node)[a]:
                    plain = True
            if not tracked:
                continue
            if plain or any(len(vs) != len(tracked[0]) for vs in tracked):
                for vs in tracked:
                    self.vars.pin(vs, f"{here} pairs them with a tensor that cannot be sliced")
                continue
            for vs in tracked[1:]:
                for x, y in zip(tracked[0], vs, strict=True):
                    self.vars.union(x, y)
            result[a] = tracked[0]
        return result

    # ---- groups ----------------------------------------------------------------------------------------------
    def pin_tied(self) -> None:
        owners: dict[int, list[Member]] = {}
        for key in self.members:
            t = _tensor(self.model, key)
            if isinstance(t, nn.Parameter):
                owners.setdefault(id(t), [])
                if all(k.module != key.module or k.tensor != key.tensor for k in owners[id(t)]):
                    owners[id(t)].append(key)
        for keys in owners.values():
            if len({(k.module, k.tensor) for k in keys}) > 1:
                names = " and ".join(f"{k.module}.{k.tensor}" for k in keys)
                for k in keys:
                    self.vars.pin([v for v in self.members[k]], f"{names} are one tied parameter")

    def groups(self) -> list[Group]:
        order = list(self.members)
        seen: dict[int, dict[Member, list[int]]] = {}
        for key in order:
            for i, v in enumerate(self.members[key]):
                seen.setdefault(self.vars.find(v), {}).setdefault(key, []).append(i)
        by_signature: dict[tuple, list[int]] = {}
        for root, owned in seen.items():
            signature = tuple(sorted(owned, key=order.index))
            by_signature.setdefault(signature, []).append(root)
        groups, units = [], {}
        ranked = sorted(
            by_signature.items(),
            key=lambda item: (order.index(item[0][0]), min(seen[r][item[0][0]][0] for r in item[1])),
        )
        for index, (signature, roots) in enumerate(ranked):
            first = signature[0]
            roots = sorted(roots, key=lambda r: seen[r][first][0])
            unit_of = {}
            for key in signature:
                owned = np.full(len(self.members[key]), -1, dtype=np.int64)
                for u, r in enumerate(roots):
                    owned[seen[r][key]] = u
                unit_of[key] = owned
            pinned = tuple(self.vars.reason.get(r) for r in roots)
            groups.append(Group(index, signature, unit_of, len(roots), pinned))
            units.update({r: (index, u) for u, r in enumerate(roots)})
        return groups, units

    def resolved_reshapes(self):
        return [(name, axis, [self.vars.find(v) for v in vs]) for name, axis, vs in self.reshapes]


def _tensor(model, key: Member):
    module = model.get_submodule(key.module)
    plist = getattr(module, "parametrizations", None)
    if plist is not None and key.tensor in plist:
        return plist[key.tensor].original
    return getattr(module, key.tensor, None)


def _untracked(shape):
    if isinstance(shape, tuple) and shape and isinstance(shape[0], tuple | type(None)):
        return tuple(_untracked(s) for s in shape)
    return {} if isinstance(shape, tuple) else None


def _nodes_in(value) -> list:
    """The fx nodes inside nested arguments (lists, tuples, dicts, slices)."""
    found = []
    fx.node.map_arg(value, lambda n: found.append(n) or n)
    return found


def _flat_tracks(t):
    if isinstance(t, dict):
        return [t] if t else []
    if isinstance(t, tuple):
        return [x for item in t for x in _flat_tracks(item)]
    return []


def _align(a, b):
    """The axis groups of a row-major reshape from shape `a` to shape `b`: pairs of half-open ranges
    `((i0, i1), (o0, o1))` whose sizes have equal products."""
    groups, i, j = [], 0, 0
    while i < len(a) or j < len(b):
        i0, j0 = i, j
        pa = pb = 1
        if i < len(a):
            pa, i = a[i], i + 1
        if j < len(b):
            pb, j = b[j], j + 1
        while pa != pb:
            if pa < pb and i < len(a):
                pa, i = pa * a[i], i + 1
            elif j < len(b):
                pb, j = pb * b[j], j + 1
            else:
                raise GraphError(f"shapes {a} and {b} do not reshape into each other")
        while i < len(a) and a[i] == 1 and (j >= len(b) or b[j] != 1):
            i += 1
        while j < len(b) and b[j] == 1 and (i >= len(a) or a[i] != 1):
            j += 1
        groups.append(((i0, i), (j0, j)))
    return groups


PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")


def _svg(group: Group, title: str) -> str:
    rows = [m for m in group.members if m.tensor not in ("running_mean", "running_var", "num_channels")]
    label_w, cell_area, row_h, top = 300, 480, 22, 34 if title else 12
    width, height = label_w + cell_area + 20, top + row_h * len(rows) + 26
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="monospace" font-size="12">',
        '<defs><pattern id="pin" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="2" height="4" fill="#999"/></pattern></defs>',
    ]
    if title:
        out.append(f'<text x="4" y="18" font-size="14" font-weight="bold">{_escape(title)}</text>')
    for r, m in enumerate(rows):
        y = top + r * row_h
        owned = group.unit_of[m]
        out.append(f'<text x="4" y="{y + 15}">{_escape(f"{m.module}.{m.tensor} [{m.axis}] {m.role}")}</text>')
        cell = cell_area / max(1, owned.size)
        for i, u in enumerate(owned):
            pinned = u >= 0 and group.pinned[u] is not None
            fill = "#e6e6e6" if u < 0 else ("url(#pin)" if pinned else PALETTE[u % len(PALETTE)])
            x = label_w + i * cell
            out.append(
                f'<rect x="{x:.2f}" y="{y + 3}" width="{max(cell - (1 if cell > 3 else 0), 0.5):.2f}" height="16" '
                f'fill="{fill}"/>'
            )
    note = f"{group.count} units ({group.prunable} prunable); one color per unit, grey: other groups"
    out.append(f'<text x="4" y="{height - 8}" fill="#555">{_escape(note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
