"""Training with compression: recipes, replay, state_dict, checkpoints, export, finalize, channel removal, DDP."""

import copy
import os
import tempfile

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from tests.helpers import DEVICE_PARAMS
from torch_backend.nn import ActivationQuant, RecipeError, compress, export_safetensors, load_safetensors
from torch_backend.nn.demo import build_model
from torch_backend.nn.export import effective_tensors
from torch_backend.nn.surgery import remove_channels

LAYERS = {"modules": "*", "types": ["Conv2d", "Linear"]}
RECIPES = {
    "magnitude-agp": [
        {**LAYERS, "algorithm": "magnitude", "sparsity": 0.8, "schedule": {"start": 0, "end": 6, "every": 2}}
    ],
    "global": [{**LAYERS, "algorithm": "global_magnitude", "sparsity": 0.7}],
    "ln_structured": [{**LAYERS, "algorithm": "ln_structured", "sparsity": 0.5, "p": 1, "axis": 0}],
    "nm": [{**LAYERS, "modules": "[!0]*", "algorithm": "nm", "n": 2, "m": 4}],
    "random": [{**LAYERS, "algorithm": "random", "sparsity": 0.5, "seed": 3}],
    "affine-channel": [{**LAYERS, "algorithm": "affine", "bits": 4, "axis": 0}],
    "affine-tensor-asym": [{**LAYERS, "algorithm": "affine", "bits": 8, "axis": None, "symmetric": False}],
    "lsq": [{**LAYERS, "algorithm": "lsq", "bits": 4}],
    "twn": [{**LAYERS, "algorithm": "twn"}],
    "xnor": [{**LAYERS, "algorithm": "xnor", "axis": None}],
    "ttq": [{**LAYERS, "algorithm": "ttq", "t": 0.1}],
    "w8a8": [
        {**LAYERS, "algorithm": "affine", "bits": 8},
        {"modules": "*", "types": ["ReLU"], "algorithm": "activation_affine", "bits": 8},
    ],
    "pact": [{"modules": "*", "types": ["ReLU"], "algorithm": "pact", "bits": 4, "alpha": 2.0}],
    "slimming": [
        {"modules": "*", "types": ["BatchNorm2d"], "algorithm": "slimming", "ratio": 0.4, "lam": 1e-3, "at": 3}
    ],
    "prune+quant": [
        {**LAYERS, "algorithm": "magnitude", "sparsity": 0.6},
        {**LAYERS, "algorithm": "affine", "bits": 6, "axis": 0},
    ],
}


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def _train(model, compressor, steps, start=0, seed=0, opt=None, device="cpu"):
    x, y = (t.to(device) for t in _data(seed=seed))
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step in range(start, start + steps):
        idx = (torch.arange(step * 16, step * 16 + 16) % len(y)).to(device)
        compressor.step(step)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        compressor.before_optimizer_step()
        opt.step()
    return opt


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model(1, 10, 8)


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize("name", list(RECIPES))
def test_replay_matches_after_training(name, device):
    """Every recipe, trained on each device present (on CUDA the affine quantizers take the fused kernel), replays
    bit for bit on the NumPy reference."""
    model = _model().to(device)
    compressor = compress(model, {"rules": RECIPES[name]})
    _train(model, compressor, 8, device=device)
    rows = compressor.replay()
    assert rows and all(r.match for r in rows), [r for r in rows if not r.match]
    pruning = {"magnitude", "global_magnitude", "ln_structured", "nm", "random", "slimming"}
    assert any("mask updates" in r.tensor for r in rows) == any(r["algorithm"] in pruning for r in RECIPES[name])
    assert any("output" in r.tensor for r in rows) == any(
        r["algorithm"] in ("pact", "activation_affine") for r in RECIPES[name]
    )


def test_replay_detects_a_tampered_mask():
    model = _model()
    compressor = compress(model, {"rules": RECIPES["magnitude-agp"]})
    _train(model, compressor, 3)
    mask = model[3].parametrizations.weight[0]
    with torch.no_grad():
        mask.mask[0, 0, 0, 0] = ~mask.mask[0, 0, 0, 0]
    assert all(r.match for r in compressor.replay())  # the forward uses the tampered mask too: still consistent
    # but a compression whose forward disagrees with its reference is caught:
    mask.forward = lambda w: torch.where(mask.mask, w, -0.0)
    assert not all(r.match for r in compressor.replay())


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"modules": "nothing*", "algorithm": "magnitude", "sparsity": 0.5}], "matches no module"),
        ([{**LAYERS, "algorithm": "magnitud", "sparsity": 0.5}], "unknown algorithm 'magnitud'"),
        ([{**LAYERS, "algorithm": "magnitude", "sparsity": 1.5}], "sparsity must be in [0.0, 1.0], got 1.5"),
        ([{**LAYERS, "algorithm": "magnitude"}], "missing parameter 'sparsity'"),
        ([{**LAYERS, "algorithm": "magnitude", "sparsity": 0.5, "spars": 1}], "unknown parameter(s) ['spars']"),
        ([{**LAYERS, "algorithm": "nm", "n": 2, "m": 4}], "no axis -1 divisible by m=4"),
        ([{**LAYERS, "algorithm": "nm", "n": 5, "m": 4}], "n must be <= m"),
        ([{**LAYERS, "algorithm": "affine", "bits": 1}], "bits must be in [2, 16], got 1"),
        ([{"modules": "1", "algorithm": "affine", "tensor": "scale"}], "has no parameter 'scale'"),
    ],
)
def test_bad_recipes_fail_before_training_and_name_the_rule(rules, message):
    model = _model()
    before = copy.deepcopy(model.state_dict())
    good = {**LAYERS, "algorithm": "affine", "bits": 8}
    with pytest.raises(RecipeError) as info:
        compress(model, {"rules": [good, *rules]})
    assert message in str(info.value)
    assert "rule 1" in str(info.value)
    assert not any(parametrize.is_parametrized(m) for m in model.modules()), "nothing may be registered"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_recipe_from_toml(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(
        'name = "toml"\n[[rules]]\nmodules = "*"\ntypes = ["Linear"]\nalgorithm = "magnitude"\nsparsity = 0.5\n'
    )
    model = _model()
    compressor = compress(model, path)
    compressor.step(0)
    assert compressor.recipe.name == "toml"
    assert abs(compressor.summary()["sparsity"] - 0.5) < 0.01
    path.write_text("[[rules]\n")
    with pytest.raises(RecipeError, match="cannot read recipe"):
        compress(_model(), path)


def _bits(t):
    return t.detach().cpu().numpy().tobytes()


def test_state_dict_round_trip_and_checkpoint_resume_equal_uninterrupted_run():
    rules = RECIPES["prune+quant"][:1] + [
        {**LAYERS, "algorithm": "magnitude", "sparsity": 0.8, "schedule": {"start": 0, "end": 8, "every": 2}}
    ]
    rules = [rules[1], RECIPES["prune+quant"][1]]
    torch.use_deterministic_algorithms(True)
    try:
        full = _model()
        cf = compress(full, {"rules": rules})
        _train(full, cf, 10)

        first = _model()
        c1 = compress(first, {"rules": rules})
        opt1 = _train(first, c1, 5)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ckpt.pt")
            torch.save({"model": first.state_dict(), "opt": opt1.state_dict(), "pqref": c1.state_dict()}, path)
            ckpt = torch.load(path)
        resumed = _model(seed=123)  # different init: everything must come from the checkpoint
        c2 = compress(resumed, {"rules": rules})
        resumed.load_state_dict(ckpt["model"])
        c2.load_state_dict(ckpt["pqref"])
        opt2 = torch.optim.SGD(resumed.parameters(), lr=0.05, momentum=0.9)
        opt2.load_state_dict(ckpt["opt"])
        _train(resumed, c2, 5, start=5, opt=opt2)
    finally:
        torch.use_deterministic_algorithms(False)
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert _bits(a[k]) == _bits(b[k]), k
    assert all(r.match for r in c2.replay())


@pytest.mark.parametrize("name", list(RECIPES))
def test_export_round_trips_bit_for_bit_and_reports_real_size(name, tmp_path):
    model = _model()
    compressor = compress(model, {"rules": RECIPES[name]})
    _train(model, compressor, 4)
    path = tmp_path / "m.safetensors"
    size = export_safetensors(model, compressor, path)
    assert size == os.path.getsize(path)
    loaded = load_safetensors(path)
    expected = dict(effective_tensors(model))
    assert loaded.keys() == expected.keys()
    for k, t in expected.items():
        want = t.cpu().numpy()
        assert loaded[k].dtype == want.dtype and loaded[k].shape == want.shape, k
        assert loaded[k].tobytes() == want.tobytes(), k
    dense = export_safetensors(_model(), None, tmp_path / "dense.safetensors")
    if any(
        r["algorithm"] in ("affine", "magnitude", "global_magnitude", "lsq", "twn", "xnor", "ttq")
        for r in RECIPES[name]
    ):
        assert size < dense


def test_finalize_bakes_weights_and_keeps_the_function():
    model = _model().eval()
    compressor = compress(model, {"rules": RECIPES["prune+quant"]})
    compressor.step(0)
    x = _data()[0][:8]
    before = model(x)
    plain = compressor.finalize()
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    assert _bits(plain(x)) == _bits(before)


def test_channel_removal_shrinks_the_model_and_keeps_outputs_within_tolerance():
    model = _model().eval()
    with torch.no_grad():
        for i, n in [(1, 16), (4, 32)]:
            drop = torch.arange(n) % 3 == 0
            model[i].weight[drop] = 0.0
            model[i].bias[drop] = 0.0
            model[i].running_mean.uniform_(-1, 1)
            model[i].running_var.uniform_(0.5, 2.0)
    small = remove_channels(model)
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    kept1, kept2 = 16 - 6, 32 - 11
    expected = (9 * kept1) + 2 * kept1 + (kept1 * 9 * kept2) + 2 * kept2 + (kept2 * 16 * 64 + 64) + (64 * 10 + 10)
    assert params(small) == expected < params(model)
    x = _data()[0][:16]
    a, b = model(x), small(x)
    # Not bitwise: the consumer sums over fewer terms in another order. Stated tolerance: 1e-5 of the output scale.
    assert torch.allclose(a, b, rtol=0, atol=1e-5 * float(a.abs().max()))


def test_mixed_precision_weights_follow_the_stated_rule():
    for dtype in (torch.float16, torch.bfloat16):
        model = nn.Sequential(nn.Linear(16, 8)).to(dtype)
        compressor = compress(model, {"rules": RECIPES["prune+quant"]})
        compressor.step(0)
        assert model[0].weight.dtype == dtype
        assert all(r.match for r in compressor.replay())


# ---- DistributedDataParallel: 2 processes, gloo, CPU --------------------------------------------------------

DDP_RULES = [
    {"modules": "*", "types": ["Linear"], "algorithm": "magnitude", "sparsity": 0.75,
     "schedule": {"start": 0, "end": 6, "every": 2}},
    {"modules": "*", "types": ["Linear"], "algorithm": "affine", "bits": 4, "axis": 0},
]  # fmt: skip


def _ddp_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4))


def _ddp_batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 12, generator=g), torch.randint(0, 4, (8,), generator=g)) for _ in range(8)]


def _ddp_worker(rank, world, init, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    model = _ddp_model()
    compressor = compress(model, {"rules": DDP_RULES})
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    for step, (x, y) in enumerate(_ddp_batches()):
        compressor.step(step)
        half = slice(rank * 4, rank * 4 + 4)
        loss = nn.functional.cross_entropy(ddp(x[half]), y[half])
        opt.zero_grad()
        loss.backward()
        opt.step()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["replay"] = all(r.match for r in compressor.replay())
    torch.save(state, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_ddp_two_processes_agree_with_each_other_and_with_one_process(tmp_path):
    import torch.multiprocessing as mp

    init = f"file://{tmp_path}/rendezvous"
    mp.spawn(_ddp_worker, args=(2, init, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert r0["replay"] and r1["replay"]
    # one process, the same data: each half's gradient averaged as DDP does (g0 / 2 + g1 / 2)
    model = _ddp_model()
    compressor = compress(model, {"rules": DDP_RULES})
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step, (x, y) in enumerate(_ddp_batches()):
        compressor.step(step)
        grads = []
        for rank in range(2):
            half = slice(rank * 4, rank * 4 + 4)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[half]), y[half]).backward()
            grads.append([p.grad.clone() for p in model.parameters()])
        for p, g0, g1 in zip(model.parameters(), *grads, strict=True):
            p.grad = g0 / 2 + g1 / 2
        opt.step()
    single = model.state_dict()
    for k in single:
        assert _bits(r0[k]) == _bits(r1[k]), f"ranks differ on {k}"
        assert _bits(r0[k]) == _bits(single[k]), f"DDP differs from one process on {k}"
    masks = [k for k in single if k.endswith(".mask")]
    assert masks and all(not bool(single[k].all()) for k in masks)


def test_lottery_rounds_prune_survivors_and_rewind_to_the_snapshot():
    model = _model()
    compressor = compress(model, {"rules": [{**LAYERS, "algorithm": "lottery", "fraction": 0.5, "rewind_step": 0}]})
    snapshot = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("original")}
    _train(model, compressor, 4)
    compressor.next_round()
    compressor.next_round()
    assert all(r.match for r in compressor.replay())
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module):
            mask = module.parametrizations.weight[0].mask
            master = module.parametrizations.weight.original
            assert abs(float(mask.float().mean()) - 0.25) < 0.02, name  # two rounds of 50%
            want = torch.where(mask, snapshot[f"{name}.parametrizations.weight.original"], 0.0)
            assert _bits(master) == _bits(want), name


def test_slimmed_model_loses_its_channels_after_finalize():
    model = _model()
    compressor = compress(model, {"rules": RECIPES["slimming"]})
    _train(model, compressor, 5)
    model.eval()
    x = _data()[0][:16]
    masked = model(x)
    small = remove_channels(compressor.finalize())
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in _model().parameters())
    out = small(x)
    assert torch.allclose(masked, out, rtol=0, atol=1e-5 * float(masked.abs().max()))


def test_activations_not_recorded_keep_no_copies_and_replay_says_so():
    model = _model()
    compressor = compress(model, {"rules": RECIPES["w8a8"]}, record_activations=False)
    _train(model, compressor, 3)
    quantizers = [m for m in model.modules() if isinstance(m, ActivationQuant)]
    assert quantizers and all(q.last is None for q in quantizers)
    rows = compressor.replay()
    outputs = [r for r in rows if "output" in r.tensor]
    assert len(outputs) == len(quantizers)
    assert all(r.elements == 0 and "not recorded" in r.detail for r in outputs)
    assert all(r.match and r.elements > 0 for r in rows if "output" not in r.tensor)
