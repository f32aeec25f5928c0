"""Exact compression across ranks (`torch_backend.distributed`, FSDP2, data-parallel calibration), in real processes.

One `mp.spawn` per world size (1, 2 and 4 processes, gloo, CPU) runs every check of this module: the statistics on
whole tensors split in several layouts (uneven rows per rank, some empty; DTensor `Shard(0)` and `Shard(1)`,
uneven, cutting N:M groups and quantization groups; a 2-D mesh; replicas), the errors, the bytes sent, a recipe
trained on an FSDP2-sharded model with a sharded checkpoint (saved at one world size, resumed at the next) and a
data-parallel GPTQ calibration. Each rank saves what it computed; the tests compare it, bit for bit, with one
process computing on the whole tensors.
"""

from __future__ import annotations

import contextlib
import datetime
import time
import traceback
import zlib

import pytest
import torch
from torch import nn

import torch_backend
from torch_backend import distributed
from torch_backend.nn import calibrate, compress

pytestmark = pytest.mark.xdist_group("distributed")  # one worker sets up the module fixtures once

WORLDS = (1, 2, 4)

# ---- the whole tensors: the same in every process ----------------------------------------------------------------


def _whole() -> dict:
    g = torch.Generator().manual_seed(11)
    ties = torch.randint(-3, 4, (10, 12), generator=g).float() / 2  # 7 levels: ties cut across every layout
    ties[0, 1], ties[9, 11] = -0.0, 0.0
    rows = (torch.randn(23, 6, generator=g) * 4).round() / 4  # ties too
    return {
        "ties": ties,
        "normal": torch.randn(10, 12, generator=g),
        "ties2": ties.flip(0) * 2,
        "f64": ties.double() * 3,
        "i64": torch.randint(-5, 5, (10, 12), generator=g),
        "gamma0": torch.tensor([0.5, -0.25, 0.25, 0.0, -0.0, 0.5, 1.0]),
        "gamma1": torch.tensor([0.25, -0.5, 0.125, 0.25, 0.0]),
        "grad0": torch.randn(7, generator=g),
        "grad1": torch.randn(5, generator=g),
        "rows": rows,
    }


# name -> (function, inputs (a tensor name, or a list of names), positional arguments, keyword arguments)
CASES = {
    **{f"keep_largest ties {c}": ("keep_largest", ["ties"], (c,), {}) for c in (0, 1, 37, 119, 120)},
    "keep_largest f64": ("keep_largest", ["f64"], (50,), {}),
    "keep_largest i64": ("keep_largest", ["i64"], (61,), {}),
    "magnitude_mask ties": ("magnitude_mask", ["ties"], (0.55,), {}),
    "magnitude_mask normal": ("magnitude_mask", ["normal"], (0.3,), {}),
    "magnitude_mask_by_count": ("magnitude_mask_by_count", ["ties"], (77,), {}),
    "global_magnitude_masks": ("global_magnitude_masks", [["ties", "normal", "ties2"]], (0.6,), {}),
    "slimming_masks 0.5": ("slimming_masks", [["gamma0", "gamma1"]], (0.5, 1), {}),
    "slimming_masks 1.0": ("slimming_masks", [["gamma0", "gamma1"]], (1.0, 2), {}),
    "slimming_masks 0.3": ("slimming_masks", [["gamma0", "gamma1"]], (0.3, 0), {}),
    "slimming_penalty_grad": ("slimming_penalty_grad", [["grad0", "grad1"], ["gamma0", "gamma1"]], (0.5,), {}),
    "percentile normal 99": ("percentile_amax", ["normal"], (99.0,), {}),
    "percentile ties 37.5": ("percentile_amax", ["ties"], (37.5,), {}),
    "percentile normal 100": ("percentile_amax", ["normal"], (100.0,), {}),
    "percentile normal 0": ("percentile_amax", ["normal"], (0.0,), {}),
    "percentile normal axis 1": ("percentile_amax", ["normal"], (50.0,), {"axis": 1}),
    "percentile ties axis 0": ("percentile_amax", ["ties"], (90.0,), {"axis": 0}),
    "exact_sum normal": ("exact_sum", ["normal"], (), {}),
    "exact_sum normal axis 1": ("exact_sum", ["normal"], (), {"axis": 1}),
    "exact_sum f64 axis 0": ("exact_sum", ["f64"], (), {"axis": 0}),
    "minmax_observer axis 1": ("minmax_observer", ["ties"], (), {"axis": 1}),
    "minmax_observer state": ("minmax_observer", ["normal"], ("STATE",), {}),
    "ema_minmax_observer": ("ema_minmax_observer", ["normal"], ("STATE",), {"averaging_constant": 0.25}),
    "minmax_qparams groups": ("minmax_qparams", ["normal"], (), {"qmin": -8, "qmax": 7, "axis": 1, "group_size": 4}),
    "minmax_qparams channel": ("minmax_qparams", ["ties"], (), {"qmin": 0, "qmax": 15, "axis": 0}),
    "minmax_qparams tensor": ("minmax_qparams", ["normal"], (), {"qmin": -127, "qmax": 127, "symmetric": True}),
    "gptq_hessian": ("gptq_hessian", ["rows"], (), {}),
    "exact_gram": ("exact_gram", ["rows"], (), {}),
}
PIECES = {"keep_largest", "magnitude_mask", "magnitude_mask_by_count", "global_magnitude_masks", "slimming_masks",
          "slimming_penalty_grad"}  # fmt: skip
STATE = (torch.tensor(-0.5), torch.tensor(1.5))


def _args(case, tensors):
    fn, inputs, args, kwargs = CASES[case]
    resolved = [[tensors[n] for n in spec] if isinstance(spec, list) else tensors[spec] for spec in inputs]
    args = tuple(STATE if a == "STATE" else a for a in args)
    return fn, resolved, args, kwargs


def _expected(case):
    fn, resolved, args, kwargs = _args(case, _whole())
    return getattr(torch_backend, fn)(*resolved, *args, **kwargs)


def _split(n, world):
    """Uneven row counts per rank, one of them empty for 4 ranks."""
    if world == 1:
        return [n]
    if world == 2:
        return [n // 3, n - n // 3]
    return [n // 5, 0, n // 2, n - n // 5 - n // 2]


def _layouts(world, ndim):
    names = ["rows", "shard0"] + (["shard1"] if ndim >= 2 else [])
    return names + (["2d", "replica"] if ndim >= 2 else ["replica"]) if world == 4 else names


# ---- the ranks ------------------------------------------------------------------------------------------------


def _worker(rank, world, root, previous):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/rendezvous{world}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))  # fmt: skip
    out = {}
    try:
        for section, run in (("functions", _functions), ("errors", _errors), ("traffic", _traffic),
                             ("fsdp", _fsdp), ("calibration", _calibration)):  # fmt: skip
            try:
                start = time.perf_counter()
                out[section] = run(rank, world, root, previous)
                out[f"{section} seconds"] = time.perf_counter() - start
            except Exception:
                out[section] = {"traceback": traceback.format_exc()}
                raise
    finally:
        torch.save(out, f"{root}/world{world}-rank{rank}.pt")
    dist.destroy_process_group()


_MESHES: dict = {}


def _mesh(shape):
    from torch.distributed.device_mesh import init_device_mesh

    if shape not in _MESHES:
        _MESHES[shape] = init_device_mesh("cpu", shape)
    return _MESHES[shape]


def _shard(x, layout, world, rank):
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    if layout == "rows":
        sizes = _split(x.shape[0], world)
        start = sum(sizes[:rank])
        return x[start : start + sizes[rank]].clone()
    if layout == "shard0":
        return distribute_tensor(x, _mesh((world,)), [Shard(0)])
    if layout == "shard1":
        return distribute_tensor(x, _mesh((world,)), [Shard(1)])
    if layout == "2d":
        return distribute_tensor(x, _mesh((2, 2)), [Shard(0), Shard(1)])
    return distribute_tensor(x, _mesh((2, 2)), [Replicate(), Shard(x.dim() - 1)])  # replicas on mesh dim 0


def _whole_of(result, layout):
    """A result as whole tensors: DTensors gathered (`distributed.full_tensor`), per-rank pieces concatenated."""
    import torch.distributed as dist

    if isinstance(result, list | tuple):
        return type(result)(_whole_of(r, layout) for r in result)
    if distributed.is_sharded(result):
        return distributed.full_tensor(result)
    if layout == "rows":
        pieces = [None] * dist.get_world_size()
        dist.all_gather_object(pieces, result)
        return torch.cat(pieces)
    return result


def _functions(rank, world, root, previous):
    whole = _whole()
    results = {}
    for case, (fn, inputs, _, _) in CASES.items():
        names = [n for spec in inputs for n in (spec if isinstance(spec, list) else [spec])]
        ndim = min(whole[n].dim() for n in names)
        for layout in _layouts(world, ndim):
            if fn in ("gptq_hessian", "exact_gram") and layout not in ("rows", "shard0"):
                continue  # their rows must not be split across ranks (an error, checked in _errors)
            shards = {n: _shard(whole[n], layout, world, rank) for n in names}
            fn_name, resolved, args, kwargs = _args(case, shards)
            result = getattr(distributed, fn_name)(*resolved, *args, **kwargs)
            results[(case, layout)] = _whole_of(result, layout) if fn in PIECES else result
    return results


ERRORS = {
    "nan": ("magnitude_mask", "ties", (0.5,), ("nan", (7, 5))),
    "nan scores": ("keep_largest", "ties", (3,), ("nan", (8, 2))),
    "inf in ws[1]": ("global_magnitude_masks", ["ties", "normal"], (0.5,), ("-inf", (4, 9))),
    "sparsity": ("magnitude_mask", "ties", (1.5,), None),
    "count": ("keep_largest", "ties", (121,), None),
    "percentile": ("percentile_amax", "normal", (101.0,), None),
    "hessian nan": ("gptq_hessian", "rows", (), ("nan", (19, 3))),
}


def _error_inputs(name):
    fn, inputs, args, poison = ERRORS[name]
    whole = _whole()
    if poison is not None:
        value, (i, j) = poison
        target = inputs[-1] if isinstance(inputs, list) else inputs
        whole[target] = whole[target].clone()
        whole[target][i, j] = float(value)
    resolved = [whole[n] for n in inputs] if isinstance(inputs, list) else whole[inputs]
    return fn, resolved, args


def _message(call):
    try:
        call()
    except (TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def _errors(rank, world, root, previous):
    out = {}
    for name in ERRORS:
        fn, resolved, args = _error_inputs(name)
        for layout in ("rows", "shard0", "shard1"):
            if fn == "gptq_hessian" and layout == "shard1":
                continue
            shards = [_shard(x, layout, world, rank) for x in resolved] if isinstance(resolved, list) else None
            x = shards if shards is not None else _shard(resolved, layout, world, rank)
            out[(name, layout)] = _message(lambda x=x, fn=fn, args=args: getattr(distributed, fn)(x, *args))
    rows = _shard(_whole()["rows"], "shard1", world, rank)
    out["columns split"] = _message(lambda: distributed.gptq_hessian(rows))
    return out


def _traffic(rank, world, root, previous):
    """Bytes of global magnitude pruning of 4 tensors, at two sizes, against all-gathering the weights."""
    out = {}
    for side in (32, 128):
        g = torch.Generator().manual_seed(side)
        ws = [_shard(torch.randn(side, side, generator=g), "shard0", world, rank) for _ in range(4)]
        with distributed.traffic() as t:
            distributed.global_magnitude_masks(ws, 0.9)
        with distributed.traffic() as gather:
            for w in ws:
                distributed.full_tensor(w)
        out[side] = {"payload": t.payload, "sent": t.sent, "calls": len(t.calls), "gather_sent": gather.sent}
    return out


# ---- FSDP2: a recipe on a sharded model ---------------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(12, 10), nn.BatchNorm1d(10), nn.Linear(10, 10)
        self.fc3, self.head = nn.Linear(10, 6), nn.Linear(6, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.fc1(x)))
        return self.head(torch.relu(self.fc3(torch.relu(self.fc2(x)))))


FSDP_RULES = [
    {"modules": "fc1", "algorithm": "nm", "n": 2, "m": 4, "at": 2},  # fc1 is sharded along its columns
    {"modules": "fc1", "algorithm": "affine", "bits": 4, "axis": 1, "group_size": 4},
    {"modules": "fc[23]", "algorithm": "global_magnitude", "sparsity": 0.7, "schedule": {"start": 0, "end": 4, "every": 2}},
    {"modules": "bn", "algorithm": "slimming", "ratio": 0.3, "lam": 0.01, "at": 3},
    {"modules": "head", "algorithm": "magnitude", "sparsity": 0.5, "at": 1},
    {"modules": "head", "algorithm": "lsq", "bits": 4},
]  # fmt: skip
STEPS, SAVE_AT = 6, 2


def _net():
    torch.manual_seed(3)
    return Net()


def _batch():
    return torch.randn(16, 12, generator=torch.Generator().manual_seed(5))


def _perturb(model, step):
    """A stand-in for an optimizer step that is the same on every layout: w <- 0.9 w + delta(step, name), each
    rank updating its own part (float32 multiply, then add: elementwise, so sharding changes no bit)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("scale"):
                continue  # LSQ's learned step stays positive
            g = torch.Generator().manual_seed(step * 1000 + zlib.crc32(name.encode()) % 1000)
            delta = torch.randn(p.shape, generator=g) * 0.05
            if distributed.is_sharded(p):
                p.to_local().mul_(0.9).add_(distributed.shard_like(delta, p).to_local())
            else:
                p.mul_(0.9).add_(delta)


def _shard_model(model, world):
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Shard

    mesh = _mesh((world,))
    fully_shard(model.fc1, mesh=mesh, shard_placement_fn=lambda p: Shard(p.dim() - 1))  # cuts the N:M groups
    for m in (model.bn, model.fc2, model.fc3, model.head):
        fully_shard(m, mesh=mesh)
    fully_shard(model, mesh=mesh)


def _train(model, compressor, start, stop, record):
    x = _batch()
    for step in range(start, stop):
        with distributed.traffic() as t:
            compressor.step(step)
        record[f"collectives {step}"] = t.calls
        y = model(x)
        record[f"output {step}"] = y.detach().clone()
        y.square().sum().backward()
        compressor.before_optimizer_step()
        model.zero_grad()
        _perturb(model, step)


def _snapshot(model, compressor, record):
    state = model.state_dict()
    for k, v in state.items():
        record[k] = distributed.full_tensor(v.detach()).clone()
    record["replay"] = [(r.tensor, r.match) for r in compressor.replay()]
    record["compressor"] = compressor.state_dict()
    return record


def _single_process_run(stop=STEPS):
    with _one_thread():
        model = _net()
        compressor = compress(model, {"rules": FSDP_RULES})
        record = {}
        _train(model, compressor, 0, stop, record)
        return _snapshot(model, compressor, record)


@contextlib.contextmanager
def _one_thread():
    """One intra-op thread, as in the ranks: torch's CPU batch norm and matmul results depend on the thread count
    (not pqref's arithmetic: the model's own float ops)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _fsdp(rank, world, root, previous):
    import torch.distributed.checkpoint as dcp

    model = _net()
    compressor = compress(model, {"rules": FSDP_RULES})
    _shard_model(model, world)
    record = {"sharded": sorted(n for n, p in model.named_parameters() if distributed.is_sharded(p))}
    _train(model, compressor, 0, SAVE_AT + 1, record)
    dcp.save({"model": model.state_dict(), "compressor": compressor.state_dict()}, checkpoint_id=f"{root}/ckpt{world}")
    _train(model, compressor, SAVE_AT + 1, STEPS, record)
    _snapshot(model, compressor, record)
    # resume from the checkpoint of the previous world size (resharded on load) in a fresh model
    model = _net()
    compressor = compress(model, {"rules": FSDP_RULES})
    _shard_model(model, world)
    state = {"model": model.state_dict(), "compressor": compressor.state_dict()}
    dcp.load(state, checkpoint_id=f"{root}/ckpt{previous}")
    model.load_state_dict(state["model"])
    compressor.load_state_dict(state["compressor"])
    resumed = {}
    _train(model, compressor, SAVE_AT + 1, STEPS, resumed)
    return {"run": record, "resumed": _snapshot(model, compressor, resumed)}


# ---- data-parallel calibration ---------------------------------------------------------------------------------


class Heads(nn.Module):
    """q and k read the same input (one calibration step); o reads their compressed outputs."""

    def __init__(self):
        super().__init__()
        self.q, self.k, self.o = nn.Linear(12, 8), nn.Linear(12, 8), nn.Linear(16, 4)

    def forward(self, x):
        return self.o(torch.cat([torch.relu(self.q(x)), torch.relu(self.k(x))], -1))


GPTQ_RULES = [
    {"modules": "[qk]", "algorithm": "gptq", "bits": 4, "group_size": 4, "act_order": True},
    {"modules": "o", "algorithm": "sparsegpt", "n": 2, "m": 4, "bits": 4, "group_size": 8},
]


def _calibration_rows():
    return torch.randn(37, 12, generator=torch.Generator().manual_seed(9))


def _heads():
    torch.manual_seed(4)
    return Heads()


def _calibrated(model):
    return {k: v.clone() for k, v in model.state_dict().items() if ".result_" in k or k.endswith(".hessian")}


def _calibration(rank, world, root, previous):
    x = _calibration_rows()
    sizes = _split(x.shape[0], world)
    mine = x[sum(sizes[:rank]) : sum(sizes[: rank + 1])]
    batches = [mine[i : i + 5] for i in range(0, mine.shape[0], 5)] or [mine]  # an empty rank: one empty batch
    model = _heads()
    compressor = calibrate(model, {"rules": GPTQ_RULES}, batches, data_parallel=True, progress=False)
    return {"tensors": _calibrated(model), "replay": all(r.match for r in compressor.replay())}


# ---- the tests ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import torch.multiprocessing as mp

    root = tmp_path_factory.mktemp("distributed")
    out = {}
    previous = WORLDS[0]
    for world in WORLDS:
        try:
            mp.spawn(_worker, args=(world, str(root), previous), nprocs=world, join=True)
        except Exception as exc:  # the ranks' records name the section that failed; the others are usable
            out[world] = exc
        files = [root / f"world{world}-rank{r}.pt" for r in range(world)]
        if all(f.exists() for f in files):
            out[world] = [torch.load(f, weights_only=False) for f in files]
        previous = world
    return out


def _ranks(runs, world, section):
    got = runs[world]
    if isinstance(got, Exception):
        pytest.fail(f"world size {world}: the ranks failed: {got}")
    for r, record in enumerate(got):
        if section not in record:
            pytest.fail(f"world size {world}, rank {r}: {section} did not run (an earlier section failed)")
        if "traceback" in record[section]:
            pytest.fail(f"world size {world}, rank {r}, {section}:\n{record[section]['traceback']}")
    return [record[section] for record in got]


def _bits(t):
    if isinstance(t, list | tuple):
        return [_bits(v) for v in t]
    t = t.detach()
    return (str(t.dtype), tuple(t.shape), t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


@pytest.mark.parametrize("world", WORLDS)
def test_statistics_across_ranks_equal_one_process_bit_for_bit(runs, world):
    ranks = _ranks(runs, world, "functions")
    checked = 0
    for case in CASES:
        want = _bits(_expected(case))
        layouts = [layout for c, layout in ranks[0] if c == case]
        assert layouts, f"{case}: no layout ran"
        for layout in layouts:
            for r, results in enumerate(ranks):
                assert _bits(results[(case, layout)]) == want, f"{case}, layout {layout}, rank {r} of {world}"
                checked += 1
    assert checked >= len(CASES) * 2 * world


@pytest.mark.parametrize("world", WORLDS)
def test_every_rank_raises_the_single_process_error(runs, world):
    ranks = _ranks(runs, world, "errors")
    for name in ERRORS:
        fn, resolved, args = _error_inputs(name)
        want = _message(lambda fn=fn, resolved=resolved, args=args: getattr(torch_backend, fn)(resolved, *args))
        assert want != "no error"
        keys = [key for key in ranks[0] if isinstance(key, tuple) and key[0] == name]
        assert keys
        for key in keys:
            for r in range(world):
                assert ranks[r][key] == want, f"{key}, rank {r}"
    for r in range(world):
        if world > 1:
            assert "each rank must hold whole rows" in ranks[r]["columns split"]
        else:  # one rank holds every column
            assert ranks[r]["columns split"] == "no error"


@pytest.mark.parametrize("world", WORLDS)
def test_global_pruning_sends_histograms_not_weights(runs, world):
    (t, *_) = _ranks(runs, world, "traffic")
    if world == 1:
        assert t[32]["payload"] == t[128]["payload"] == 0
        return
    # three digits of a float32 key: 4096 + 1024 + 1024 int64 counts, whatever the size of the tensors, and the
    # finiteness check: (first bad index, value) of each of the 4 tensors
    assert t[32]["payload"] == t[128]["payload"] == (4096 + 1024 + 1024) * 8 + 4 * 16, t
    # all-gathering the weights grows with them: 16 times the elements, about 16 times the bytes (shards padded)
    assert 15 * t[32]["gather_sent"] < t[128]["gather_sent"] < 17 * t[32]["gather_sent"], t


def _fsdp_reference():
    if not hasattr(_fsdp_reference, "cache"):
        _fsdp_reference.cache = _single_process_run()
    return _fsdp_reference.cache


@pytest.mark.parametrize("world", WORLDS)
def test_fsdp2_sharded_training_gives_the_single_process_masks_codes_and_weights(runs, world):
    single = _fsdp_reference()
    for r, got in enumerate(_ranks(runs, world, "fsdp")):
        run = got["run"]
        if world > 1:
            assert "fc1.parametrizations.weight.original" in run["sharded"], run["sharded"]
        assert run["replay"] and all(ok for _, ok in run["replay"]), run["replay"]
        assert run["compressor"] == single["compressor"]
        masks = [k for k in single if k.endswith(".mask")]
        assert len(masks) == 6 and all(not bool(single[k].all()) for k in masks), masks
        if world > 1:  # step 4's global magnitude update ranked the shards by histograms (4096 int64 counts first)
            assert ("all_reduce_sum", 4096 * 8, world) in run["collectives 4"], run["collectives 4"]
        for k, v in single.items():
            if isinstance(v, torch.Tensor):
                assert _bits(run[k]) == _bits(v), f"rank {r} of {world}: {k}"


@pytest.mark.parametrize("world", WORLDS)
def test_sharded_checkpoint_resumes_bit_exactly_across_world_sizes(runs, world):
    single = _fsdp_reference()
    for r, got in enumerate(_ranks(runs, world, "fsdp")):
        resumed = got["resumed"]
        assert resumed["compressor"] == single["compressor"]
        assert all(ok for _, ok in resumed["replay"])
        later = {f"output {s}" for s in range(SAVE_AT + 1, STEPS)}
        compared = [k for k, v in single.items() if isinstance(v, torch.Tensor) and (k in later or "output" not in k)]
        assert len(compared) > len(later)
        for k in compared:
            assert _bits(resumed[k]) == _bits(single[k]), f"rank {r} of {world}, resumed: {k}"


@pytest.mark.parametrize("world", WORLDS)
def test_data_parallel_gptq_calibration_equals_one_process(runs, world):
    model = _heads()
    x = _calibration_rows()
    with _one_thread():
        calibrate(model, {"rules": GPTQ_RULES}, [x[i : i + 5] for i in range(0, x.shape[0], 5)], progress=False)
    want = _calibrated(model)
    assert len(want) == 3 * 5 + 3 + 3  # q, k: hessian and 5 GPTQ outputs; o: hessian, weight, mask, 3 codes
    for r, got in enumerate(_ranks(runs, world, "calibration")):
        assert got["replay"]
        assert got["tensors"].keys() == want.keys()
        for k, v in want.items():
            assert _bits(got["tensors"][k]) == _bits(v), f"rank {r} of {world}: {k}"
