"""CSDformer model pieces: NReLU attention, BN folding, configuration, phases (csdformer.model)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_MODEL, calibrate_clips, randomize
from csdformer.model import (Attention, ConvBN, CSDformer, LinearBN, ModelConfig, Stage, fold_bn, max_pool,
                             nrelu, pooled_size)
from csdformer.quant import QCFS


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_bn(bn, seed: int) -> None:
    g = _gen(seed)
    n = bn.num_features
    with torch.no_grad():
        bn.weight.copy_(torch.randn(n, generator=g))  # negative gammas too
        bn.bias.copy_(torch.randn(n, generator=g))
        bn.running_mean.copy_(torch.randn(n, generator=g))
        bn.running_var.copy_(0.1 + 2 * torch.rand(n, generator=g))


def _naive_bn_eval(y: torch.Tensor, bn) -> torch.Tensor:
    """Eval-mode BN over the last dim (y: [..., C])."""
    return (y - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def _naive_bn_train(y: torch.Tensor, bn) -> torch.Tensor:
    """Training-mode BN over the last dim with the biased batch variance (statistics over every other dim)."""
    rows = y.reshape(-1, y.shape[-1])
    mean = rows.mean(dim=0)
    var = ((rows - mean) ** 2).mean(dim=0)
    return (y - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias


# ----------------------------------------------------------------------------- NReLU attention

def test_nrelu_is_relu_over_tokens():
    x = torch.randn(2, 3, 5, 5, generator=_gen(0))
    for n in (1, 7, 49):
        out = nrelu(x, n)
        assert torch.allclose(out, torch.relu(x) / n)
        assert bool((out[x <= 0] == 0).all())
        assert torch.allclose(out[x > 0] * n, x[x > 0])


def _attention_config(heads: int = 2) -> ModelConfig:
    # 12x12 -> pool 2 -> 6x6: 36 tokens of width 8
    return ModelConfig(image_size=(12, 12), stages=[Stage(4), Stage(8, 2)], heads=heads, depth=1, levels=3,
                       time_steps=4)


def test_attention_output_shape():
    cfg = _attention_config()
    attn = Attention(cfg)
    x = torch.randn(3, cfg.tokens, cfg.embed_dim, generator=_gen(1))
    assert attn(x).shape == (3, 36, 8)
    attn.eval()
    assert attn(x).shape == (3, 36, 8)


def _naive_attention(attn: Attention, x: torch.Tensor, bn) -> torch.Tensor:
    """Float-phase attention written out: every quantizer is a ReLU."""
    b, n, d = x.shape
    h = attn.heads
    hd = d // h
    u = torch.relu(x)

    def lin_bn(mod, inp):
        return bn(inp @ mod.weight.t(), mod.bn)

    def heads(t):  # [B, N, D] -> [B, h, N, hd]
        return t.reshape(b, n, h, hd).permute(0, 2, 1, 3)

    q = heads(torch.relu(lin_bn(attn.q, u)))
    k = heads(torch.relu(lin_bn(attn.k, u)))
    v = heads(torch.relu(lin_bn(attn.v, u)))
    out = torch.zeros(b, h, n, hd)
    for bi in range(b):
        for hi in range(h):
            scores = q[bi, hi] @ k[bi, hi].t() / math.sqrt(hd)
            a = torch.relu(torch.relu(scores) / n)  # NReLU, then the (ReLU) A quantizer
            out[bi, hi] = torch.relu(a @ v[bi, hi])  # the (ReLU) O quantizer
    concat = out.permute(0, 2, 1, 3).reshape(b, n, d)
    return lin_bn(attn.proj, concat)


@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("training", [False, True])
def test_attention_float_phase_matches_naive(heads, training):
    cfg = _attention_config(heads)
    torch.manual_seed(2)
    attn = Attention(cfg)
    for i, m in enumerate((attn.q, attn.k, attn.v, attn.proj)):
        _random_bn(m.bn, 10 + i)
        with torch.no_grad():
            m.bn.weight.abs_()  # keep most q, k, v positive so the scores are not all zero
    qs = [m for m in attn.modules() if isinstance(m, QCFS)]
    assert len(qs) == 6
    for q in qs:
        q.enabled = False
    attn.train(training)
    x = torch.randn(2, cfg.tokens, cfg.embed_dim, generator=_gen(3)) + 0.5
    got = attn(x)
    expected = _naive_attention(attn, x, _naive_bn_train if training else _naive_bn_eval)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)
    assert float(expected.detach().abs().max()) > 1e-3  # the comparison is not trivially between zeros


# ----------------------------------------------------------------------------- BN folding

def test_fold_bn_formula():
    conv = ConvBN(3, 5, eps=1e-3)
    _random_bn(conv.bn, 0)
    with torch.no_grad():
        w, b = fold_bn(conv.weight, conv.bn)
    bn = conv.bn
    gamma, beta = bn.weight.detach(), bn.bias.detach()
    for c in range(5):
        scale = float(gamma[c]) / math.sqrt(float(bn.running_var[c]) + 1e-3)
        assert torch.allclose(w[c], conv.weight.detach()[c] * scale, rtol=1e-5, atol=1e-7)
        assert float(b[c]) == pytest.approx(float(beta[c]) - float(bn.running_mean[c]) * scale, rel=1e-5,
                                            abs=1e-6)


def test_convbn_eval_equals_folded_conv():
    torch.manual_seed(4)
    m = ConvBN(3, 6, eps=1e-5)
    _random_bn(m.bn, 5)
    m.eval()
    x = torch.randn(2, 3, 9, 7, generator=_gen(6))
    w, b = fold_bn(m.weight, m.bn)
    with torch.no_grad():
        assert torch.allclose(m(x), F.conv2d(x, w, b, padding=1), atol=1e-5)


def test_linearbn_eval_equals_folded_linear():
    torch.manual_seed(7)
    m = LinearBN(8, 5, eps=1e-5)
    _random_bn(m.bn, 8)
    m.eval()
    x = torch.randn(3, 11, 8, generator=_gen(9))
    w, b = fold_bn(m.weight, m.bn)
    with torch.no_grad():
        out = m(x)
        assert out.shape == (3, 11, 5)
        assert torch.allclose(out, F.linear(x, w, b), atol=1e-5)


def _naive_folded_fake_quant(weight: torch.Tensor, bn) -> tuple[torch.Tensor, torch.Tensor]:
    """W' = W * gamma / sqrt(var + eps); per-output-channel int8 grid with sigma = max|W'| / 127."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shape = [-1] + [1] * (weight.dim() - 1)
    wf = weight * scale.reshape(shape)
    bias = bn.bias - bn.running_mean * scale
    sigma = wf.abs().reshape(wf.shape[0], -1).max(dim=1).values.reshape(shape) / 127
    codes = torch.clamp(torch.round(wf / sigma), -127, 127)
    return codes * sigma, bias


def test_convbn_qat_uses_fake_quantized_folded_weight():
    torch.manual_seed(10)
    m = ConvBN(4, 6, eps=1e-5)
    _random_bn(m.bn, 11)
    m.folded = True
    m.train()  # folding ignores the BN mode: running statistics are always used
    x = torch.randn(2, 4, 8, 8, generator=_gen(12))
    with torch.no_grad():
        wq, b = _naive_folded_fake_quant(m.weight, m.bn)
        assert torch.allclose(m(x), F.conv2d(x, wq, b, padding=1), atol=1e-5)
        # the folded weight really is on the int8 grid (not just the float fold)
        w_float, _ = fold_bn(m.weight, m.bn)
        assert not torch.allclose(wq, w_float, atol=1e-6)


def test_linearbn_qat_uses_fake_quantized_folded_weight():
    torch.manual_seed(13)
    m = LinearBN(8, 5, eps=1e-5)
    _random_bn(m.bn, 14)
    m.folded = True
    x = torch.randn(2, 6, 8, generator=_gen(15))
    before = m.bn.running_mean.clone()
    with torch.no_grad():
        wq, b = _naive_folded_fake_quant(m.weight, m.bn)
        assert torch.allclose(m(x), F.linear(x, wq, b), atol=1e-5)
    assert torch.equal(m.bn.running_mean, before)


# ----------------------------------------------------------------------------- configuration

@pytest.mark.parametrize("changes, message", [
    ({"stages": [{"channels": 4, "pool": 2}, {"channels": 8, "pool": 2}]}, "cannot pool"),
    ({"stages": [{"channels": 4, "pool": 0}, {"channels": 6, "pool": 2}], "heads": 4}, "not divisible by heads"),
    ({"levels": 5, "time_steps": 4}, "levels"),
    ({"levels": 0}, "levels"),
    ({"levels": 8, "time_steps": 17}, "time_steps"),
    ({"stages": [{"channels": 4, "pool": 0}, {"channels": 8, "pool": 4}]}, "pool must be 0, 2 or 3"),
    ({"stages": [{"channels": 4, "pool": 0}, {"channels": 8, "pool": 1}]}, "pool must be 0, 2 or 3"),
    ({"stages": []}, "at least one"),
    ({"stages": [{"channels": 0}]}, "channels"),
    ({"image_size": [2, 2], "stages": [{"channels": 4}, {"channels": 8, "pool": 2}, {"channels": 8, "pool": 2}]},
     "no tokens"),
])
def test_config_validation_errors(changes, message):
    d = dict(TINY_MODEL)
    d.update(changes)
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_dict(d)


def test_config_unknown_key():
    d = dict(TINY_MODEL, dropout=0.1)
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig.from_dict(d)


def test_config_round_trips_through_dict():
    cfg = ModelConfig.from_dict(dict(TINY_MODEL))
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert again.stages[1] == Stage(8, 2)
    assert again.image_size == (28, 28)


@pytest.mark.parametrize("image, pools, grid", [
    # worked by hand: pool 2 halves (floor); pool 3 (k3, s2, p1) gives floor((n - 1) / 2) + 1
    ((28, 28), (2, 2), (7, 7)),
    ((28, 28), (2, 3), (7, 7)),     # 28 -> 14 -> 7
    ((28, 28), (3, 3), (7, 7)),     # 28 -> 14 -> 7
    ((27, 27), (2, 2), (6, 6)),     # 27 -> 13 -> 6
    ((27, 27), (3, 3), (7, 7)),     # 27 -> 14 -> 7
    ((32, 30), (3, 2), (8, 7)),     # 32 -> 16 -> 8, 30 -> 15 -> 7
    ((15, 15), (3, 0), (8, 8)),
])
def test_token_count_for_pools(image, pools, grid):
    stages = [{"channels": 4, "pool": 0}] + [{"channels": 8, "pool": p} for p in pools]
    cfg = ModelConfig(image_size=image, stages=stages, heads=2, depth=1, levels=3, time_steps=4)
    assert cfg.token_grid == grid
    assert cfg.tokens == grid[0] * grid[1]
    # the real tensors agree
    model = CSDformer(cfg).eval()
    seen = {}

    def hook(mod, args):
        seen["x"] = args[0].shape

    model.blocks[0].register_forward_pre_hook(hook)
    with torch.no_grad():
        logits = model(torch.rand(2, 1, *image))
    assert seen["x"] == (2, grid[0] * grid[1], 8)
    assert model.pos_embed.shape == (cfg.tokens, 8)
    assert logits.shape == (2, 10)


def test_pooled_size_matches_torch_max_pool():
    for n in range(1, 20):
        x = torch.rand(1, 1, n, n)
        for pool in (0, 2, 3):
            if pool == 2 and n < 2:
                continue
            assert max_pool(x, pool).shape[-1] == pooled_size(n, pool)


def test_max_pool3_zero_padding_equivalence_on_counts():
    # counts are >= 0: -inf padding (torch) equals the runtime's zero padding
    x = torch.randint(0, 5, (2, 3, 7, 7)).float()
    padded = F.pad(x, (1, 1, 1, 1), value=0.0)
    assert torch.equal(max_pool(x, 3), F.max_pool2d(padded, 3, 2))


# ----------------------------------------------------------------------------- phases

def test_set_phase_rejects_unknown_phase(tiny_model_config):
    model = CSDformer(tiny_model_config)
    with pytest.raises(ValueError):
        model.set_phase("int8")


def test_phase_switches_quantizers_folding_and_head(tiny_model_config):
    model = CSDformer(tiny_model_config)
    assert model.phase == "float"
    assert all(not q.enabled for _, q in model.quantizers())
    assert all(not f.folded for _, f in model.foldables())
    assert model.head.quantize is False
    model.set_phase("qat")
    assert all(q.enabled for _, q in model.quantizers())
    assert all(f.folded for _, f in model.foldables())
    assert model.head.quantize is True


def test_module_counts(tiny_model_config):
    cfg = tiny_model_config
    model = CSDformer(cfg)
    # quantizers: one per tokenizer stage after the first, 6 per attention, 2 per MLP, 1 in the head
    assert len(model.quantizers()) == (len(cfg.stages) - 1) + cfg.depth * (6 + 2) + 1
    # conv/linear + BN: one per stage, q/k/v/proj per attention, fc1/fc2 per MLP
    assert len(model.foldables()) == len(cfg.stages) + cfg.depth * (4 + 2)


def test_qat_phase_keeps_bn_in_eval_after_train(tiny_model_config):
    torch.manual_seed(20)
    model = CSDformer(tiny_model_config)
    randomize(model, 21)
    x = torch.rand(4, 1, 28, 28, generator=_gen(22))
    calibrate_clips(model, x)
    model.set_phase("qat")
    model.train()
    assert model.training
    assert all(not f.bn.training for _, f in model.foldables())
    assert all(q.training for _, q in model.quantizers())  # the rest stays in training mode
    stats = {n: (f.bn.running_mean.clone(), f.bn.running_var.clone()) for n, f in model.foldables()}
    loss = model(x).square().sum()
    loss.backward()
    for n, f in model.foldables():
        assert torch.equal(f.bn.running_mean, stats[n][0]), n
        assert torch.equal(f.bn.running_var, stats[n][1]), n
    # folded BN parameters, weights and every quantizer clip still learn
    for n, f in model.foldables():
        assert f.bn.weight.grad is not None and float(f.bn.weight.grad.abs().sum()) > 0, n
        assert float(f.weight.grad.abs().sum()) > 0, n
    for n, q in model.quantizers():
        assert float(q.clip.grad.abs().sum()) > 0, n
    # and going back to float with train() lets BN train again
    model.set_phase("float")
    model.train()
    assert all(f.bn.training for _, f in model.foldables())


def test_float_phase_quantizers_are_relu(tiny_model_config):
    torch.manual_seed(23)
    model = CSDformer(tiny_model_config).eval()
    randomize(model, 24)
    calls = []

    def hook(mod, args, out):
        calls.append(torch.equal(out, torch.relu(args[0])))

    for _, q in model.quantizers():
        q.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.rand(2, 1, 28, 28, generator=_gen(25)))
    assert len(calls) == len(model.quantizers()) and all(calls)


@pytest.mark.parametrize("training", [False, True])
def test_qat_quantizer_outputs_are_integer_counts(tiny_model_config, training):
    torch.manual_seed(26)
    model = CSDformer(tiny_model_config)
    randomize(model, 27)
    x = torch.rand(3, 1, 28, 28, generator=_gen(28))
    calibrate_clips(model, x)
    model.set_phase("qat")
    model.train(training)
    L = tiny_model_config.levels
    records = []

    def hook(mod, args, out):
        step = float(mod.clip.detach().abs()) / mod.levels
        ratio = out.detach() / step
        counts = torch.round(ratio)
        naive = torch.clamp(torch.floor(args[0].detach() / step + 0.5), 0, mod.levels)
        records.append((ratio, counts, naive))

    names = []
    for name, q in model.quantizers():
        q.register_forward_hook(hook)
        names.append(name)
    out = model(x)
    assert out.shape == (3, 10)
    assert len(records) == len(names)
    for name, (ratio, counts, naive) in zip(names, records):
        assert torch.allclose(ratio, counts, atol=1e-4), name
        assert float(counts.min()) >= 0 and float(counts.max()) <= L, name
        assert torch.equal(counts, naive), name
        # not degenerate: every quantizer emits some non-zero counts
        assert float(counts.max()) >= 1, name
