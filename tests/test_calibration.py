"""Post-training calibration (`torch_backend.nn.calibrate`): GPTQ and SparseGPT on real layers, replayed by the
reference, independent of the batch size, sequential or not, exported and read back bit for bit."""

import copy

import pytest
import torch
from torch import nn

from torch_backend.nn import RecipeError, calibrate, compress, export_safetensors, load_safetensors
from torch_backend.nn.export import effective_tensors

LINEAR = {"modules": "*", "types": ["Linear"]}
RECIPES = {
    "gptq": [{**LINEAR, "algorithm": "gptq", "bits": 4, "group_size": 16}],
    "gptq-act-order": [{**LINEAR, "algorithm": "gptq", "bits": 3, "group_size": 8, "act_order": True}],
    "sparsegpt-50": [{**LINEAR, "algorithm": "sparsegpt", "sparsity": 0.5, "blocksize": 16}],
    "sparsegpt-2:4-int4": [{**LINEAR, "algorithm": "sparsegpt", "n": 2, "m": 4, "bits": 4, "group_size": 16}],
}


class Attention(nn.Module):
    """Hand-written attention: q, k and v read the same input tensor (one calibration step)."""

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
    return [x[i : i + batch] for i in range(0, n, batch)]


def _weights(model):
    return {k: v.numpy().tobytes() for k, v in effective_tensors(model)}


@pytest.mark.parametrize("name", list(RECIPES))
def test_calibration_replays_exports_and_does_not_depend_on_the_batch_size(name, tmp_path):
    model = _model()
    c = calibrate(model, {"rules": RECIPES[name]}, _data(batch=4), progress=False)
    rows = c.replay()
    assert rows and all(r.match for r in rows), [r for r in rows if not r.match]
    other = _model()
    calibrate(other, {"rules": RECIPES[name]}, _data(batch=8), progress=False)
    assert _weights(other) == _weights(model), "batch size 8 and 4 give the same bits"
    export_safetensors(model, c, tmp_path / "m.safetensors")
    loaded = load_safetensors(tmp_path / "m.safetensors")
    assert {k: v.tobytes() for k, v in loaded.items()} == _weights(model)


def test_sequential_calibration_sees_the_compressed_earlier_layers():
    seq, flat = _model(), _model()
    calibrate(seq, {"rules": RECIPES["gptq"]}, _data(), progress=False)
    calibrate(flat, {"rules": RECIPES["gptq"]}, _data(), sequential=False, progress=False)
    a, b = _weights(seq), _weights(flat)
    for first in ("q.weight", "k.weight", "v.weight"):  # they see the model input either way
        assert a[first] == b[first]
    assert a["out.weight"] != b["out.weight"], "later layers are calibrated on compressed inputs"


def test_compress_refuses_post_training_rules_and_calibrate_checks_its_data():
    with pytest.raises(RecipeError, match="is a post-training algorithm"):
        compress(_model(), {"rules": RECIPES["gptq"]})
    with pytest.raises(ValueError, match="not an iterator"):
        calibrate(_model(), {"rules": RECIPES["gptq"]}, iter(_data()), progress=False)
    with pytest.raises(ValueError, match="no batches"):
        calibrate(_model(), {"rules": RECIPES["gptq"]}, [], progress=False)
    with pytest.raises(RecipeError, match="group_size=5 must divide in_features=16"):
        calibrate(_model(), {"rules": [{**LINEAR, "algorithm": "gptq", "group_size": 5}]}, _data(), progress=False)
    with pytest.raises(RecipeError, match="give either 'sparsity'"):
        calibrate(_model(), {"rules": [{**LINEAR, "algorithm": "sparsegpt"}]}, _data(), progress=False)

    class Skips(Attention):
        def forward(self, x):
            return self.q(x)

    model = Skips()
    with pytest.raises(ValueError, match="never reached"):
        calibrate(model, {"rules": RECIPES["gptq"]}, _data(), progress=False)


def test_replay_catches_a_changed_result():
    model = _model()
    c = calibrate(model, {"rules": RECIPES["gptq"]}, _data(), progress=False)
    comp = model.q.parametrizations.weight[0]
    with torch.no_grad():
        comp.result_codes[0, 0] += 1  # the stored codes no longer follow from the weight and the Hessian
    assert not all(r.match for r in c.replay())


def test_a_calibrated_copy_is_independent():
    model = _model()
    c = calibrate(model, {"rules": RECIPES["gptq"]}, _data(), progress=False)
    keep = _weights(model)
    twin = copy.deepcopy(c)
    twin.finalize()
    assert _weights(model) == keep and all(r.match for r in c.replay())


@pytest.mark.parametrize("zero_format", ["v1", "v2"])
def test_gptq_checkpoint_layout_round_trips_bit_for_bit(zero_format, tmp_path):
    import json
    import struct

    from reference.checkpoint import CheckpointError, load_gptq
    from torch_backend.nn import export_gptq

    symmetric = zero_format == "v1"  # v1 cannot store a zero point of 0, which asymmetric groups may have
    rules = [{**LINEAR, "algorithm": "gptq", "bits": 4, "group_size": 8, "act_order": True, "scale_dtype": "float16",
              "symmetric": symmetric}]  # fmt: skip
    model = _model()
    c = calibrate(model, {"rules": rules}, _data(), progress=False)
    path = tmp_path / "gptq.safetensors"
    export_gptq(model, c, path, zero_format=zero_format)
    loaded = load_gptq(path)
    assert {k: v.tobytes() for k, v in loaded.items()} == _weights(model)
    raw = path.read_bytes()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    assert {"q.qweight", "q.qzeros", "q.scales", "q.g_idx"} <= set(header), "GPTQ's tensor names"
    assert header["q.scales"]["dtype"] == "F16" and header["q.qweight"]["dtype"] == "I32"
    config = json.loads(header["__metadata__"]["quantization_config"])
    assert config == {"quant_method": "gptq", "bits": 4, "group_size": 8, "desc_act": True, "sym": symmetric,
                      "checkpoint_format": "gptq" if zero_format == "v1" else "gptq_v2"}  # fmt: skip
    with pytest.raises(CheckpointError, match="expected 'pqref-safetensors'"):
        load_safetensors(path)
    float_scales = [{**LINEAR, "algorithm": "gptq", "bits": 4, "group_size": 8}]
    other = _model()
    c2 = calibrate(other, {"rules": float_scales}, _data(), progress=False)
    with pytest.raises(ValueError, match="scale_dtype = 'float16'"):
        export_gptq(other, c2, tmp_path / "x.safetensors", zero_format=zero_format)
    if zero_format == "v1":
        asym = _model()
        rules_asym = [{**rules[0], "symmetric": False}]
        c3 = calibrate(asym, {"rules": rules_asym}, _data(), progress=False)
        if any(int((comp.result_zero_point == -8).sum()) for comp in c3.policies[0].compressions()):
            with pytest.raises(ValueError, match="which v1 cannot store"):
                export_gptq(asym, c3, tmp_path / "x.safetensors", zero_format="v1")
    with pytest.raises(ValueError, match="zero_format must be 'v1' or 'v2'"):
        export_gptq(model, c, tmp_path / "x.safetensors", zero_format="v3")
    assert not (tmp_path / "x.safetensors").exists()
