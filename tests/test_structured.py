"""Structured pruning on real architectures: channel groups from torch.fx, grouped slimming and Ln pruning, removal.

Four architecture kinds: a ResNet (a residual block whose shortcut carries a batch norm), a DenseNet
(concatenation), a MobileNet (depthwise and grouped convolutions, group norm, flatten into linear) and a small
transformer (`nn.MultiheadAttention`, hand-written attention with `nn.Linear` q/k/v/out, an MLP, layer norms).
Removal is not bitwise (a consumer sums over fewer terms): the stated bound is `1e-5 * max|masked output|` on every
output, and every kept parameter value must be the masked model's, bit for bit.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.nn.utils import parametrize

import reference
from torch_backend.nn import RecipeError, compress, export_safetensors, load_safetensors, surgery
from torch_backend.nn.graph import GraphError, channel_graph
from torch_backend.nn.surgery import RemovalError, pruned_units, remove_pruned_channels, remove_units

BOUND = 1e-5  # removal: max |small - masked| <= BOUND * max |masked|, on every output


# ---- the four architecture kinds ---------------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetTiny(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        self.layer1, self.layer2 = Block(16, 16), Block(16, 32, 2)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.layer2(self.layer1(F.relu(self.bn(self.conv(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.bn, self.conv = nn.BatchNorm2d(cin), nn.Conv2d(cin, growth, 3, 1, 1, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv(F.relu(self.bn(x)))], 1)


class DenseNetTiny(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, 1, 1, bias=False)
        self.d1, self.d2 = DenseLayer(8, 6), DenseLayer(14, 6)
        self.bn, self.fc = nn.BatchNorm2d(20), nn.Linear(20, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.d2(self.d1(self.stem(x)))))
        return self.fc(x.mean((2, 3)))


class MobileNetTiny(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(8, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(24, 24, 3, 1, 1, groups=24, bias=False), nn.BatchNorm2d(24), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(24, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.grouped = nn.Sequential(nn.Conv2d(8, 16, 3, 1, 1, groups=4), nn.GroupNorm(4, 16), nn.SiLU())
        self.fc = nn.Linear(16 * 4 * 4, classes)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.project(self.dw(self.expand(x)))  # inverted residual
        return self.fc(F.max_pool2d(self.grouped(x), 2).flatten(1))


class Attention(nn.Module):
    """Hand-written attention as people write it: the head count is an attribute, baked into the views."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        b, t, c = x.shape[0], x.shape[1], x.shape[2]
        q = self.q(x).view(b, t, self.heads, c // self.heads).transpose(1, 2)
        k = self.k(x).view(b, t, self.heads, c // self.heads).transpose(1, 2)
        v = self.v(x).view(b, t, self.heads, c // self.heads).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-2, -1) * (q.size(-1) ** -0.5), dim=-1)
        return self.out((a @ v).transpose(1, 2).reshape(b, t, c))


class TransformerTiny(nn.Module):
    def __init__(self, vocab=20, d=16, heads=4, classes=3):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.ln1, self.mha = nn.LayerNorm(d), nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2, self.attn = nn.LayerNorm(d), Attention(d, heads)
        self.ln3, self.fc1, self.fc2 = nn.LayerNorm(d), nn.Linear(d, 32), nn.Linear(32, d)
        self.head = nn.Linear(d, classes)

    def forward(self, ids):
        x = self.emb(ids)
        h = self.ln1(x)
        x = x + self.mha(h, h, h, need_weights=False)[0]
        x = x + self.attn(self.ln2(x))
        x = x + self.fc2(F.gelu(self.fc1(self.ln3(x))))
        return self.head(x.mean(1))


def _image(n=16, seed=0):
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def _tokens(n=16, seed=0):
    return torch.randint(0, 20, (n, 5), generator=torch.Generator().manual_seed(seed))


KINDS = {
    "resnet": (ResNetTiny, _image),
    "densenet": (DenseNetTiny, _image),
    "mobilenet": (MobileNetTiny, _image),
    "transformer": (TransformerTiny, _tokens),
}


def _built(kind, seed=0):
    """A model with non-trivial batch-norm statistics and affine parameters, in eval mode."""
    cls, data = KINDS[kind]
    torch.manual_seed(seed)
    model = cls()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-1, 1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.5, 0.5, generator=g)
    return model.eval(), data()


def _bits(t):
    return t.detach().cpu().contiguous().numpy().view(np.uint32).tobytes()


def _group(graph, *members):
    """The one group that has all these `module.tensor` members as producers, norms or heads (not as inputs)."""
    found = [
        g
        for g in graph.groups
        if all(any(f"{m.module}.{m.tensor}" == x and m.role != "in" for m in g.members) for x in members)
    ]
    assert len(found) == 1, [g.describe() for g in found]
    return found[0]


def _roles(group):
    return {(m.module, m.tensor, m.axis) for m in group.members}


# ---- the channel graph -----------------------------------------------------------------------------------------


def test_resnet_residual_addition_joins_the_block_and_its_batch_norm_shortcut():
    model, x = _built("resnet")
    graph = channel_graph(model, x)
    stage2 = _group(graph, "layer2.bn2.weight")
    assert {("layer2.shortcut.0", "weight", 0), ("layer2.shortcut.1", "weight", 0), ("layer2.conv2", "weight", 0),
            ("fc", "weight", 1)} <= _roles(stage2)  # fmt: skip
    assert stage2.count == 32 and stage2.prunable == 32
    stage1 = _group(graph, "bn.weight")  # the stem's channels run through layer1's identity shortcut
    assert {("layer1.bn2", "weight", 0), ("layer1.conv1", "weight", 1), ("layer2.shortcut.0", "weight", 1),
            ("layer2.conv1", "weight", 1)} <= _roles(stage1)  # fmt: skip
    inner = _group(graph, "layer1.bn1.weight")
    assert _roles(inner) == {("layer1.conv1", "weight", 0), ("layer1.conv2", "weight", 1)} | {
        ("layer1.bn1", t, 0) for t in ("weight", "bias", "running_mean", "running_var")
    }
    out = _group(graph, "fc.bias")
    assert out.prunable == 0 and "the model's output" in out.pinned[0]


def test_densenet_concatenation_keeps_each_producer_its_own_positions():
    model, x = _built("densenet")
    graph = channel_graph(model, x)
    stem, d1, d2 = (_group(graph, f"{m}.weight") for m in ("stem", "d1.conv", "d2.conv"))
    assert (stem.count, d1.count, d2.count) == (8, 6, 6)
    final = {g.index: g.unit_of[next(m for m in g.members if (m.module, m.tensor) == ("bn", "weight"))]
             for g in (stem, d1, d2)}  # fmt: skip
    assert np.array_equal(final[stem.index], np.r_[np.arange(8), [-1] * 12])
    assert np.array_equal(final[d1.index], np.r_[[-1] * 8, np.arange(6), [-1] * 6])
    assert np.array_equal(final[d2.index], np.r_[[-1] * 14, np.arange(6)])
    assert ("d2.conv", "weight", 1) in _roles(d1) and ("d2.conv", "weight", 1) in _roles(stem)


def test_mobilenet_depthwise_grouped_convolution_group_norm_and_flatten():
    model, x = _built("mobilenet")
    graph = channel_graph(model, x)
    hidden = _group(graph, "dw.0.weight")  # depthwise: its channel c is the expansion's channel c
    assert hidden.count == 24 and ("expand.0", "weight", 0) in _roles(hidden)
    assert np.array_equal(hidden.unit_of[next(m for m in hidden.members if m.module == "dw.0")], np.arange(24))
    stream = _group(graph, "stem.0.weight")  # the residual stream feeds a conv with groups=4: 4 units of 2 channels
    assert stream.count == 4 and ("project.1", "weight", 0) in _roles(stream)
    unit_of = {(m.module, m.tensor): u for m, u in stream.unit_of.items()}
    assert np.array_equal(unit_of[("stem.0", "weight")], np.repeat(np.arange(4), 2))
    assert np.array_equal(unit_of[("grouped.0", "weight")], np.repeat(np.arange(4), 4))
    assert np.array_equal(unit_of[("grouped.1", "weight")], np.repeat(np.arange(4), 4))  # group norm: per group
    assert np.array_equal(unit_of[("fc", "weight")], np.repeat(np.arange(4), 64))  # flatten: 16 inputs per channel


def test_attention_heads_are_units():
    model, x = _built("transformer")
    graph = channel_graph(model, x)
    mha = _group(graph, "mha.in_proj_weight")
    assert mha.count == 4
    rows = mha.unit_of[next(m for m in mha.members if m.tensor == "in_proj_weight" and m.axis == 0)]
    assert np.array_equal(rows, np.tile(np.repeat(np.arange(4), 4), 3))  # q, k and v rows of each head
    cols = mha.unit_of[next(m for m in mha.members if m.module == "mha.out_proj")]
    assert np.array_equal(cols, np.repeat(np.arange(4), 4))
    hand = _group(graph, "attn.q.weight")
    assert hand.count == 4 and {("attn.k", "bias", 0), ("attn.v", "weight", 0), ("attn.out", "weight", 1)} <= _roles(
        hand
    )
    assert [(name, axis, len(roots)) for name, axis, roots in graph.reshapes] == [
        ("view", 2, 4), ("view_1", 2, 4), ("view_2", 2, 4), ("reshape", 2, 16)
    ]  # fmt: skip
    stream = _group(graph, "emb.weight")
    assert stream.prunable == 0 and "LayerNorm 'ln1' computes its statistics over them" in stream.pinned[0]
    assert _group(graph, "fc1.weight").prunable == 32


class _Free(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 1)
        self.offset = nn.Parameter(torch.zeros(1, 4, 1, 1))
        self.conv2 = nn.Conv2d(4, 4, 1)
        self.conv3 = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        a = self.conv(x) + self.offset  # a free parameter along the channels: cannot be sliced
        b = torch.softmax(self.conv2(a), dim=1)  # softmax over the channels
        return self.fc(self.conv3(b).mean((2, 3)))


def test_pinned_channels_say_why():
    graph = channel_graph(_Free(), torch.zeros(2, 1, 3, 3))
    assert (
        "offset" in _group(graph, "conv.weight").pinned[0]
        and "cannot be sliced" in _group(graph, "conv.weight").pinned[0]
    )
    assert "normalizes over them" in _group(graph, "conv2.weight").pinned[0]
    assert _group(graph, "conv3.weight").prunable == 4
    assert set(graph.pinned) == {_group(graph, n).index for n in ("conv.weight", "conv2.weight", "fc.weight")}


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(nn.Conv2d(1, 2, 1))
        self.gate = _Gate()

    def forward(self, x):
        return self.gate(self.inner(x))


class _Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on a tensor value: torch.fx cannot trace it
            return x
        return -x


class _Length(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) * len(x)  # len() of a traced tensor is not supported by torch.fx


def test_an_untraceable_model_is_named():
    with pytest.raises(GraphError, match=r"torch.fx cannot trace module 'gate' \(_Gate\).*last node traced"):
        channel_graph(_Branchy(), torch.zeros(1, 1, 2, 2))
    with pytest.raises(GraphError, match=r"torch.fx cannot trace _Length.forward .*'len' is not supported"):
        channel_graph(_Length(), torch.zeros(1, 3, 4))


def test_an_example_input_that_does_not_run_names_the_node():
    model, _ = _built("resnet")
    with pytest.raises(GraphError, match=r"node 'conv' \(module 'conv'\) fails on the example input"):
        channel_graph(model, torch.zeros(1, 3, 8, 8))
    with pytest.raises(TypeError, match="example_input must be a tensor"):
        channel_graph(model, [torch.zeros(1, 1, 8, 8)])


class _Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 1)
        self.mix = nn.Conv2d(6, 6, 1)  # applied twice: its rows serve both calls
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        y = self.mix(F.relu(self.mix(self.conv(x))))
        return self.fc(y.mean((2, 3)))


def test_a_module_called_twice_joins_its_two_uses():
    graph = channel_graph(_Shared(), torch.zeros(1, 1, 2, 2))
    group = _group(graph, "conv.weight")
    assert {("mix", "weight", 0), ("mix", "weight", 1), ("fc", "weight", 1)} <= _roles(group)
    assert group.prunable == 6


def test_an_unknown_module_pins_the_channels_it_receives():
    model = nn.Sequential(nn.Conv2d(1, 4, 1), nn.ConvTranspose2d(4, 4, 2), nn.Flatten(), nn.Linear(4 * 3 * 3, 2))
    graph = channel_graph(model, torch.zeros(1, 1, 2, 2))
    assert "ConvTranspose2d" in _group(graph, "0.weight").pinned[0]


# ---- removal: the bound and the kept values --------------------------------------------------------------------


def _random_keep(graph, seed, fraction=0.6):
    rng = np.random.default_rng(seed)
    keep = []
    for g in graph.groups:
        k = (rng.random(g.count) < fraction) | np.array([p is not None for p in g.pinned])
        k[int(rng.integers(g.count))] = True
        keep.append(k)
    return keep


def _mask(model, graph, keep):
    """The masked model: every parameter slice of a dropped unit set to +0.0 (what grouped pruning leaves)."""
    with torch.no_grad():
        for g, k in zip(graph.groups, keep, strict=True):
            for m in g.members:
                t = getattr(model.get_submodule(m.module), m.tensor)
                if isinstance(t, nn.Parameter):
                    drop = (g.unit_of[m] >= 0) & ~k[np.maximum(g.unit_of[m], 0)]
                    t.index_fill_(m.axis, torch.as_tensor(np.flatnonzero(drop)), 0.0)


def _kept_positions(graph, keep):
    out = {}
    for g, k in zip(graph.groups, keep, strict=True):
        for m in g.members:
            drop = (g.unit_of[m] >= 0) & ~k[np.maximum(g.unit_of[m], 0)]
            key = (f"{m.module}.{m.tensor}", m.axis)
            out[key] = out.get(key, np.zeros(drop.size, bool)) | drop
    return {key: np.flatnonzero(~drop) for key, drop in out.items()}


def _assert_kept_values_bitwise(masked, small, graph, keep):
    kept = _kept_positions(graph, keep)
    want_state, got_state = masked.state_dict(), small.state_dict()
    assert set(got_state) == set(want_state)
    for name, want in want_state.items():
        for (key, axis), idx in kept.items():
            if key == name:
                want = want.index_select(axis, torch.as_tensor(idx))
        assert want.shape == got_state[name].shape, name
        assert want.dtype == got_state[name].dtype, name
        if want.is_floating_point():
            assert _bits(want) == _bits(got_state[name]), name
        else:
            assert torch.equal(want, got_state[name]), name


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("seed", [0, 1])
def test_removal_equals_the_masked_model_within_the_bound(kind, seed):
    model, x = _built(kind, seed)
    graph = channel_graph(model, x)
    keep = _random_keep(graph, seed)
    assert sum(int((~k).sum()) for k in keep) > 0
    _mask(model, graph, keep)
    assert all(np.array_equal(a, b) for a, b in zip(pruned_units(model, graph), keep, strict=True))
    before = copy.deepcopy(model.state_dict())
    small = remove_pruned_channels(model, x)
    assert all(_bits(v) == _bits(before[k]) for k, v in model.state_dict().items() if v.is_floating_point())
    assert not any(parametrize.is_parametrized(m) for m in small.modules())
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        want, got = model(x), small.eval()(x)
    assert want.shape == got.shape
    assert float((want - got).abs().max()) <= BOUND * float(want.abs().max())
    _assert_kept_values_bitwise(model, small, graph, keep)


def test_head_removal_rewrites_the_views_of_hand_written_attention():
    model, x = _built("transformer")
    graph = channel_graph(model, x)
    keep = [np.ones(g.count, bool) for g in graph.groups]
    keep[_group(graph, "attn.q.weight").index][[0, 2]] = False
    keep[_group(graph, "mha.in_proj_weight").index][[1]] = False
    _mask(model, graph, keep)
    small = remove_pruned_channels(model, x)
    assert isinstance(small, torch.fx.GraphModule)
    assert "view(getitem_1, getitem_2, 2, floordiv)" in small.code  # 4 heads became 2
    assert small.mha.num_heads == 3 and small.attn.q.out_features == 8
    with torch.no_grad():
        want, got = model(x), small(x)
    assert float((want - got).abs().max()) <= BOUND * float(want.abs().max())
    _assert_kept_values_bitwise(model, small, graph, keep)


def test_the_smaller_model_is_ordinary_trains_and_exports(tmp_path):
    model, x = _built("resnet")
    graph = channel_graph(model, x)
    keep = _random_keep(graph, 3)
    _mask(model, graph, keep)
    small = remove_pruned_channels(model, x).train()
    opt = torch.optim.SGD(small.parameters(), lr=0.1)
    loss = F.cross_entropy(small(x), torch.zeros(len(x), dtype=torch.long))
    loss.backward()
    opt.step()
    export_safetensors(small, None, tmp_path / "small.safetensors")
    loaded = load_safetensors(tmp_path / "small.safetensors")
    for name, t in small.state_dict().items():
        assert loaded[name].tobytes() == t.numpy().tobytes(), name
    fresh = copy.deepcopy(small)
    fresh.load_state_dict(small.state_dict(), strict=True)


def test_remove_units_checks_everything_before_changing_anything():
    model, x = _built("resnet")
    graph = channel_graph(model, x)
    before = copy.deepcopy(model.state_dict())
    out = _group(graph, "fc.bias")
    keep = [np.ones(g.count, bool) for g in graph.groups]
    keep[out.index][0] = False
    with pytest.raises(ValueError, match=rf"keep\[{out.index}\] drops unit 0, which is pinned: the model's output"):
        remove_units(model, graph, keep)
    keep = [np.ones(g.count, bool) for g in graph.groups]
    keep[0][:] = False
    with pytest.raises(ValueError, match=r"keep\[0\] drops every unit of group 0 .*would disconnect"):
        remove_units(model, graph, keep)
    with pytest.raises(ValueError, match=r"keep\[1\] must be a bool array of shape \(16,\), got int64 \(16,\)"):
        remove_units(model, graph, [np.ones(g.count, bool) for g in graph.groups[:1]] + [np.ones(16, int)] * 4)
    with pytest.raises(ValueError, match="keep must hold one bool array per group"):
        remove_units(model, graph, [])
    other, _ = _built("densenet")
    with pytest.raises(ValueError, match=r"graph does not belong to this model: member conv.weight\[axis 0, out\]"):
        remove_units(other, graph, [np.ones(g.count, bool) for g in graph.groups])
    with pytest.raises(TypeError, match="graph must be a ChannelGraph"):
        pruned_units(model, graph.groups)
    with pytest.raises(ValueError, match="tolerance must be in"):
        remove_pruned_channels(model, x, tolerance=-1.0)
    assert all(_bits(v) == _bits(before[k]) for k, v in model.state_dict().items() if v.is_floating_point())
    c = compress(model, {"rules": [{"modules": "*", "types": ["BatchNorm2d"], "algorithm": "slimming", "ratio": 0.3}]})
    with pytest.raises(ValueError, match="call Compressor.finalize"):
        remove_pruned_channels(model, x)
    c.finalize()


def test_the_bound_check_catches_a_wrong_removal(monkeypatch):
    model, x = _built("resnet")
    graph = channel_graph(model, x)
    _mask(model, graph, _random_keep(graph, 0))
    real = surgery.remove_units

    def off_by_one_ulp_too_many(*args):
        small = real(*args)
        with torch.no_grad():
            small.fc.bias.add_(1e-3)
        return small

    monkeypatch.setattr(surgery, "remove_units", off_by_one_ulp_too_many)
    with pytest.raises(RemovalError, match="differs from the masked one by"):
        remove_pruned_channels(model, x)
    remove_pruned_channels(model, x, tolerance=None)


def test_sequential_models_keep_remove_channels_and_are_told_about_the_general_function():
    class Residual(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="use remove_pruned_channels"):
        surgery.remove_channels(Residual())


# ---- recipes: grouped slimming and grouped Ln pruning, end to end ---------------------------------------------


def _train(model, compressor, x, y, steps, lr=0.05):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        compressor.step(step)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        compressor.before_optimizer_step()
        opt.step()
    model.eval()


SLIM = {"modules": "*", "types": ["BatchNorm2d"], "algorithm": "slimming", "lam": 1e-3, "at": 3}


def test_plain_slimming_cannot_honour_a_residual_addition_grouped_slimming_does():
    """The issue's report: per-layer slimming keeps different channels in two batch norms whose outputs are
    added, which no removal can honour; grouped slimming prunes them as one unit."""
    x, y = _image(32), torch.arange(32) % 10
    masks = {}
    for grouped in (False, True):
        model, _ = _built("resnet", seed=4)
        rule = {**SLIM, "ratio": 0.5} | ({"input_shape": [1, 1, 8, 8]} if grouped else {})
        c = compress(model, {"rules": [rule]})
        _train(model, c, x, y, 4)
        masks[grouped] = [model.get_submodule(n).parametrizations.weight[0].mask.clone()
                          for n in ("layer2.bn2", "layer2.shortcut.1")]  # fmt: skip
    assert not torch.equal(*masks[False])
    assert torch.equal(*masks[True]) and not bool(masks[True][0].all())


def test_grouped_slimming_on_a_chain_is_plain_slimming():
    chain = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1),
                          nn.BatchNorm2d(12), nn.ReLU(), nn.Flatten(), nn.Linear(12 * 64, 10))  # fmt: skip
    result = []
    for grouped in (False, True):
        torch.manual_seed(7)
        model = copy.deepcopy(chain)
        with torch.no_grad():
            model[1].weight.copy_(torch.tensor([0.3, 0.1, 0.1, 0.9, 0.5, 0.1, 0.7, 0.2]))  # ties across layers
            model[4].weight.uniform_(0.0, 1.0, generator=torch.Generator().manual_seed(1))
            model[4].weight[:3] = 0.1
        rule = {**SLIM, "ratio": 0.4, "at": 0} | ({"input_shape": [1, 1, 8, 8]} if grouped else {})
        compress(model, {"rules": [rule]})
        result.append([model[i].parametrizations.weight[0].mask.clone() for i in (1, 4)])
    assert all(torch.equal(a, b) for a, b in zip(*result, strict=True))


@pytest.mark.parametrize("kind", ["resnet", "densenet", "mobilenet"])
def test_grouped_slimming_end_to_end(kind, tmp_path):
    model, _ = _built(kind)
    x, y = _image(32), torch.arange(32) % 10
    c = compress(model, {"rules": [{**SLIM, "ratio": 0.4, "input_shape": [2, 1, 8, 8]}]})
    _train(model, c, x, y, 5)
    rows = c.replay()
    assert rows and all(r.match for r in rows), [r for r in rows if not r.match]
    assert rows[-1].tensor.endswith("mask updates") and rows[-1].elements == 1
    export_safetensors(model, c, tmp_path / "masked.safetensors")
    with torch.no_grad():
        masked = model(x)
    plain = c.finalize()
    small = remove_pruned_channels(plain, x)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in plain.parameters())
    with torch.no_grad():
        out = small.eval()(x)
    assert float((masked - out).abs().max()) <= BOUND * float(masked.abs().max())
    _train(small, _NoCompressor(), x, y, 2)  # fine-tune the smaller model
    export_safetensors(small, None, tmp_path / "small.safetensors")


class _NoCompressor:
    def step(self, step):
        pass

    def before_optimizer_step(self):
        pass


def test_grouped_slimming_keeps_a_minimum_per_group():
    model, _ = _built("resnet")
    c = compress(model, {"rules": [{**SLIM, "ratio": 1.0, "min_channels": 3, "at": 0, "input_shape": [1, 1, 8, 8]}]})
    for name in ("bn", "layer1.bn1", "layer2.bn1", "layer2.bn2"):
        assert int(model.get_submodule(name).parametrizations.weight[0].mask.sum()) == 3, name
    c.finalize()


def test_grouped_ln_structured_on_attention_heads_and_mlp_end_to_end(tmp_path):
    model, _ = _built("transformer")
    x, y = _tokens(32), torch.arange(32) % 3
    shape = {"input_shape": [1, 5], "input_dtype": "int64"}
    rules = [
        {"modules": "attn.[qkv]", "algorithm": "ln_structured", "sparsity": 0.5, "p": 1,
         "schedule": {"start": 1, "end": 3, "every": 1}, **shape},
        {"modules": "mha", "tensor": "in_proj_weight", "algorithm": "ln_structured", "sparsity": 0.5, "at": 2, **shape},
        {"modules": "fc1", "algorithm": "ln_structured", "sparsity": 0.5, "at": 2, "min_channels": 4, **shape},
    ]  # fmt: skip
    c = compress(model, {"rules": rules})
    _train(model, c, x, y, 5, lr=0.01)
    rows = c.replay()
    assert all(r.match for r in rows) and sum(r.tensor.endswith("mask updates") for r in rows) == 3
    with torch.no_grad():
        masked = model(x)
    export_safetensors(model, c, tmp_path / "masked.safetensors")
    small = remove_pruned_channels(c.finalize(), x)
    assert small.mha.num_heads == 2 and small.attn.q.out_features == 8 and small.fc1.out_features == 16
    with torch.no_grad():
        assert float((masked - small(x)).abs().max()) <= BOUND * float(masked.abs().max())
    export_safetensors(small, None, tmp_path / "small.safetensors")


def test_grouped_ln_structured_on_convolutions():
    model, _ = _built("mobilenet")
    x, y = _image(16), torch.arange(16) % 10
    rule = {"modules": "[!f]*", "types": ["Conv2d"], "algorithm": "ln_structured", "sparsity": 0.5, "at": 1,
            "input_shape": [1, 1, 8, 8]}  # fmt: skip
    c = compress(model, {"rules": [rule]})
    _train(model, c, x, y, 2)
    assert all(r.match for r in c.replay())
    dw = model.dw[0].parametrizations.weight[0].mask[:, 0, 0, 0]
    assert torch.equal(dw, model.expand[0].parametrizations.weight[0].mask[:, 0, 0, 0])  # depthwise follows
    assert int(dw.sum()) < 24
    with torch.no_grad():
        masked = model(x)
    small = remove_pruned_channels(c.finalize(), x)
    assert small.dw[0].groups == small.dw[0].out_channels == int(dw.sum())
    with torch.no_grad():
        assert float((masked - small(x)).abs().max()) <= BOUND * float(masked.abs().max())


def test_grouped_rules_fail_before_changing_anything():
    model, _ = _built("transformer")
    shape = {"input_shape": [1, 5], "input_dtype": "int64"}
    state = copy.deepcopy(model.state_dict())
    cases = [
        ({"modules": "*", "types": ["Linear"], "algorithm": "ln_structured", "sparsity": 0.5, **shape},
         r"module 'mha.out_proj' \(NonDynamicallyQuantizableLinear\) has no prunable channel: its channels are "
         r"pinned: LayerNorm 'ln1' computes its statistics over them; leave it out"),
        ({"modules": "fc1", "algorithm": "ln_structured", "sparsity": 0.5, "input_shape": [1, 5]},
         r"node 'emb' \(module 'emb'\) fails on the example input: RuntimeError: Expected tensor for argument"),
        ({"modules": "fc1", "algorithm": "ln_structured", "sparsity": 0.5, "min_channels": 2},
         "min_channels is used with input_shape"),
        ({"modules": "fc1", "algorithm": "ln_structured", "sparsity": 0.5, "input_shape": [0, 5]},
         "input_shape must be the shape of one input batch"),
        ({"modules": "fc1", "algorithm": "ln_structured", "sparsity": 0.5, "input_dtype": "int64"},
         "input_dtype is used with input_shape"),
        ({"modules": "fc1", "algorithm": "ln_structured", "sparsity": 0.5, **shape, "input_dtype": "int8"},
         "input_dtype must be one of 'float32', 'int64'"),
    ]  # fmt: skip
    for rule, message in cases:
        with pytest.raises(RecipeError, match=message):
            compress(model, {"rules": [rule]})
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert all(_bits(v) == _bits(state[k]) for k, v in model.state_dict().items() if v.is_floating_point())
    with pytest.raises(RecipeError, match=r"rule 0 \('slimming' on '\*'\): torch.fx cannot trace module 'gate'"):
        compress(_Branchy().append_bn(), {"rules": [{**SLIM, "ratio": 0.5, "input_shape": [1, 1, 2, 2]}]})


def _append_bn(self):
    self.inner.append(nn.BatchNorm2d(2))
    return self


_Branchy.append_bn = _append_bn


def test_replay_checks_every_group_score(monkeypatch):
    model, _ = _built("resnet")
    real = reference.group_scores

    def one_ulp_off(*args, **kwargs):
        out = real(*args, **kwargs)
        return np.nextafter(out, np.float32(np.inf))

    monkeypatch.setattr(reference, "group_scores", one_ulp_off)
    c = compress(model, {"rules": [{**SLIM, "ratio": 0.5, "at": 0, "input_shape": [1, 1, 8, 8]}]})
    assert [r.match for r in c.replay()][-1] is False
    monkeypatch.setattr(reference, "group_scores", real)
    c.finalize()


def test_a_grouped_compressor_copies_independently():
    model, _ = _built("resnet")
    x, y = _image(16), torch.arange(16) % 10
    c = compress(model, {"rules": [{**SLIM, "ratio": 0.5, "at": 2, "input_shape": [1, 1, 8, 8]}]})
    twin = copy.deepcopy(c)
    _train(twin.model, twin, x, y, 3)
    assert all(r.match for r in twin.replay())
    assert bool(model.layer2.bn2.parametrizations.weight[0].mask.all())  # the original was not pruned
    remove_pruned_channels(twin.finalize(), x)
    _train(model, c, x, y, 3)
    assert all(r.match for r in c.replay())


# ---- the pictures of the docs page are drawn from these graphs -------------------------------------------------

PICTURES = {
    "residual": ("resnet", "layer2.bn2.weight", "Residual addition with a batch-norm shortcut (ResNet)"),
    "concatenation": ("densenet", "d1.conv.weight", "Concatenation (DenseNet): one producer's positions"),
    "depthwise": ("mobilenet", "dw.0.weight", "Depthwise convolution (MobileNet)"),
    "grouped": ("mobilenet", "stem.0.weight", "Grouped convolution, group norm, flatten into linear"),
    "multihead": ("transformer", "mha.in_proj_weight", "nn.MultiheadAttention: one unit per head"),
    "handwritten": ("transformer", "attn.q.weight", "Hand-written attention: q/k/v views split heads"),
    "mlp": ("transformer", "fc1.weight", "Linear into linear (MLP hidden units)"),
    "pinned": ("transformer", "emb.weight", "Pinned: a layer norm over the residual stream"),
}


def test_the_docs_pictures_are_drawn_from_the_channel_graphs():
    """docs/assets/structured/*.svg are `Group.picture` of these models; `PQREF_DRAW=1` redraws them."""
    import os
    import pathlib

    folder = pathlib.Path(__file__).resolve().parents[1] / "docs" / "assets" / "structured"
    graphs = {kind: channel_graph(*_built(kind)) for kind in KINDS}
    for name, (kind, member, title) in PICTURES.items():
        svg = _group(graphs[kind], member).picture(title)
        assert svg.startswith("<svg") and svg.count("<rect") > 10
        path = folder / f"{name}.svg"
        if os.environ.get("PQREF_DRAW"):
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(svg)
        assert path.read_text() == svg, f"{path} is stale: run this test with PQREF_DRAW=1"
