"""The training layer's AWQ, SmoothQuant, rotation, AdaRound and HQQ rules (`calibrate`): replayed by the reference
(weights and the layers' transformed inputs), independent of the batch size, exported and read back bit for bit,
folded by `finalize`; and the `affine` rule's groups along the input dimension."""

import pytest
import torch
from torch import nn

import reference as R
from torch_backend.nn import calibrate, compress, export_safetensors, load_safetensors
from torch_backend.nn.export import effective_tensors

LINEAR = {"modules": "*", "types": ["Linear"]}
RECIPES = {
    "awq": [{**LINEAR, "algorithm": "awq", "bits": 4, "group_size": 16, "grid": 5, "clip_grid": 8}],
    "smoothquant": [{**LINEAR, "algorithm": "smoothquant", "alpha": 0.5}],
    "rotation-w4a8": [{**LINEAR, "algorithm": "rotation", "bits": 4, "group_size": 16, "act_bits": 8, "seed": 3}],
    "rotation-w4": [{**LINEAR, "algorithm": "rotation", "bits": 4, "group_size": 8, "act_bits": None}],
    "adaround": [{**LINEAR, "algorithm": "adaround", "bits": 4, "group_size": 16, "iterations": 8}],
    "hqq": [{**LINEAR, "algorithm": "hqq", "bits": 4, "group_size": 8, "iters": 5}],
}
TRANSFORMS = {"awq", "smoothquant", "rotation-w4a8", "rotation-w4"}  # rules that change the layer's input


class Attention(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc = nn.Linear(d, 32)
        self.out = nn.Linear(32, 16)

    def forward(self, x):
        a = torch.softmax(self.q(x) @ self.k(x).transpose(-1, -2) / 4.0, dim=-1) @ self.v(x)
        return self.out(torch.relu(self.fc(x + self.o(a))))


def _model():
    torch.manual_seed(0)
    return Attention()


def _data(batch=4, n=16):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, 16, generator=g)
    x[..., 3] *= 20  # an outlier channel
    return [x[i : i + batch] for i in range(0, n, batch)]


def _weights(model):
    return {k: v.numpy().tobytes() for k, v in effective_tensors(model)}


@pytest.mark.parametrize("name", list(RECIPES))
def test_calibration_replays_exports_and_does_not_depend_on_the_batch_size(name, tmp_path):
    model = _model()
    c = calibrate(model, {"rules": RECIPES[name]}, _data(batch=4), progress=False)
    with torch.no_grad():
        model(_data()[0])  # a forward after calibration: the input transforms record their last call
    rows = c.replay()
    assert rows and all(r.match for r in rows), [r for r in rows if not r.match]
    inputs = [r for r in rows if "input" in r.tensor]
    assert len(inputs) == (6 if name in TRANSFORMS else 0), rows
    other = _model()
    calibrate(other, {"rules": RECIPES[name]}, _data(batch=8), progress=False)
    assert _weights(other) == _weights(model), "batch size 8 and 4 give the same bits"
    export_safetensors(model, c, tmp_path / "m.safetensors")
    loaded = load_safetensors(tmp_path / "m.safetensors")
    assert {k: v.tobytes() for k, v in loaded.items()} == _weights(model)


@pytest.mark.parametrize("name", ["awq", "rotation-w4", "hqq"])
def test_finalize_folds_the_input_transform_into_a_plain_weight(name):
    """After `finalize` the plain model computes what the calibrated one did, up to the rounding moved into the
    weight (AWQ: dequantize(codes) / s; rotation: the rotation undone); HQQ has no transform."""
    model = _model()
    c = calibrate(model, {"rules": RECIPES[name]}, _data(), progress=False)
    x = _data()[0]
    with torch.no_grad():
        before = model(x)
        c.finalize()
        after = model(x)
    assert not any(m._forward_pre_hooks for m in model.modules()), "the hooks are gone"
    assert set(dict(model.named_parameters())) == set(dict(_model().named_parameters()))
    assert torch.allclose(before, after, rtol=1e-4, atol=1e-4)


def test_replay_catches_a_changed_scale_and_a_changed_input():
    model = _model()
    c = calibrate(model, {"rules": RECIPES["smoothquant"]}, _data(), progress=False)
    comp = model.fc.parametrizations.weight[0]
    with torch.no_grad():
        model(_data()[0])
        comp.result_smooth[0] *= 2  # the stored scales no longer follow from the statistics
    assert not all(r.match for r in c.replay())
    model = _model()
    c = calibrate(model, {"rules": RECIPES["rotation-w4a8"]}, _data(), progress=False)
    with torch.no_grad():
        model(_data()[0])
    hook = next(iter(model.fc._forward_pre_hooks.values()))
    x, y = hook.last
    hook.last = (x, y + 1)  # a transformed input that the reference would not compute
    assert [r.match for r in c.replay() if r.tensor == "fc input (last batch)"] == [False]


def test_awq_rule_computes_what_the_reference_computes():
    """The stored AWQ result is `awq` of the layer's weight with the Hessian and statistic of its inputs; sequential
    calibration feeds `q`, `k`, `v` the raw input (the first layers to run)."""
    model = _model()
    raw = model.q.weight.detach().numpy().copy()
    calibrate(model, {"rules": RECIPES["awq"]}, _data(), progress=False)
    x = torch.cat(_data()).reshape(-1, 16).numpy()
    want = R.awq(raw, R.gptq_hessian(x), R.awq_act_scale(x), bits=4, group_size=16, grid=5, clip_grid=8)
    comp = model.q.parametrizations.weight[0]
    assert comp.result_codes.numpy().tobytes() == want.codes.tobytes()
    assert comp.result_smooth.numpy().tobytes() == want.smooth.tobytes()


def test_affine_group_size_groups_the_input_dimension_by_default():
    """`group_size` without `axis` groups consecutive input columns (what GPTQ, AWQ and HQQ users expect); an
    explicit `axis=0` keeps the old grouping along the output dimension."""
    model = _model()
    c = compress(model, {"rules": [{**LINEAR, "algorithm": "affine", "bits": 4, "group_size": 8}]})
    assert c.policies[0].params["axis"] == 1
    w = model.fc.parametrizations.weight.original.detach().numpy()
    scale, zero = R.minmax_qparams(w, qmin=-7, qmax=7, symmetric=True, axis=1, group_size=8)
    want = R.fake_quantize(w, scale, zero, qmin=-7, qmax=7, axis=1, group_size=8)
    assert model.fc.weight.detach().numpy().tobytes() == want.tobytes()
    old = compress(_model(), {"rules": [{**LINEAR, "algorithm": "affine", "group_size": 8, "axis": 0}]})
    assert old.policies[0].params["axis"] == 0
