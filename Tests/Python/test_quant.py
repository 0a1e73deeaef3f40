"""QCFS activation quantizer and int8 weight fake quantization (csdformer.quant)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from csdformer.quant import (INT8_MAX, QCFS, _QCFSFunction, fake_quant_weight, qcfs_count, quantize_weight,
                             weight_scale)

# L = 4 and lambda = 2 give the step s = 0.5 exactly, so every x below is an exact binary
# fraction and x / s + 1/2 is computed without rounding error.
LEVELS = 4
CLIP = 2.0
STEP = CLIP / LEVELS

# (x, count) worked out by hand from count = clip(floor(x / s + 1/2), 0, L) with s = 0.5.
HAND_COUNTS = [
    (-3.0, 0),     # far below: clipped to 0
    (-0.25, 0),    # x/s = -0.5: floor(0) = 0 (the lower half point)
    (-0.125, 0),   # x/s = -0.25: floor(0.25) = 0
    (0.0, 0),
    (0.125, 0),    # x/s = 0.25: floor(0.75) = 0
    (0.25, 1),     # x/s = 0.5: exact half point rounds up, floor(1.0) = 1
    (0.5, 1),      # x/s = 1: floor(1.5) = 1
    (0.625, 1),    # x/s = 1.25: floor(1.75) = 1
    (0.75, 2),     # x/s = 1.5: half point, floor(2.0) = 2
    (1.25, 3),     # x/s = 2.5: half point, floor(3.0) = 3
    (1.5, 3),      # x/s = 3: floor(3.5) = 3
    (1.625, 3),    # x/s = 3.25: floor(3.75) = 3
    (1.75, 4),     # x/s = 3.5: half point reaches L = 4
    (2.0, 4),      # x/s = 4: floor(4.5) = 4
    (2.25, 4),     # x/s = 4.5: floor(5.0) = 5 -> clipped to 4
    (10.0, 4),     # far above: clipped to L
]


def _hand_x_counts():
    x = torch.tensor([v for v, _ in HAND_COUNTS], dtype=torch.float32)
    c = torch.tensor([n for _, n in HAND_COUNTS], dtype=torch.float32)
    return x, c


def _quantizer() -> QCFS:
    q = QCFS(LEVELS, init_lambda=CLIP)
    assert q.step.item() == STEP
    return q


# ----------------------------------------------------------------------------- QCFS forward

def test_qcfs_count_matches_hand_values():
    x, expected = _hand_x_counts()
    assert torch.equal(qcfs_count(x, STEP, LEVELS), expected)


def test_qcfs_forward_is_step_times_count():
    x, counts = _hand_x_counts()
    y = _quantizer()(x)
    assert torch.equal(y, counts * STEP)


def test_qcfs_values_on_random_inputs_match_naive_formula():
    torch.manual_seed(1)
    levels, lam = 7, 1.3
    x = torch.randn(2000) * 1.5
    q = QCFS(levels, init_lambda=lam)
    s = lam / levels
    naive = np.clip(np.floor(x.double().numpy() / s + 0.5), 0, levels) * s
    y = q(x).detach().double().numpy()
    # float32 vs float64 may put a handful of inputs that sit on a rounding edge one level apart
    off = np.abs(y - naive) > 1e-5
    assert off.sum() <= 2
    assert np.all(np.abs(y - naive)[off] <= s + 1e-5)
    # the output only ever takes the values s * {0, ..., L}
    assert np.allclose(np.round(y / s), y / s, atol=1e-4)
    assert y.min() >= 0 and y.max() <= lam + 1e-6


def test_qcfs_disabled_is_relu():
    x, _ = _hand_x_counts()
    x = torch.cat([x, torch.randn(100)])
    q = _quantizer()
    q.enabled = False
    assert torch.equal(q(x), torch.relu(x))


def test_qcfs_histogram_accumulates_counts():
    x, counts = _hand_x_counts()
    q = _quantizer()
    assert q.histogram is None  # off by default (training)
    q.histogram = torch.zeros(LEVELS + 1, dtype=torch.int64)
    q(x)
    q(x[:3])
    expected = [0] * (LEVELS + 1)
    for c in counts.tolist() + counts[:3].tolist():
        expected[int(c)] += 1
    assert q.histogram.tolist() == expected
    assert int(q.histogram.sum()) == x.numel() + 3


def test_qcfs_negative_clip_uses_its_magnitude():
    x, counts = _hand_x_counts()
    q = QCFS(LEVELS, init_lambda=-CLIP)
    assert torch.equal(q(x), counts * STEP)


# ----------------------------------------------------------------------------- QCFS backward

def _region(x: float) -> str:
    """The documented straight-through regions: inside is 0 <= x/s and x/s + 1/2 < L."""
    scaled = x / STEP
    if scaled + 0.5 >= LEVELS:
        return "above"
    if scaled >= 0:
        return "inside"
    return "below"


def test_qcfs_regions_cover_all_cases():
    regions = {_region(v) for v, _ in HAND_COUNTS}
    assert regions == {"below", "inside", "above"}


@pytest.mark.parametrize("x_value, count", HAND_COUNTS)
def test_qcfs_straight_through_gradients(x_value, count):
    x = torch.tensor([x_value], requires_grad=True)
    step = torch.tensor([STEP], requires_grad=True)
    y = _QCFSFunction.apply(x, step, LEVELS)
    assert y.item() == count * STEP
    y.sum().backward()
    region = _region(x_value)
    expected_dx = 1.0 if region == "inside" else 0.0
    expected_ds = {"inside": count - x_value / STEP, "above": float(LEVELS), "below": 0.0}[region]
    assert x.grad.item() == expected_dx
    assert step.grad.shape == step.shape
    assert step.grad.item() == pytest.approx(expected_ds, abs=1e-6)


def test_qcfs_gradients_for_a_whole_tensor_with_upstream_weights():
    x_vals, counts = _hand_x_counts()
    x = x_vals.clone().requires_grad_(True)
    step = torch.tensor([STEP], requires_grad=True)
    g = torch.linspace(0.5, 2.0, x.numel())  # non-uniform upstream gradient
    (_QCFSFunction.apply(x, step, LEVELS) * g).sum().backward()
    exp_dx, exp_ds = [], 0.0
    for (v, c), gi in zip(HAND_COUNTS, g.tolist()):
        r = _region(v)
        exp_dx.append(gi if r == "inside" else 0.0)
        exp_ds += gi * {"inside": c - v / STEP, "above": LEVELS, "below": 0.0}[r]
    assert torch.allclose(x.grad, torch.tensor(exp_dx))
    assert step.grad.item() == pytest.approx(exp_ds, rel=1e-5)


def test_qcfs_module_gradient_reaches_the_clip():
    # step = clip / L, so d loss / d clip = (d loss / d step) / L.
    x_vals, counts = _hand_x_counts()
    q = _quantizer()
    x = x_vals.clone().requires_grad_(True)
    q(x).sum().backward()
    exp_ds = sum({"inside": c - v / STEP, "above": LEVELS, "below": 0.0}[_region(v)] for v, c in HAND_COUNTS)
    assert q.clip.grad.item() == pytest.approx(exp_ds / LEVELS, rel=1e-5)
    assert torch.equal(x.grad, torch.tensor([1.0 if _region(v) == "inside" else 0.0 for v, _ in HAND_COUNTS]))


def test_qcfs_step_gradient_matches_finite_difference_where_output_is_smooth_in_step():
    # Above the range the output is L * s and below it is 0: the estimator is the true derivative there.
    x = torch.tensor([-1.0, 5.0, 9.0])
    step = torch.tensor([STEP], requires_grad=True)
    _QCFSFunction.apply(x, step, LEVELS).sum().backward()
    eps = 1e-3
    f = lambda s: float(qcfs_count(x, s, LEVELS).mul(s).sum())  # noqa: E731
    fd = (f(STEP + eps) - f(STEP - eps)) / (2 * eps)
    assert step.grad.item() == pytest.approx(fd, rel=1e-4)
    assert step.grad.item() == pytest.approx(2 * LEVELS)


# ----------------------------------------------------------------------------- weight fake quantization

def _random_weight(shape=(5, 3, 3, 3), seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    # give the channels very different ranges so per-channel scales matter
    return w * torch.logspace(-2, 1, shape[0]).reshape([-1] + [1] * (len(shape) - 1))


def test_weight_scale_per_channel_is_max_abs_over_127():
    w = _random_weight()
    wn = w.numpy().reshape(w.shape[0], -1)
    expected = np.abs(wn).max(axis=1) / 127.0
    sigma = weight_scale(w, per_channel=True)
    assert sigma.shape == (w.shape[0], 1, 1, 1)
    assert np.allclose(sigma.flatten().numpy(), expected, rtol=1e-6)


def test_quantize_weight_codes_range_and_reconstruction():
    w = _random_weight()
    codes, sigma = quantize_weight(w, per_channel=True)
    assert codes.dtype == torch.int8
    assert codes.shape == w.shape
    c = codes.to(torch.int32)
    assert int(c.min()) >= -127 and int(c.max()) <= 127
    # the largest |w| of every channel lands on +-127
    flat_w, flat_c = w.reshape(w.shape[0], -1), c.reshape(w.shape[0], -1)
    arg = flat_w.abs().argmax(dim=1)
    for ch in range(w.shape[0]):
        assert abs(int(flat_c[ch, arg[ch]])) == 127
        assert int(flat_c[ch, arg[ch]]) * float(flat_w[ch, arg[ch]]) > 0  # same sign
    # reconstruction error at most half a step per element
    err = (c.float() * sigma - w).abs()
    assert bool((err <= sigma / 2 * (1 + 1e-5)).all())


def test_fake_quant_matches_codes_times_scale():
    w = _random_weight(seed=3)
    codes, sigma = quantize_weight(w)
    assert torch.allclose(fake_quant_weight(w), codes.float() * sigma, rtol=0, atol=1e-7)


def test_fake_quant_is_idempotent():
    w = _random_weight(seed=4)
    once = fake_quant_weight(w)
    assert torch.allclose(fake_quant_weight(once), once, rtol=1e-6, atol=0)


def test_round_half_to_even():
    # channel max 127 -> sigma = 1 exactly, so w / sigma is exactly the value below
    w = torch.tensor([[127.0, 0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 126.5, -126.5]])
    codes, sigma = quantize_weight(w)
    assert sigma.item() == 1.0
    assert codes.tolist() == [[127, 0, 2, 2, 4, 0, -2, -2, 126, -126]]
    assert fake_quant_weight(w).tolist() == [[127.0, 0.0, 2.0, 2.0, 4.0, 0.0, -2.0, -2.0, 126.0, -126.0]]


def test_per_tensor_scale():
    w = _random_weight(shape=(4, 6), seed=5)
    sigma = weight_scale(w, per_channel=False)
    assert sigma.dim() == 0
    assert sigma.item() == pytest.approx(float(w.abs().max()) / 127.0, rel=1e-6)
    codes, _ = quantize_weight(w, per_channel=False)
    # only the globally largest weight reaches 127; the small-range first row uses few codes
    assert int(codes.to(torch.int32).abs().max()) == 127
    assert int(codes[0].to(torch.int32).abs().max()) < 127
    expected = torch.clamp(torch.round(w / sigma), -127, 127) * sigma
    assert torch.allclose(fake_quant_weight(w, per_channel=False), expected, atol=1e-7)


def test_zero_channel_does_not_divide_by_zero():
    w = _random_weight(shape=(3, 4), seed=6)
    w[1] = 0.0
    sigma = weight_scale(w)
    assert bool(torch.isfinite(sigma).all()) and bool((sigma > 0).all())
    codes, _ = quantize_weight(w)
    assert codes[1].tolist() == [0, 0, 0, 0]
    fq = fake_quant_weight(w)
    assert bool(torch.isfinite(fq).all())
    assert fq[1].tolist() == [0.0, 0.0, 0.0, 0.0]
    # the other channels are quantized as if the zero channel were not there
    assert torch.equal(fq[[0, 2]], fake_quant_weight(w[[0, 2]]))
    # an all-zero tensor, per tensor
    z = torch.zeros(2, 3, requires_grad=True)
    fz = fake_quant_weight(z, per_channel=False)
    assert torch.equal(fz, torch.zeros(2, 3))
    fz.sum().backward()
    assert bool(torch.isfinite(z.grad).all())


@pytest.mark.parametrize("per_channel", [True, False])
def test_fake_quant_straight_through_gradient(per_channel):
    w = _random_weight(seed=7).requires_grad_(True)
    upstream = torch.randn(w.shape, generator=torch.Generator().manual_seed(8))
    (fake_quant_weight(w, per_channel=per_channel) * upstream).sum().backward()
    assert torch.allclose(w.grad, upstream, rtol=1e-5, atol=1e-6)


def test_int8_max_constant():
    assert INT8_MAX == 127 == 2 ** 7 - 1
    assert math.isclose(float(weight_scale(torch.tensor([[-254.0, 1.0]]))), 2.0)
