"""The training layer under real use: atomic compress, parameters rejected up front, conflicts, module selection,
foreign parametrizations, tied weights, finalize, casts, steps, copies."""

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import torch_backend
from torch_backend.nn import ActivationQuant, Compression, RecipeError, compress, export_safetensors, load_safetensors
from torch_backend.nn.demo import build_model
from torch_backend.nn.export import effective_tensors
from torch_backend.nn.surgery import remove_channels

LAYERS = {"modules": "*", "types": ["Conv2d", "Linear"]}


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model(1, 10, 8)


def _x(n=8, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def _bits(t):
    t = t.detach().cpu().contiguous().reshape(-1)
    return (t.view(torch.uint8) if t.dtype.is_floating_point else t).numpy().tobytes()


def _snapshot(model):
    """Everything a failed compress must leave as it was: state, parameter objects, module classes, hooks."""
    return (
        {k: _bits(v) for k, v in model.state_dict().items()},
        [id(p) for p in model.parameters()],
        [type(m) for m in model.modules()],
        [len(m._forward_hooks) for m in model.modules()],
    )


def _train(model, compressor, steps, start=0):
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(32, 1, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(start, start + steps):
        compressor.step(step)
        loss = nn.functional.cross_entropy(model(x[(step % 4) * 8 : (step % 4) * 8 + 8]), y[:8])
        opt.zero_grad()
        loss.backward()
        compressor.before_optimizer_step()
        opt.step()


# ---- compress is atomic, and rejects what would fail later -------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({**LAYERS, "algorithm": "affine", "bits": 4, "axis": 1, "group_size": 7}, "group_size"),
        ({**LAYERS, "algorithm": "affine", "bits": 4, "axis": 5}, "axis 5 is out of range"),
        ({**LAYERS, "algorithm": "ln_structured", "sparsity": 0.5, "axis": 7}, "axis 7 is out of range"),
        (
            {**LAYERS, "algorithm": "random", "sparsity": 0.5, "seed": 2**64},
            "seed must be in [0, 18446744073709551615]",
        ),
        (
            {"modules": "*", "types": ["ReLU"], "algorithm": "pact", "alpha": 1e39},
            "alpha must be a positive finite float32",
        ),
        ({"modules": "*", "types": ["ReLU"], "algorithm": "pact", "alpha": 1e-46}, "(0 in float32)"),
        (
            {"modules": "*", "types": ["BatchNorm2d"], "algorithm": "slimming", "ratio": 0.5, "lam": 1e300},
            "lam must be",
        ),
        ({**LAYERS, "algorithm": "magnitude", "sparsity": 0.5, "at": 3, "schedule": {"end": 9}}, "not both"),
        ({"modules": "1", "algorithm": "magnitude", "sparsity": 0.5, "tensor": "running_mean"}, "is a buffer"),
        ({"modules": "1", "algorithm": "affine", "tensor": "num_batches_tracked"}, "is a buffer"),
        ({**LAYERS, "algorithm": "nm", "n": 2, "m": 4}, "divisible by m=4"),
    ],
)
def test_a_rule_that_would_fail_later_fails_at_compress_and_changes_nothing(rule, message):
    model = _model()
    before = _snapshot(model)
    # two valid rules first, on tensors the bad rule does not touch: they must not be registered either
    good = [
        {"modules": "4", "algorithm": "twn"},
        {"modules": "4", "algorithm": "magnitude", "sparsity": 0.5, "tensor": "bias"},
    ]
    with pytest.raises(RecipeError) as info:
        compress(model, {"rules": [*good, rule]})
    assert message in str(info.value), str(info.value)
    assert "rule 2" in str(info.value)
    assert _snapshot(model) == before
    assert not any(parametrize.is_parametrized(m) for m in model.modules())


def test_a_shape_error_names_the_module():
    model = _model()
    with pytest.raises(RecipeError, match=r"rule 0 .*module '0' \(Conv2d.weight, shape \(16, 1, 3, 3\)"):
        compress(model, {"rules": [{**LAYERS, "algorithm": "affine", "axis": 1, "group_size": 3}]})


def test_a_failure_while_registering_rolls_everything_back(monkeypatch):
    model = _model()
    before = _snapshot(model)
    from torch_backend.nn import policies

    def broken(self):
        raise RuntimeError("simulated failure inside attach")

    monkeypatch.setattr(policies.ActivationAffine, "attach", broken)
    rules = [{**LAYERS, "algorithm": "magnitude", "sparsity": 0.5}, {**LAYERS, "algorithm": "lsq"},
             {"modules": "*", "types": ["ReLU"], "algorithm": "activation_affine"}]  # fmt: skip
    with pytest.raises(RuntimeError, match="simulated"):
        compress(model, {"rules": rules})
    assert _snapshot(model) == before
    assert not any(parametrize.is_parametrized(m) for m in model.modules())


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"modules": "*", "types": ["ReLU"], "algorithm": "activation_affine"},
          {"modules": "2", "algorithm": "pact"}], "activation quantizer"),
        ([{**LAYERS, "algorithm": "affine"}, {**LAYERS, "algorithm": "lsq"}], "weight quantizer"),
        ([{**LAYERS, "algorithm": "twn"}, {"modules": "3", "algorithm": "xnor"}], "weight quantizer"),
        ([{**LAYERS, "algorithm": "magnitude", "sparsity": 0.5},
          {"modules": "0", "algorithm": "magnitude", "sparsity": 0.7}], "pruning algorithm"),
        ([{"modules": "1", "algorithm": "slimming", "ratio": 0.5},
          {"modules": "1", "algorithm": "magnitude", "sparsity": 0.5}], "pruning algorithm"),
    ],
)  # fmt: skip
def test_conflicting_rules_are_rejected(rules, message):
    model = _model()
    before = _snapshot(model)
    with pytest.raises(RecipeError, match="conflicts with") as info:
        compress(model, {"rules": rules})
    assert message in str(info.value)
    assert _snapshot(model) == before


def test_one_pruning_and_one_quantizer_compose_and_sparsity_is_a_fraction():
    model = _model()
    c = compress(model, {"rules": [{**LAYERS, "algorithm": "magnitude", "sparsity": 0.6},
                                   {**LAYERS, "algorithm": "affine", "bits": 4}]})  # fmt: skip
    s = c.summary()
    assert 0.59 < s["sparsity"] < 0.61 and s["bits_per_weight"] < 8
    assert all(r.match for r in c.replay())


# ---- module selection -----------------------------------------------------------------------------------


def test_types_match_subclasses_and_the_tensor_key_reaches_attention_and_lstm():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2)
            self.lstm = nn.LSTM(8, 8)

        def forward(self, x):
            y, _ = self.attn(x, x, x)
            return self.lstm(y)[0]

    torch.manual_seed(0)
    net = Net()
    rules = [
        {"modules": "*", "types": ["Linear"], "algorithm": "affine", "bits": 4},  # attn.out_proj: a Linear subclass
        {"modules": "attn", "algorithm": "affine", "bits": 6, "tensor": "in_proj_weight"},
        {"modules": "lstm", "algorithm": "magnitude", "sparsity": 0.5, "tensor": "weight_ih_l0"},
    ]
    c = compress(net, {"rules": rules})
    names = [n for n, *_ in c.compressed_tensors()]
    assert names == ["attn.in_proj_weight", "attn.out_proj.weight", "lstm.weight_ih_l0"]
    net(torch.rand(3, 2, 8))
    assert all(r.match for r in c.replay())


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"modules": "*", "types": ["Conv2D"], "algorithm": "twn"}, "did you mean 'Conv2d'"),
        ({"modules": "[0-2]", "types": ["Linear"], "algorithm": "twn"},
         "matches 3 module(s), but none is an instance of Linear (their types: BatchNorm2d, Conv2d, ReLU)"),
        ({"modules": "features.*", "algorithm": "twn"}, "the pattern 'features.*' matches no module"),
        ({"modules": "2", "algorithm": "twn"}, "has no parameter 'weight'"),
        ({"modules": "2", "algorithm": "twn"}, "'tensor' key"),
    ],
)  # fmt: skip
def test_selection_errors_say_which_part_matched_nothing(rule, message):
    with pytest.raises(RecipeError) as info:
        compress(_model(), {"rules": [rule]})
    assert message in str(info.value), str(info.value)


def test_types_accept_classes_and_the_models_own_class_names():
    class Block(nn.Sequential):
        pass

    model = nn.Sequential(Block(nn.Linear(4, 4)), nn.Linear(4, 2))
    with pytest.raises(RecipeError, match="has no parameter 'weight'"):
        compress(model, {"rules": [{"modules": "*", "types": ["Block"], "algorithm": "twn"}]})
    c = compress(model, {"rules": [{"modules": "*", "types": [nn.Linear], "algorithm": "twn"}]})
    assert [n for n, *_ in c.compressed_tensors()] == ["0.0.weight", "1.weight"]


def test_modules_with_torch_parametrizations_are_rejected():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    nn.utils.parametrizations.weight_norm(model[0])
    before = _snapshot(model)
    with pytest.raises(RecipeError, match="has a torch parametrization on 'weight'"):
        compress(model, {"rules": [{"modules": "*", "algorithm": "magnitude", "sparsity": 0.5}]})
    assert _snapshot(model) == before


def test_a_tensor_is_compressed_by_one_compressor():
    model = _model()
    compress(model, {"rules": [{**LAYERS, "algorithm": "magnitude", "sparsity": 0.5}]})
    with pytest.raises(RecipeError, match="already compressed by an earlier compress"):
        compress(model, {"rules": [{"modules": "0", "algorithm": "affine"}]})
    c2 = compress(model, {"rules": [{"modules": "1", "algorithm": "affine", "tensor": "weight"}]})
    assert [n for n, *_ in c2.compressed_tensors()] == ["1.weight"]


# ---- tied weights ---------------------------------------------------------------------------------------


def _tied():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6, bias=False), nn.ReLU(), nn.Linear(6, 6, bias=False))
    model[2].weight = model[0].weight
    return model


@pytest.mark.parametrize("algorithm", [{"algorithm": "magnitude", "sparsity": 0.5}, {"algorithm": "lsq"}])
def test_tied_weights_are_compressed_once_for_all_owners(algorithm, tmp_path):
    model = _tied()
    c = compress(model, {"rules": [{"modules": "0", **algorithm}]})  # the rule names one owner
    a, b = model[0].parametrizations.weight, model[2].parametrizations.weight
    assert a.original is b.original and a[0] is b[0]
    assert _bits(model[0].weight) == _bits(model[2].weight)
    assert sum(p.numel() for p in model.parameters()) == 36 + (0 if "sparsity" in algorithm else 6)
    if "sparsity" in algorithm:
        assert c.summary()["sparsity"] == 0.5
    x = torch.rand(4, 6)
    y = model(x)
    export_safetensors(model, c, tmp_path / "t.safetensors")
    loaded = load_safetensors(tmp_path / "t.safetensors")
    assert loaded["0.weight"].tobytes() == loaded["2.weight"].tobytes() == _bits(model[0].weight)
    plain = c.finalize()
    assert plain[0].weight is plain[2].weight, "finalize keeps the tie"
    assert _bits(plain(x)) == _bits(y)


# ---- finalize, export after it ----------------------------------------------------------------------------


def test_finalize_gives_the_plain_architecture(tmp_path):
    model = _model()
    rules = [{**LAYERS, "algorithm": "magnitude", "sparsity": 0.5}, {**LAYERS, "algorithm": "lsq"},
             {"modules": "*", "types": ["ReLU"], "algorithm": "activation_affine"}]  # fmt: skip
    c = compress(model, {"rules": rules})
    _train(model, c, 2)
    weights = {k: _bits(v) for k, v in effective_tensors(model)}
    plain = c.finalize()
    assert not any(isinstance(m, ActivationQuant) for m in plain.modules())
    assert all(len(m._forward_hooks) == 0 for m in plain.modules())
    fresh = _model(seed=5)
    fresh.load_state_dict(plain.state_dict())  # strict: exactly the keys of the plain architecture
    assert {k: _bits(v) for k, v in fresh.state_dict().items()} == weights
    for call in (lambda: c.step(3), c.replay, c.summary, c.finalize, c.before_optimizer_step):
        with pytest.raises(RuntimeError, match="finalized"):
            call()
    with pytest.raises(ValueError, match="finalized"):
        export_safetensors(model, c, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
    export_safetensors(plain, None, tmp_path / "plain.safetensors")  # a plain model exports as one


def test_export_without_the_compressor_of_a_compressed_model_is_refused(tmp_path):
    model = _model()
    c = compress(model, {"rules": [{**LAYERS, "algorithm": "affine", "bits": 4}]})
    with pytest.raises(ValueError, match="pass its Compressor"):
        export_safetensors(model, None, tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="another model"):
        export_safetensors(_model(), c, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


# ---- dtypes: compressed models can be cast ----------------------------------------------------------------


@pytest.mark.parametrize("cast", ["bfloat16", "half", "double"])
@pytest.mark.parametrize("kind", ["affine", "lsq", "ttq", "w8a8", "pact", "slimming"])
def test_a_compressed_model_can_be_cast(kind, cast):
    rules = {
        "affine": [{**LAYERS, "algorithm": "affine", "bits": 4}],
        "lsq": [{**LAYERS, "algorithm": "lsq"}],
        "ttq": [{**LAYERS, "algorithm": "ttq"}],
        "w8a8": [
            {**LAYERS, "algorithm": "affine"},
            {"modules": "*", "types": ["ReLU"], "algorithm": "activation_affine"},
        ],
        "pact": [{"modules": "*", "types": ["ReLU"], "algorithm": "pact", "alpha": 2.0}],
        "slimming": [{"modules": "*", "types": ["BatchNorm2d"], "algorithm": "slimming", "ratio": 0.3}],
    }[kind]
    model = _model()
    c = compress(model, {"rules": rules})
    _train(model, c, 2)
    model = getattr(model, cast)()
    model.eval()
    y = model(_x().to(next(model.parameters()).dtype))
    assert y.dtype == next(iter(model.parameters())).dtype
    rows = c.replay()
    assert rows and all(r.match for r in rows), [r for r in rows if not r.match]
    for m in model.modules():
        if isinstance(m, ActivationQuant | Compression):
            assert all(t.dtype in (torch.float32, torch.bool) for t in m.state().values()), "state stays float32"


def test_float64_weights_follow_the_dtype_rule():
    model = nn.Sequential(nn.Linear(8, 4)).double()
    c = compress(model, {"rules": [{"modules": "0", "algorithm": "magnitude", "sparsity": 0.5},
                                   {"modules": "0", "algorithm": "affine", "bits": 4}]})  # fmt: skip
    w = model[0].weight
    assert w.dtype == torch.float64
    assert torch.equal(w, w.float().double()), "a float64 weight is compressed in float32 and widened back"
    assert all(r.match for r in c.replay())


# ---- steps ------------------------------------------------------------------------------------------------


def test_compress_applies_step_zero_at_once_and_steps_do_not_go_backwards():
    model = _model()
    c = compress(model, {"rules": [{**LAYERS, "algorithm": "magnitude", "sparsity": 0.5}]})
    assert c.summary()["sparsity"] == pytest.approx(0.5, abs=0.01), "one-shot pruning applies at compress"
    assert c.last_step == 0
    c.step(0)  # the same step again: nothing to do
    c.step(4)
    with pytest.raises(ValueError, match="must not go backwards: got 3 after 4"):
        c.step(3)
    with pytest.raises(TypeError, match="step must be an int"):
        c.step(5.0)
    assert "Compressor(recipe 'recipe', last step 4" in repr(c) and "magnitude(sparsity=0.5" in repr(c)


def test_skipped_steps_do_not_lose_scheduled_updates():
    rules = [{**LAYERS, "algorithm": "magnitude", "sparsity": 0.8, "schedule": {"start": 0, "end": 10, "every": 5}}]
    every, jumping = _model(), _model()
    a, b = compress(every, {"rules": rules}), compress(jumping, {"rules": rules})
    for s in range(1, 13):
        a.step(s)
    b.step(12)  # jumps over the updates at 5 and 10: the update of step 10 runs once, at 12
    assert a.summary()["sparsity"] == pytest.approx(b.summary()["sparsity"]) == pytest.approx(0.8, abs=0.01)


def test_compressor_state_of_another_recipe_is_rejected_without_changes():
    model = _model()
    c = compress(model, {"rules": [{**LAYERS, "algorithm": "magnitude", "sparsity": 0.5}]})
    with pytest.raises(ValueError, match="1 rule"):
        c.load_state_dict({"last_step": 3, "policies": []})
    with pytest.raises(ValueError, match="checks"):
        c.load_state_dict({"last_step": 3, "policies": [{"checks": "x", "mismatches": 0}]})
    assert c.last_step == 0


# ---- channel removal --------------------------------------------------------------------------------------


def test_remove_channels_rejects_a_compressed_model_and_non_sequential_models():
    model = _model()
    c = compress(model, {"rules": [{"modules": "*", "types": ["BatchNorm2d"], "algorithm": "slimming", "ratio": 0.3}]})
    with pytest.raises(ValueError, match="call Compressor.finalize"):
        remove_channels(model)
    remove_channels(c.finalize())

    class Residual(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="handles an nn.Sequential"):
        remove_channels(Residual())


# ---- deep copies are independent --------------------------------------------------------------------------

KINDS = {
    "masks": [{**LAYERS, "algorithm": "magnitude", "sparsity": 0.5}],
    "affine": [{**LAYERS, "algorithm": "affine", "bits": 4}],
    "lsq": [{**LAYERS, "algorithm": "lsq"}],
    "twn": [{**LAYERS, "algorithm": "twn"}],
    "xnor": [{**LAYERS, "algorithm": "xnor"}],
    "ttq": [{**LAYERS, "algorithm": "ttq"}],
    "activations": [{"modules": "[29]", "types": ["ReLU"], "algorithm": "activation_affine"},
                    {"modules": "5", "algorithm": "pact", "alpha": 3.0}],
    "slimming": [{"modules": "*", "types": ["BatchNorm2d"], "algorithm": "slimming", "ratio": 0.3, "at": 1}],
}  # fmt: skip


def _fingerprint(model, compressor=None):
    model.eval()
    out = _bits(model(_x()))
    model.train()
    state = {k: _bits(v) for k, v in model.state_dict().items()}
    replay = None if compressor is None else [r.match for r in compressor.replay()]
    return out, state, replay


@pytest.mark.parametrize("kind", list(KINDS))
def test_deep_copies_are_independent(kind):
    model = _model()
    c = compress(model, {"rules": KINDS[kind]})
    _train(model, c, 2)
    for operate_on_copy in (True, False):
        c1 = copy.deepcopy(c)
        original, copied = (c, c1) if operate_on_copy else (c1, c)
        keep = _fingerprint(original.model, original)
        other = copied
        other.step(other.last_step + 1)
        other.finalize()
        remove_channels(other.model) if kind == "slimming" else None
        compress(other.model, {"rules": [{"modules": "*", "types": ["BatchNorm2d"], "algorithm": "slimming",
                                          "ratio": 0.3}]})  # fmt: skip
        assert _fingerprint(original.model, original) == keep
        assert all(keep[2]), keep[2]
        _train(original.model, original, 1, start=4)  # the untouched one keeps training
        c = original


def test_a_model_copied_alone_survives_its_originals_finalize():
    model = _model()
    c = compress(model, {"rules": [{"modules": "*", "types": ["BatchNorm2d"], "algorithm": "slimming", "ratio": 0.3}]})
    twin = copy.deepcopy(model)
    keep = _fingerprint(twin)
    c.finalize()
    assert _fingerprint(twin) == keep
    assert twin[1].weight.shape == (16,)


# ---- export: dtypes, corrupt files, permissions -----------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("kind", ["masks", "affine", "lsq", "twn", "xnor", "ttq", "activations", "prune+quant"])
def test_export_round_trips_every_dtype_bit_for_bit(kind, dtype, tmp_path):
    rules = KINDS.get(kind) or [{**LAYERS, "algorithm": "magnitude", "sparsity": 0.6},
                                {**LAYERS, "algorithm": "affine", "bits": 6}]  # fmt: skip
    model = _model().to(dtype)
    c = compress(model, {"rules": rules})
    model(_x().to(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no tensor falls back to dense storage
        export_safetensors(model, c, tmp_path / "m.safetensors")
    loaded = load_safetensors(tmp_path / "m.safetensors")
    expected = dict(effective_tensors(model))
    assert list(loaded) == list(expected)
    for k, t in expected.items():
        want = t.cpu()
        got = loaded[k]
        assert str(got.dtype) == str(want.dtype).removeprefix("torch."), (k, got.dtype)
        assert got.shape == tuple(want.shape) and got.tobytes() == _bits(want), k
    fresh = _model(seed=3).to(dtype)
    fresh.load_state_dict({k: _torch(v) for k, v in loaded.items()})


def _torch(a):
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(a.copy())


def test_the_loader_runs_the_quantized_activations_exactly(tmp_path):
    model = _model()
    c = compress(model, {"rules": KINDS["activations"]})
    _train(model, c, 2)
    model.eval()
    export_safetensors(model, c, tmp_path / "m.safetensors")
    ckpt = load_safetensors(tmp_path / "m.safetensors")
    assert set(ckpt.activations) == {"2", "5", "9"}
    for name in ("2", "5"):
        x = torch.randn(4, 16, 8, 8) * 3 if name == "2" else torch.randn(4, 32, 8, 8) * 3
        want = getattr(model, name).pqref_activation(x)
        assert ckpt.quantize_activation(name, x.numpy()).tobytes() == _bits(want)


def test_exported_files_have_the_usual_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        export_safetensors(_model(), None, tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o644


def test_a_failed_export_leaves_the_existing_file(tmp_path, monkeypatch):
    from torch_backend.nn import export

    path = tmp_path / "m.safetensors"
    path.write_bytes(b"previous")
    monkeypatch.setattr(export, "_serialize", lambda files, record: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        export_safetensors(_model(), None, path)
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    with pytest.raises(ValueError, match="does not exist"):
        export_safetensors(_model(), None, tmp_path / "missing" / "m.safetensors")
    with pytest.raises(ValueError, match="is a directory"):
        export_safetensors(_model(), None, tmp_path)


# ---- the loader checks every field ------------------------------------------------------------------------


def _exported(tmp_path, rules):
    model = _model()
    c = compress(model, {"rules": rules})
    path = tmp_path / "m.safetensors"
    export_safetensors(model, c, path)
    return path


def _rewrite(path, header=None, record=None, body=None, resign=True):
    """Rewrite an exported file: `header(h)` edits the safetensors header, `record(r)` the pqref record (then its
    sha256 is recomputed unless `resign=False`, as a tool that rewrites metadata would), `body(b)` the data."""
    import hashlib
    import json
    import struct

    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    h = json.loads(data[8 : 8 + n])
    rest = bytearray(data[8 + n :])
    if record is not None:
        r = json.loads(h["__metadata__"]["pqref"])
        record(r)
        h["__metadata__"]["pqref"] = json.dumps(r)
        if resign:
            h["__metadata__"]["pqref_sha256"] = hashlib.sha256(h["__metadata__"]["pqref"].encode()).hexdigest()
    if header is not None:
        header(h)
    if body is not None:
        body(rest)
    text = json.dumps(h).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(rest))


QUANT = [{**LAYERS, "algorithm": "magnitude", "sparsity": 0.5}, {**LAYERS, "algorithm": "affine", "bits": 4}]
ALPHA = [{**LAYERS, "algorithm": "twn"}]


def _set_file_dtype(key, dtype):
    def edit(h):
        h[key]["dtype"] = dtype

    return edit


def _both(key, field, value):
    """Change a file tensor's field in the header and the record alike (a consistent structural edit)."""

    def header(h):
        h[key][field] = value

    def record(r):
        r["files"][key][field] = value

    return header, record


@pytest.mark.parametrize(
    ("rules", "edit", "message"),
    [
        (QUANT, {"header": _set_file_dtype("3.weight.scale", "I32")}, "file tensor '3.weight.scale': field 'dtype' is 'I32'"),
        (ALPHA, {"header": _set_file_dtype("3.weight.scale", "I32")}, "field 'dtype' is 'I32'"),
        ([{**LAYERS, "algorithm": "magnitude", "sparsity": 0.5}], {"header": _set_file_dtype("3.weight.values", "I32")},
         "field 'dtype' is 'I32'"),
        (QUANT, {"record": lambda r: r["tensors"]["3.weight"]["quant"].update(bits=5)}, "'quant.bits' 5"),
        (QUANT, {"record": lambda r: r["tensors"]["3.weight"]["quant"].update(qmin=-8)}, "'quant.qmin' -8"),
        (QUANT, {"record": lambda r: r["tensors"]["3.weight"].update(shape=[9, 16, 3, 32])}, "3.weight"),
        (QUANT, {"record": lambda r: r["tensors"]["3.weight"].update(shape=[31, 16, 3, 3])}, "3.weight"),
        (QUANT, {"record": lambda r: r["tensors"]["3.weight"]["quant"].update(algorithm="lsq")}, "disagree with lsq"),
        (QUANT, {"record": lambda r: r["tensors"]["3.weight"].update(kept=3)}, "field 'kept' is 3"),
        (QUANT, {"record": lambda r: r["tensors"]["3.weight"]["quant"].update(decode="nf4")}, "'quant.decode' 'nf4'"),
        (QUANT, {"record": lambda r: r["tensors"]["3.weight"]["quant"].update(bits=5), "resign": False},
         "does not match its sha256"),
        (QUANT, {"header": lambda h: h.pop("__metadata__")}, "no pqref record"),
        (QUANT, {"header": lambda h: h.__setitem__("extra", dict(h["3.weight.scale"]))}, "not in its pqref record"),
        (QUANT, {"record": lambda r: r["files"].pop("3.weight.scale")}, "not in its pqref record"),
        (QUANT, {"body": lambda b: b.__setitem__(-1, b[-1] ^ 1)}, "do not match the record's sha256"),
        (QUANT, {"record": lambda r: r["tensors"].__setitem__("new", {"dtype": "float32"})}, "tensor 'new'"),
    ],
)  # fmt: skip
def test_the_loader_rejects_corrupt_files_naming_tensor_and_field(tmp_path, rules, edit, message):
    from reference.checkpoint import CheckpointError

    path = _exported(tmp_path, rules)
    load_safetensors(path)  # intact: loads
    _rewrite(path, **edit)
    with pytest.raises(CheckpointError) as info:
        load_safetensors(path)
    assert message in str(info.value), str(info.value)


def test_a_consistent_shape_edit_of_a_file_tensor_is_caught(tmp_path):
    from reference.checkpoint import CheckpointError

    path = _exported(tmp_path, QUANT)
    header, record = _both("3.weight.scale", "shape", [16, 2])  # 32 values either way: same bytes
    _rewrite(path, header=header, record=record)
    with pytest.raises(CheckpointError, match="3.weight.*shape"):
        load_safetensors(path)


@pytest.mark.parametrize("content", [b"", b"12345678", b"\xff" * 64, b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage"])
def test_the_loader_rejects_files_that_are_not_pqref_exports(tmp_path, content):
    from reference.checkpoint import CheckpointError

    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        load_safetensors(path)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_safetensors(tmp_path / "missing.safetensors")


def test_the_reader_needs_no_torch(tmp_path):
    import subprocess
    import sys

    path = _exported(tmp_path, QUANT)
    code = (
        "import sys; from reference.checkpoint import load_safetensors; "
        f"m = load_safetensors({str(path)!r}); print(len(m), 'torch' in sys.modules)"
    )
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(load_safetensors(path))), "False"]


def test_an_lsq_step_pushed_through_zero_quantizes_with_its_absolute_value(tmp_path):
    """An optimizer may push a learned LSQ step to zero or below (the full demo did at step 13 of 16 channels):
    the step used is max(|s|, 2**-23), in the forward, the replay and the exported file alike."""
    from torch_backend.nn.compressions import LSQQuant

    model = _model()
    c = compress(model, {"rules": [{**LAYERS, "algorithm": "lsq", "bits": 4}]})
    _, conv, _, comps = next(iter(c.compressed_tensors()))
    lsq = next(comp for comp in comps if isinstance(comp, LSQQuant))
    w = lsq.scale.detach().clone()
    with torch.no_grad():
        lsq.scale[0] = -w[0]  # through zero: the same step as +w[0]
        lsq.scale[1] = 0.0  # the floor 2**-23
        lsq.scale[2] = -0.0
    x = _x()
    loss = model(x).square().mean()
    loss.backward()
    assert torch.isfinite(lsq.scale.grad).all()
    assert all(r.match for r in c.replay())
    weight = conv.parametrizations["weight"].original.detach()
    step = torch.where(w.abs() > 2.0**-23, w.abs(), torch.full_like(w, 2.0**-23))
    step[1] = step[2] = 2.0**-23
    want = torch_backend.lsq_quantize(weight, step, bits=4, signed=True, axis=0)
    assert _bits(conv.weight) == _bits(want)
    export_safetensors(model, c, tmp_path / "m.safetensors")
    loaded = load_safetensors(tmp_path / "m.safetensors")
    name = next(k for k, m in model.named_modules() if m is conv)
    assert loaded[f"{name}.weight"].tobytes() == _bits(want)
