"""`torch_backend.kernels` (fused Triton kernels, radix select, fast tree sum) against the NumPy reference, bit for bit.

Each fast function is run through `spec.conformance.check_case` against the registry entry of its twin, on every
torch device: on CUDA the Triton kernels run compiled; on a CPU-only machine with Triton installed this module
turns on Triton's interpreter (`TRITON_INTERPRET=1`) before the kernels are imported, so the same kernel source is
checked on CPU. The eager fallbacks (no Triton, or `PQREF_KERNELS=eager`) are checked too. The benchmark scripts
are only smoke-tested here (they run and write well-formed files); no timing is asserted.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import spec.strategies as S
from spec.backends import TORCH
from spec.conformance import check_case, same_bits
from spec.entry import Case, resolve
from spec.registry import REGISTRY
from tests.helpers import DEVICE_PARAMS

HAS_TRITON = importlib.util.find_spec("triton") is not None
CPU_ONLY = not torch.cuda.is_available()
if HAS_TRITON and CPU_ONLY and "torch_backend.kernels._triton_kernels" not in sys.modules:
    # the kernels decide at import whether they are compiled or interpreted, and Triton reads the variable again
    # while interpreting, so it stays set for this process (it only affects Triton)
    os.environ["TRITON_INTERPRET"] = "1"

import torch_backend as T  # noqa: E402
import torch_backend.kernels as K  # noqa: E402
from torch_backend.core import _radix  # noqa: E402
from torch_backend.kernels import _dispatch  # noqa: E402

# (registry entry, fast implementation): what `Entry.extra` should name
FUSED = [
    ("fake_quantize", "torch_backend.kernels.fake_quant:fake_quantize"),
    ("fake_quantize_vjp", "torch_backend.kernels.fake_quant:fake_quantize_vjp"),
    ("keep_largest", "torch_backend.kernels.select:keep_largest"),
    ("magnitude_mask", "torch_backend.kernels.select:magnitude_mask"),
    ("magnitude_mask_by_count", "torch_backend.kernels.select:magnitude_mask_by_count"),
    ("global_magnitude_masks", "torch_backend.kernels.select:global_magnitude_masks"),
    ("nm_mask", "torch_backend.kernels.select:nm_mask"),
    ("tree_sum", "torch_backend.kernels.reduce:tree_sum"),
]
FUSED_PARAMS = [pytest.param(REGISTRY[name], target, id=name) for name, target in FUSED]
# the ones with a Triton kernel, whose eager fallback is a different code path
WITH_KERNEL = [p for p in FUSED_PARAMS if p.id in ("fake_quantize", "fake_quantize_vjp", "nm_mask", "tree_sum")]
F32 = np.float32


def _a(values, dtype=np.float32):
    return np.array(values, dtype=dtype)


def _check(name, case, device, fn=None):
    entry = REGISTRY[name]
    check_case(entry, case, TORCH, device, fn=fn or resolve(dict(FUSED)[name]))


# ---- which path runs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_path_is_the_expected_one(device):
    x = torch.zeros(4, device=device)
    got = _dispatch.path(x)
    if not HAS_TRITON:
        assert got == "eager", "without Triton every function must take the eager path"
    elif device == "cuda":
        assert got == "triton"
    elif os.environ.get("PQREF_KERNELS") != "eager":
        assert got == "triton-interpreter", f"CPU with Triton installed should use the interpreter here, got {got}"
    with _dispatch.forced("eager"):
        assert _dispatch.path(x) == "eager"


def test_signatures_match_torch_backend():
    import inspect

    for name, target in FUSED:
        entry = REGISTRY[name]
        assert inspect.signature(resolve(target)) == inspect.signature(entry.implementation("torch_backend")), name


# ---- conformance: the registry's strategies, goldens and bad inputs --------------------------------------------


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize(("entry", "target"), FUSED_PARAMS)
def test_fast_matches_reference_bitwise(entry, target, device):
    fn = resolve(target)

    @given(entry.strategy())
    def check(case):
        check_case(entry, case, TORCH, device, fn=fn)

    check()


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize(("entry", "target"), WITH_KERNEL)
def test_eager_fallback_matches_reference_bitwise(entry, target, device):
    fn = resolve(target)

    @settings(max_examples=max(10, settings().max_examples // 4))
    @given(entry.strategy())
    def check(case):
        with _dispatch.forced("eager"):
            check_case(entry, case, TORCH, device, fn=fn)

    check()


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize(("entry", "target"), FUSED_PARAMS)
def test_goldens_and_bad_inputs(entry, target, device):
    fn = resolve(target)
    for golden in entry.golden:
        native = Case(TORCH.to_native(golden.case.args, device), TORCH.to_native(golden.case.kwargs, device))
        same_bits(golden.expected, TORCH.to_numpy(native.call(fn)), f"{entry.name} golden {golden.why}")
    for bad in entry.bad:
        check_case(entry, bad.case, TORCH, device, fn=fn)


# ---- error precedence: the deferred finiteness checks report what the reference reports --------------------------

NAN, INF = float("nan"), float("inf")
BIG_BAD = np.ones(70_000, np.float32)
BIG_BAD[66_000] = INF


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize(
    ("name", "case"),
    [
        ("fake_quantize", Case((_a([1, NAN]), _a([1.0, 2.0]), _a([0], np.int32)), {"qmin": 0, "qmax": 3})),
        ("fake_quantize", Case((_a([1, INF]), _a(-1.0), _a(0, np.int32)), {"qmin": 0, "qmax": 3})),
        ("fake_quantize", Case((_a([1, INF]), _a(1.0), _a(0, np.int32)), {"qmin": 0, "qmax": 3})),
        ("fake_quantize", Case((BIG_BAD, _a(1.0), _a(0, np.int32)), {"qmin": 0, "qmax": 3})),
        ("fake_quantize", Case((_a([NAN]), _a(1.0), _a(9, np.int32)), {"qmin": 0, "qmax": 3})),
        ("tree_sum", Case((_a([1, 2, INF]),), {"axis": 3})),
        ("tree_sum", Case((np.concatenate([BIG_BAD, BIG_BAD]),))),
        ("tree_sum", Case((_a([1e308, 1e308, 1, 2], np.float64),))),
        ("tree_sum", Case((_a([[1, NAN] * 10, [1, 2] * 10]),), {"axis": 1})),
        ("keep_largest", Case((_a([1, NAN]), 5))),
        ("keep_largest", Case((np.where(np.arange(70_000) == 3, F32(NAN), F32(1)), 10))),
        ("keep_largest", Case((np.where(np.arange(70_000) == 3, F32(-INF), F32(1)), 69_999))),
        ("keep_largest", Case((np.where(np.arange(9) == 3, -NAN, 1.0), 4))),
        ("keep_largest", Case((_a([1, NAN, 3]), 0))),
        ("magnitude_mask", Case((_a([1, NAN]), 2.0))),
        ("magnitude_mask", Case((BIG_BAD, 0.5))),
        ("magnitude_mask", Case((_a([INF, 1]), 0.0))),
        ("magnitude_mask_by_count", Case((_a([1, NAN]), 9))),
        ("global_magnitude_masks", Case(([_a([1, NAN]), _a([1], np.float64)], 0.5))),
        ("global_magnitude_masks", Case(([_a([1, 2]), _a([NAN], np.float64)], 0.5))),
        ("global_magnitude_masks", Case(([_a([1, 2]), BIG_BAD], 0.3))),
        ("global_magnitude_masks", Case(([_a([1, NAN]), _a([1.0])], 1.5))),
        ("nm_mask", Case((_a([1, NAN, 2, 3]), 2, 4))),
        ("nm_mask", Case((_a([1, NAN, 2, 3]), 2, 0))),
        ("nm_mask", Case((_a([1, INF, 2]), 2, 4))),
        ("nm_mask", Case((BIG_BAD[:68_000], 2, 4))),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_error_precedence_and_non_finite_detection(name, case, device):
    _check(name, case, device)


# ---- radix select: small digits (many passes), long tie runs across chunks, several parts --------------------------


@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_radix_select_with_small_digits(device):
    @given(S.select_cases(), st.sampled_from([(1, 1), (3, 3), (5, 2), (8, 13), (13, 8), (16, 16), (2, 14)]))
    def check(case, bits):
        fn = lambda s, c: _radix.keep_largest(s, c, bits)  # noqa: E731
        check_case(REGISTRY["keep_largest"], case, TORCH, device, fn=fn)

    check()


@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_global_masks_with_small_digits(device):
    from torch_backend.pruning.magnitude import pruned_count

    @given(S.global_cases(), st.sampled_from([(2, 2), (7, 3), (16, 16), (1, 12)]))
    def check(case, bits):
        def fn(ws, sparsity):
            n = sum(w.numel() for w in ws)
            named = [(f"ws[{i}]", w) for i, w in enumerate(ws)]
            return _radix.magnitude_masks(named, n - pruned_count(sparsity, n), bits)

        check_case(REGISTRY["global_magnitude_masks"], case, TORCH, device, fn=fn)

    check()


@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_long_tie_runs_cut_inside_a_later_chunk(device):
    rng = np.random.default_rng(0)
    values = F32([0.0, -0.0, 1.0, -1.0, 2.0, 1e-45, -1e-45, np.inf, -np.inf])
    scores = values[rng.integers(0, values.size, 300_000)]
    order = np.argsort(-scores, kind="stable")
    # the cut falls inside a run of ties whose kept part ends past the first 2**16-element chunk
    assert scores[order[150_000]] == scores[order[150_001]] and order[150_000] > 1 << 16
    for count in (1, 7, 33_334, 150_001, 299_999, int(np.count_nonzero(scores >= 1.0)) + 77_777):
        _check("keep_largest", Case((scores, count)), device)
    w = values[rng.integers(0, 4, 200_001)]  # only zeros and +-1: every cut is inside a run of ties
    parts = [w[:70_000], w[70_000:70_001], w[70_001:].reshape(1000, -1)]
    for sparsity in (0.1, 0.35, 0.5, 0.75, 0.999):
        _check("global_magnitude_masks", Case((parts, sparsity)), device)
        _check("magnitude_mask", Case((w, sparsity)), device)


@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_equal_keys_and_shared_prefixes_skip_passes(device):
    """All keys equal (a tensor of zeros, both signs): no digit pass, the first `count` in flat order; keys that
    share their top bits (a narrow range): the passes start below the shared prefix; a NaN among equal keys is
    still found."""
    from reference.core.select import keep_largest

    n = 70_003
    zeros = np.zeros(n, np.float32)
    zeros[::3] = -0.0
    narrow = (np.float32(1.0) + np.float32(2**-23) * np.random.default_rng(1).integers(0, 5, n)).astype(np.float32)
    for scores in (zeros, np.full(n, 1e-45, np.float32), narrow, -narrow, np.full(n, 7, np.int64)):
        for count in (0, 1, 4_097, n // 2, n - 1, n):
            _check("keep_largest", Case((scores, count)), device)
    for bits in ((12, 10), (3, 3)):
        scores = narrow[:20_000]
        for count in (1, 9_999):
            want = keep_largest(scores, count)
            got = _radix.keep_largest(torch.from_numpy(scores).to(device), count, bits)
            assert np.array_equal(got.cpu().numpy(), want)
    parts = [np.full((300, 70), -0.0, np.float32), np.zeros(1, np.float32), np.zeros((40_000,), np.float32)]
    for sparsity in (0.1, 0.5, 0.999):
        _check("global_magnitude_masks", Case((parts, sparsity)), device)
    bad = np.zeros(n, np.float32)
    bad[n - 2] = np.nan
    with pytest.raises(ValueError) as e_ref:
        keep_largest(bad, n // 2)
    with pytest.raises(ValueError) as e_torch:
        _radix.keep_largest(torch.from_numpy(bad).to(device), n // 2)
    assert str(e_torch.value) == str(e_ref.value)


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_signed_zeros_are_equal_scores(device, dtype):
    scores = np.array([-0.0, 0.0, -1.0, -0.0, 0.0, -5e-324 if dtype == np.float64 else -1e-45], dtype=dtype)
    for count in range(scores.size + 1):
        _check("keep_largest", Case((scores, count)), device)
        _check("keep_largest", Case((scores[::-1].copy(), count)), device)


@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_select_float64_and_int64_extremes(device):
    f64 = np.array([np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308] * 3)
    # not -(2**63): the reference negates the scores to sort them descending, and -(-(2**63)) overflows to itself
    # (reported; torch_backend's descending sort ranks it last, as it should)
    i64 = np.array([2**63 - 1, -(2**63) + 1, 0, -1, 1, 2**62, -(2**62)] * 3, dtype=np.int64)
    for scores in (f64, i64):
        for count in range(scores.size + 1):
            _check("keep_largest", Case((scores, count)), device)


# ---- fake quantize: subnormals, boundaries, every granularity and mode, autograd -----------------------------------


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize("rounding", ["half_even", "half_away", "floor", "ceil", "stochastic"])
def test_fake_quantize_subnormals_and_boundaries(device, rounding):
    tiny = [1e-45, -1e-45, 1e-40, -1e-40, -1.1754942e-38, 0.0, -0.0]
    edges = [0.5, -0.5, 1.5, -2.5, 2.5, 126.5, 127.5, -128.5, 3e38, -3e38, 4194304.5, -4194305.0, 8388607.5]
    x = _a((tiny + edges) * 2).reshape(2, -1)
    key = (3, 4) if rounding == "stochastic" else None
    kw = {"qmin": -128, "qmax": 127, "rounding": rounding, "key": key}
    for scale in (1.0, 0.5, 3e-39, 1e-45, 7.0e10):
        _check("fake_quantize", Case((x, _a(scale), _a(-3, np.int32)), kw), device)
    s = _a([1e-45, 0.75])
    _check("fake_quantize", Case((x, s, _a([5, -128], np.int32)), {**kw, "axis": 0}), device)
    sg = _a([[1.0, 2.0, 0.1, 3e-39, 1e-45, 0.3, 1e3, 0.5, 0.25, 4.0], [0.5] * 10])
    zg = np.arange(-10, 10, 2, dtype=np.int32).reshape(1, 10).repeat(2, axis=0)
    _check("fake_quantize", Case((x, sg, zg), {**kw, "axis": 1, "group_size": 2}), device)
    grad = np.linspace(-3, 3, x.size, dtype=np.float32).reshape(x.shape)
    _check("fake_quantize_vjp", Case((grad, x, _a(0.5), _a(1, np.int32)), kw), device)


@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_fake_quantize_layouts_and_autograd(device):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((6, 8, 4)) * 40).astype(np.float32)
    kw = {"qmin": 0, "qmax": 15}
    for axis, group in ((0, None), (1, None), (2, None), (1, 4), (0, 3), (2, 2), (-1, 4)):
        shape = [6, 8, 4]
        shape[axis] //= group or shape[axis]
        if group is None:
            shape = [x.shape[axis]]
        s = rng.uniform(0.5, 4, shape).astype(np.float32)
        z = rng.integers(0, 16, shape).astype(np.int32)
        _check("fake_quantize", Case((x, s, z), {**kw, "axis": axis, "group_size": group}), device)
    # a non-contiguous input and a 0-d input
    xt = torch.from_numpy(x).to(device).transpose(0, 2)
    got = K.fake_quantize(xt, torch.tensor(0.7, device=device), torch.tensor(3, dtype=torch.int32, device=device), **kw)
    from torch_backend.quantization.affine import fake_quantize as eager

    want = eager(xt, torch.tensor(0.7, device=device), torch.tensor(3, dtype=torch.int32, device=device), **kw)
    assert torch.equal(got.view(torch.int32), want.view(torch.int32))
    _check("fake_quantize", Case((_a(2.6), _a(0.5), _a(1, np.int32)), kw), device)
    _check("fake_quantize", Case((np.zeros((0, 3), np.float32), _a(0.5), _a(1, np.int32)), kw), device)
    # the straight-through gradient through the fused forward equals torch_backend's, bit for bit
    leaf = torch.from_numpy(x).to(device).requires_grad_(True)
    s, z = torch.tensor(0.3, device=device), torch.tensor(2, dtype=torch.int32, device=device)
    (g1,) = torch.autograd.grad(K.fake_quantize(leaf, s, z, **kw).sum(), leaf)
    (g2,) = torch.autograd.grad(eager(leaf, s, z, **kw).sum(), leaf)
    assert torch.equal(g1, g2) and 0 < int((g1 == 0).sum()) < g1.numel()


# ---- tree_sum and nm_mask: sizes around the kernel's four-level steps ---------------------------------------------


@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_tree_sum_sizes_and_signed_zeros(device):
    rng = np.random.default_rng(2)
    for n in (2, 15, 16, 17, 31, 255, 256, 257, 4097, 65_537):
        x = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(np.float32)
        _check("tree_sum", Case((x,)), device)
        _check("tree_sum", Case((x.astype(np.float64) * 1e200,)), device)
    for n in (16, 17, 32, 33):
        _check("tree_sum", Case((np.full(n, -0.0, np.float32),)), device)
    for shape in ((2, 17, 3), (2, 3, 20)):  # few rows: the interpreter runs one program per row
        x = (rng.standard_normal(shape) * 1e4).astype(np.float32)
        for axis in (None, 0, 1, 2, -1):
            _check("tree_sum", Case((x,), {"axis": axis}), device)
    _check("tree_sum", Case((np.zeros((3, 0), np.float32),), {"axis": 0}), device)


@pytest.mark.parametrize("device", DEVICE_PARAMS)
def test_nm_mask_every_m_with_ties_and_subnormals(device):
    rng = np.random.default_rng(3)
    pool = F32([0.0, -0.0, 1e-45, -1e-45, 1.0, -1.0, 2.0, 3e38])
    for m in range(1, 18):
        w = pool[rng.integers(0, pool.size, (3, 4 * m))]
        for n in sorted({0, 1, m // 2, m - 1, m}):
            if 0 <= n <= m:
                _check("nm_mask", Case((w, n, m), {"axis": -1}), device)
                _check("nm_mask", Case((w.T.copy(), n, m), {"axis": 0}), device)


# ---- the benchmarks run and write well-formed results (no timing is asserted) --------------------------------------


def test_benchmarks_smoke(tmp_path):
    from benchmarks import run

    with _dispatch.forced("eager"):
        status = run.main(["--smoke", "--device", "cpu", "--out", str(tmp_path)])
    assert status == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert set(data) == {"meta", "targets", "results"}
    suites = {r["suite"] for r in data["results"]}
    assert {"fake_quantize", "global magnitude", "N:M mask", "tree_sum", "training step", "exact", "gptq"} <= suites
    assert any(s.startswith("reference vs torch") for s in suites)
    for r in data["results"]:
        assert r["ms"] is None or r["ms"] >= 0
        assert r["ratio"] is None or r["ratio"] > 0
        # every check a suite writes into its notes ("bit-identical: ...", "bit-identical to eager: ...",
        # "identical to the stable-sort masks: ...", "gives the same bits: ...") must have held
        assert ": False" not in r["note"], r
    # 5 GPU targets + 4 CPU goals of the exact suite + the GPTQ goal: every one pending in a smoke run
    assert len(data["targets"]) == 10 and all(t["met"] is None for t in data["targets"])
    md = (tmp_path / "results.md").read_text()
    assert "## Targets" in md and "| target | measured | goal | status | detail |" in md
    assert md.count("\n|") > len(data["results"])


def test_only_the_eager_path_can_be_forced():
    with pytest.raises(ValueError, match="only the eager path"):
        with _dispatch.forced("triton"):
            pass
    assert set(K.status()) == {"triton", "interpreter", "why_not"}


# ---- the compiled kernels keep the exactness rules: audited in their PTX for an H100/H200, without a GPU -----------


def test_audit_rules_flag_each_kind_of_inexact_instruction():
    from torch_backend.kernels.audit import audit_ptx

    exact = """
        add.rn.f32 %f3, %f1, %f2;
        @%p1 mul.rn.f64 %fd1, %fd2, %fd3;
        div.rn.f32 %f4, %f1, %f2;
        sqrt.rn.f64 %fd4, %fd1;
        mad.lo.s32 %r3, %r1, %r2, %r4;
        cvt.rzi.s32.f32 %r5, %f1;
    """
    assert audit_ptx(exact) == []
    bad = {
        "add.f32 %f3, %f1, %f2;": "without .rn",
        "sub.f64 %fd3, %fd1, %fd2;": "without .rn",
        "mul.ftz.f32 %f3, %f1, %f2;": "without .rn",
        "fma.rn.f32 %f4, %f1, %f2, %f3;": "fused multiply-add",
        "mad.rn.f64 %fd4, %fd1, %fd2, %fd3;": "fused multiply-add",
        "div.full.f32 %f3, %f1, %f2;": "not IEEE",
        "div.approx.ftz.f32 %f3, %f1, %f2;": "not IEEE",
        "sqrt.approx.f32 %f2, %f1;": "not IEEE",
        "ex2.approx.f32 %f2, %f1;": "approximate",
        "cvt.rn.ftz.f32.f64 %f1, %fd1;": "flush-to-zero",
    }
    for line, why in bad.items():
        problems = audit_ptx(f"    {line}\n")
        assert len(problems) == 1 and why in problems[0], (line, problems)


def test_compiled_kernels_are_exact_in_ptx():
    """Compile every kernel variant the launchers can request for sm_90 and audit the PTX (no GPU needed); then
    compile one with `enable_fp_fusion=True` and see the audit catch it, so the audit is known to bite."""
    if not HAS_TRITON:
        pytest.skip("Triton is not installed: nothing to compile")
    import subprocess

    code = (
        "import sys\n"
        "from torch_backend.kernels import audit\n"
        "status = audit.main(['--arch', '90'])\n"
        "v = next(v for v in audit.variants() if v.kernel == 'fake_quant_kernel')\n"
        "fused = audit.audit_ptx(audit.compile_ptx(v, 90, fusion=True))\n"
        "print('with fusion:', fused)\n"
        "sys.exit(status if fused else 3)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    if proc.returncode == 2:
        pytest.skip(out.strip().splitlines()[-1])
    assert proc.returncode == 0, out
    assert ", 0 failing" in out and "without .rn" in out, out


# ---- host syncs: on CUDA every read of a device value by the host waits for the GPU, so the fused paths read once


def _host_reads(fn):
    """How many times `fn()` reads a tensor's value on the host (bool/int/float/item/tolist/numpy/cpu/nonzero)."""
    names = ["__bool__", "__int__", "__float__", "__index__", "item", "tolist", "numpy", "cpu", "nonzero"]
    count = [0]
    saved = {n: getattr(torch.Tensor, n) for n in names}

    def wrap(original):
        def reading(self, *a, **k):
            count[0] += 1
            return original(self, *a, **k)

        return reading

    try:
        for n in names:
            setattr(torch.Tensor, n, wrap(saved[n]))
        fn()
    finally:
        for n, original in saved.items():
            setattr(torch.Tensor, n, original)
    return count[0]


@pytest.mark.skipif(not HAS_TRITON, reason="the fused path needs Triton (compiled, or its interpreter on CPU)")
@pytest.mark.parametrize("axis", [None, 0])
@pytest.mark.parametrize("grad", [False, True])
def test_fused_fake_quantize_reads_the_device_once(axis, grad):
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.linspace(-3, 3, 64, device=dev).reshape(8, 8).requires_grad_(grad)
    shape = () if axis is None else (8,)
    s = torch.full(shape, 0.05, device=dev)
    z = torch.zeros(shape, dtype=torch.int32, device=dev)
    assert _dispatch.use_triton(x)
    kw = {"qmin": -128, "qmax": 127, "axis": axis}
    assert _host_reads(lambda: K.fake_quantize(x, s, z, **kw)) == 1
    # and a bad scale is still reported with the eager message, after that one read
    with pytest.raises(ValueError) as fused:
        K.fake_quantize(x, s - 1.0, z, **kw)
    with pytest.raises(ValueError) as eager:
        T.fake_quantize(x, s - 1.0, z, **kw)
    assert str(fused.value) == str(eager.value) and "scale" in str(fused.value)


@pytest.mark.parametrize("device", DEVICE_PARAMS)
@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": 1, "group_size": 4}, {"symmetric": True, "axis": 0}])
def test_minmax_qparams_reads_the_device_once(device, kw):
    """Calibration runs every step in training: one host read, and a NaN still raises the reference's error."""
    from torch_backend.quantization.affine import minmax_qparams

    x = torch.linspace(-3, 3, 64, device=device).reshape(8, 8)
    assert _host_reads(lambda: minmax_qparams(x, qmin=-127, qmax=127, **kw)) == 1
    bad = x.clone()
    bad[5, 3] = float("nan")
    with pytest.raises(ValueError) as ours:
        minmax_qparams(bad, qmin=-127, qmax=127, **kw)
    with pytest.raises(ValueError) as ref:
        import reference

        reference.minmax_qparams(bad.cpu().numpy(), qmin=-127, qmax=127, **kw)
    assert str(ours.value) == str(ref.value) and "flat index 43" in str(ours.value)


# ---- deferred_checks: a block's device-side checks read once at its end, with the errors of the calls themselves


def _bad_calls(dev):
    """(call, same call outside any block) pairs whose inputs are bad in a value, not in a type or shape."""
    from torch_backend.quantization.affine import minmax_qparams

    x = torch.linspace(-3, 3, 64, device=dev).reshape(8, 8)
    nan = x.clone()
    nan[2, 5] = float("nan")
    s = torch.full((), 0.05, device=dev)
    z = torch.zeros((), dtype=torch.int32, device=dev)
    return {
        "fake_quantize x": lambda: K.fake_quantize(nan, s, z, qmin=-128, qmax=127),
        "fake_quantize scale": lambda: K.fake_quantize(x, -s, z, qmin=-128, qmax=127),
        "fake_quantize zero_point": lambda: K.fake_quantize(x, s, z + 300, qmin=-128, qmax=127),
        "minmax_qparams": lambda: minmax_qparams(nan, qmin=0, qmax=255),
        "nm_mask": lambda: K.nm_mask(nan, 2, 4, axis=1),
        "tree_sum": lambda: K.tree_sum(nan),
    }


def _error(fn):
    with pytest.raises((ValueError, TypeError)) as info:
        fn()
    return type(info.value), str(info.value)


@pytest.mark.skipif(not HAS_TRITON, reason="the device-side checks are those of the Triton paths")
@pytest.mark.parametrize("name", list(_bad_calls("cpu")))
def test_deferred_checks_raise_the_same_error_at_the_end_of_the_block(name):
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    call = _bad_calls(dev)[name]
    at_once = _error(call)
    reached = []

    def block():
        with K.deferred_checks():
            call()
            reached.append(True)  # the call itself did not raise

    assert _error(block) == at_once and reached == [True]


@pytest.mark.skipif(not HAS_TRITON, reason="the device-side checks are those of the Triton paths")
def test_deferred_checks_report_the_first_bad_call_and_outrank_a_later_error():
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    calls = _bad_calls(dev)
    first = _error(calls["minmax_qparams"])

    def two_bad():
        with K.deferred_checks():
            calls["minmax_qparams"]()
            calls["fake_quantize scale"]()

    assert _error(two_bad) == first
    x = torch.ones(4, device=dev)

    def then_a_type_error():  # an error raised at once inside the block: the earlier recorded one wins
        with K.deferred_checks():
            calls["nm_mask"]()
            T.tree_sum(x.double().to(torch.int32))

    with pytest.raises(ValueError) as info:
        then_a_type_error()
    assert (type(info.value), str(info.value)) == _error(calls["nm_mask"])
    assert isinstance(info.value.__cause__, TypeError)

    after_inner = []

    def nested():
        with K.deferred_checks():
            with K.deferred_checks():
                calls["tree_sum"]()
            after_inner.append(True)  # the inner block did not read the flag: the outer one does

    assert _error(nested) == _error(calls["tree_sum"]) and after_inner == [True]
    with K.deferred_checks():  # an overflow from finite inputs is not an error
        big = K.tree_sum(torch.full((4,), 1e308, dtype=torch.float64, device=dev))
    assert float(big) == float("inf")


@pytest.mark.skipif(not HAS_TRITON, reason="the fused path needs Triton (compiled, or its interpreter on CPU)")
def test_a_deferred_training_step_reads_the_device_once():
    from benchmarks import bench_training as B

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = B.ResNet18(4, 10).to(dev)
    B.set_quantized(model, True)
    x, t = torch.randn(2, 3, 32, 32, device=dev), torch.randint(0, 10, (2,), device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), t).backward()
        opt.step()

    def deferred_step():
        with K.deferred_checks():
            step()

    step()
    checked = _host_reads(step)
    assert checked > 60  # a read per calibration, fake quantization and mask: about five per layer
    assert _host_reads(deferred_step) == 1


@pytest.mark.skipif(not HAS_TRITON, reason="the device-side checks are those of the Triton paths")
def test_deferred_check_of_an_input_changed_in_place_does_not_pass_silently():
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.ones(8, 8, device=dev)
    x[1, 2] = float("inf")
    s, z = torch.full((), 0.5, device=dev), torch.zeros((), dtype=torch.int32, device=dev)
    with pytest.raises(RuntimeError, match="modified in place"):
        with K.deferred_checks():
            K.fake_quantize(x, s, z, qmin=-8, qmax=7)
            x[1, 2] = 0.0  # the evidence is gone by the end of the block
