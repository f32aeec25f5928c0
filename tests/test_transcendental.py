"""Correctly rounded transcendentals beyond the generic suite: the host path against the certified path, the exact
rounding of rationals, the exact midpoints of powers, and the agreement measurement of the exactness page."""

from fractions import Fraction

import numpy as np
import pytest
import torch

import reference as R
import torch_backend as T
from reference.common import transcendentals as host
from reference.core import transcendental as rt
from spec.strategies.core import transcendental as hard
from torch_backend.core import transcendental as tt

FUNCTIONS = [
    ("cr_exp", lambda x: (x,), np.exp),
    ("cr_log", lambda x: (np.abs(x) + np.float32(1e-30),), np.log),
    ("cr_sigmoid", lambda x: (x,), lambda v: 1 / (1 + np.exp(-v))),
    ("cr_pow", lambda x: (np.abs(x), np.array(0.35, np.float32)), lambda v: np.power(np.abs(v), np.float32(0.35))),
]


def _bits(a):
    return np.asarray(a).view(np.uint32)


@pytest.mark.parametrize(("name", "args", "_f"), FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_the_host_path_gives_the_certified_bits(name, args, _f, monkeypatch):
    """With the certified interval made far too wide, every element goes through the exact host path, in both
    backends; the results are the bits the certified path gives."""
    x = np.random.default_rng(5).uniform(-105, 90, 600).astype(np.float32)
    want = getattr(R, name)(*args(x))
    monkeypatch.setattr(rt, "REL", 2.0**-20)
    monkeypatch.setattr(tt, "REL", 2.0**-20)
    _, ok = rt._certified(np.exp(x.astype(np.float64)))
    assert (~ok).sum() > 400, "the wide interval sends most elements to the host path"
    assert np.array_equal(_bits(getattr(R, name)(*args(x))), _bits(want))
    got = getattr(T, name)(*[torch.from_numpy(np.array(a)) for a in args(x)])
    assert np.array_equal(_bits(got.numpy()), _bits(want))


@pytest.mark.parametrize(
    ("values", "f64", "exponent"),
    [
        (hard.HARD_EXP, np.exp, None),
        (hard.HARD_LOG, np.log, None),
        (hard.HARD_SIGMOID, lambda v: 1 / (1 + np.exp(-v)), None),
    ]
    + [((x,), np.power, y) for x, y in hard.HARD_POW[:6]],
)
def test_the_strategies_hard_cases_do_reach_the_host_path(values, f64, exponent):
    """The hard cases the strategies draw are ones the float64 interval cannot certify, so the generic bitwise
    suite runs the host path."""
    v = np.array(values, dtype=np.float32).astype(np.float64)
    approx = f64(v) if exponent is None else f64(v, np.float64(np.float32(exponent)))
    _, ok = rt._certified(approx)
    assert not ok.any()


def test_round_float32_is_ieee_rounding():
    """Rationals that are float64 values round exactly as the IEEE float64 -> float32 cast does (one rounding)."""
    rng = np.random.default_rng(0)
    v = rng.standard_normal(5000) * 10.0 ** rng.integers(-46, 40, 5000)
    edges = [2.0**-150, 3 * 2.0**-150, 2.0**-149, 2.0**128 - 2.0**103, 2.0**128 - 2.0**103 - 2.0**70, 1 + 2.0**-24]
    v = np.concatenate([v, edges, [-e for e in edges]])
    with np.errstate(over="ignore"):
        want = v.astype(np.float32)
    got = np.array([host.round_float32(Fraction(float(a))) for a in v], dtype=np.float32)
    assert np.array_equal(_bits(got), _bits(want))


def test_round_float32_beyond_float64():
    """Ties and near-ties that float64 cannot hold: 1 + 2**-24 (a tie, to even), plus or minus 2**-200."""
    tie = Fraction(1) + Fraction(1, 2**24)
    assert host.round_float32(tie) == 1.0
    assert host.round_float32(tie + Fraction(1, 2**200)) == 1 + 2.0**-23
    assert host.round_float32(tie - Fraction(1, 2**200)) == 1.0


@pytest.mark.parametrize(
    ("x", "y", "exact"),
    [
        (4097.0, 2.0, Fraction(4097**2)),
        (2.0**-75, 2.0, Fraction(1, 2**150)),
        (9.0, 0.5, Fraction(3)),
        (6561.0, 0.125, Fraction(3)),  # 3**8 ** (1/8)
        (2.0, -3.0, Fraction(1, 8)),
        (3.0, -1.0, None),  # 1/3: not dyadic, never a boundary
        (2.0, 0.5, None),  # irrational
        (5.0, 16.0, None),  # j = 128 > 120: 5**16 has 38 bits, too many to be a midpoint
    ],
)
def test_exact_pow_finds_the_possible_midpoints(x, y, exact):
    assert host.exact_pow(x, y) == exact


def test_pow_ties_go_to_even_in_both_backends():
    x = np.array([4097.0, 2.0**-75, 3 * 2.0**-75, 4099.0], dtype=np.float32)
    want = np.array([16785408.0, 0.0, 4 * 2.0**-149, 16801800.0], dtype=np.float32)  # 4099**2 = 16801801: to even
    assert np.array_equal(_bits(R.cr_pow(x, np.array(2.0, np.float32))), _bits(want))
    assert np.array_equal(_bits(T.cr_pow(torch.from_numpy(x), torch.tensor(2.0)).numpy()), _bits(want))


def test_agreement_script_counts_no_difference_for_pqref(capsys):
    from scripts import transcendental_agreement

    transcendental_agreement.main(["--n", "4096"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 4
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[6] == "0", row  # reference vs torch
        assert int(cells[1]) > 0 or cells[0] == "log", row  # the float32 functions do disagree


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize(("name", "args", "_f"), FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_the_python_float_route_gives_the_tensor_routes_bits(name, args, _f, wide, monkeypatch):
    """Up to `HOST_MAX` CPU elements the functions certify Python's float64 results with the same half-width:
    blocks of every size up to it over the hard cases, the domain's ends (overflow to infinity, underflow to
    zero, a float64 function that raises: the tensor route takes over), both zeros and subnormals, against the
    tensor route and the reference; `wide` sends every element to the exact host path."""
    rng = np.random.default_rng(23)
    special = [0.0, -0.0, 1e-45, -1e-45, 88.72, 88.73, 100.0, -103.9, -110.0, -1000.0, 1000.0, 1.0, -1.0]
    hard_cases = {"cr_exp": hard.HARD_EXP, "cr_log": hard.HARD_LOG, "cr_sigmoid": hard.HARD_SIGMOID}
    pool = np.concatenate([special, hard_cases.get(name, [p[0] for p in hard.HARD_POW]), rng.uniform(-105, 90, 150)])
    x = pool.astype(np.float32)
    if wide:
        monkeypatch.setattr(tt, "REL", 2.0**-20)
        monkeypatch.setattr(rt, "REL", 2.0**-20)
    fn = getattr(T, name)
    exponents = [np.array(0.35, np.float32), np.array(-1.5, np.float32), np.array(0.0, np.float32)]
    for size in range(1, tt.HOST_MAX + 1):
        for start in range(0, len(x) - size, 37):
            for a in [args(x[start : start + size])] + (
                [(np.abs(x[start : start + size]), e) for e in exponents] if name == "cr_pow" else []
            ):
                tensors = [torch.from_numpy(np.array(v)) for v in a]
                want = getattr(R, name)(*a)
                got = fn(*tensors)
                monkeypatch.setattr(tt, "HOST_MAX", -1)
                by_tensors = fn(*tensors)
                monkeypatch.setattr(tt, "HOST_MAX", 16)
                assert np.array_equal(_bits(got.numpy()), _bits(want)), (size, start)
                assert np.array_equal(_bits(by_tensors.numpy()), _bits(want)), (size, start)


def test_the_python_float_route_settles_what_it_cannot_certify():
    """`_few`'s certificate: a float64 value on a float32 midpoint (the interval straddles it) goes to the exact
    function, one far from every midpoint is rounded, a zero is `+0.0` (its interval's ends round to -0.0 and
    +0.0, which compare equal), an infinity is certified, and a float64 function that raises hands the call back."""
    one_up = float(np.nextafter(np.float32(1), np.float32(2)))
    midpoint = (1.0 + one_up) / 2
    x = torch.tensor([0.5, 1.5, 2.5, 3.5])
    values = {0.5: midpoint, 1.5: 1.0 + 2.0**-30, 2.5: 0.0, 3.5: 1e300}
    got = tt._few(x, lambda v: True, lambda v: values[v], lambda v: 42.0)
    assert got.tolist() == [42.0, 1.0, 0.0, float("inf")]
    assert not np.signbit(got[2].item())

    def raises(v):
        raise OverflowError

    assert tt._few(x, lambda v: True, raises, lambda v: 42.0) is None
    assert tt._few(x, lambda v: v < 3, lambda v: 1.0, lambda v: 42.0) is None
    assert tt._few(torch.zeros(tt.HOST_MAX + 1), lambda v: True, lambda v: 1.0, lambda v: 42.0) is None


def test_the_float32_square_root_steps_at_once_give_the_references_bits():
    """`cr_sqrt` of float32 takes both steps at once with no tie test (`_sqrt_fix32`: no midpoint squared is a
    float32): the reference's bits on random bit patterns of every exponent, perfect squares and their float32
    neighbours, signed zero, the smallest subnormal and the largest float."""
    rng = np.random.default_rng(7)
    words = rng.integers(0, 0x7F800000, 400_000, dtype=np.int64).astype(np.uint32).view(np.float32)
    squares = np.arange(1, 40_000, dtype=np.float32) ** 2
    edges = np.array([0.0, -0.0, 1e-45, 2.0**-126, 3.4028235e38, 1.0, 2.0, 0.25], dtype=np.float32)
    x = np.concatenate([words, squares, np.nextafter(squares, np.float32(0)), np.nextafter(squares, np.inf), edges])
    x = x.astype(np.float32)
    assert np.array_equal(_bits(rt.cr_sqrt(x)), _bits(tt.cr_sqrt(torch.from_numpy(x)).numpy()))


@pytest.mark.parametrize("floor", [0.0, 2.0**-900, 2.0**-160])
def test_tiny_nonnegative_approximations_raised_to_the_floor_change_nothing(floor, monkeypatch):
    """exp, pow and sigmoid raise their float64 approximations to `FLOOR` before the certificate (no arithmetic
    on float64 subnormals): below it the float32 result is +0.0 and certified either way. The reference's bits
    with the floor off, at its value and just under float32's smallest subnormal, on inputs whose results span
    float64's subnormals, the floor and float32's subnormal range."""
    monkeypatch.setattr(tt, "FLOOR", floor)
    monkeypatch.setattr(tt, "HOST_MAX", 0)  # the tensor route even for few elements
    x = np.concatenate([-np.geomspace(1e-3, 3.4e38, 300), np.linspace(-760.0, -80.0, 700)]).astype(np.float32)
    assert np.array_equal(_bits(rt.cr_exp(x)), _bits(tt.cr_exp(torch.from_numpy(x)).numpy()))
    assert np.array_equal(_bits(rt.cr_sigmoid(x)), _bits(tt.cr_sigmoid(torch.from_numpy(x)).numpy()))
    base = np.concatenate([np.geomspace(1e-45, 1.0, 500), [0.0]]).astype(np.float32)
    for y in (np.float32(0.5), np.float32(3.0), np.float32(30.0), np.float32(-0.5)):
        want = rt.cr_pow(base, np.asarray(y))
        assert np.array_equal(_bits(want), _bits(tt.cr_pow(torch.from_numpy(base), torch.tensor(y)).numpy()))
