"""The direct-training baseline (csdformer.direct, csdformer.train_direct): the spiking model's forward and
backward at T steps, its neurons' places, a one-step training run with resume, and two-process DDP on CPU."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_LIMIT_TEST as LIMIT_TEST, needs_fashion_mnist, read_metrics as _metrics
from conftest import tiny_run_args as _args, torchrun, train_once, write_config
from csdformer import data as datasets
from csdformer import train, train_direct
from csdformer.direct import DirectCSDformer, conversion_name
from csdformer.model import CSDformer, ModelConfig



def _images(batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 1, 28, 28), generator=g, dtype=torch.uint8).float() / 255.0


# ----------------------------------------------------------------------------- the model

def test_forward_shapes_at_t_steps(tiny_model_config):
    torch.manual_seed(0)
    model = DirectCSDformer(tiny_model_config)
    x = _images(3)
    steps = model.forward_steps(x)
    assert steps.shape == (tiny_model_config.time_steps, 3, tiny_model_config.num_classes)
    logits = model(x)
    assert logits.shape == (3, tiny_model_config.num_classes)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), model.forward_steps(x).mean(0))


def test_every_hidden_neuron_emits_spikes_with_a_leading_time_axis(tiny_model_config):
    torch.manual_seed(0)
    model = DirectCSDformer(tiny_model_config)
    outputs = {}
    for name, n in model.neurons():
        n.register_forward_hook(lambda mod, args, out, name=name: outputs.__setitem__(name, (args[0].shape, out)))
    model(_images(2))
    assert set(outputs) == {name for name, _ in model.neurons()}
    t = tiny_model_config.time_steps
    for name, (in_shape, out) in outputs.items():
        assert out.shape == in_shape and out.shape[:2] == (t, 2), name
        assert set(out.unique().tolist()) <= {0.0, 1.0}, name  # spikes
    heads, tokens = tiny_model_config.heads, tiny_model_config.tokens
    assert outputs["blocks.0.attn.a_neuron"][1].shape == (t, 2, heads, tokens, tokens)


def test_neurons_stand_where_the_conversion_model_has_quantizers(tiny_model_config):
    direct = DirectCSDformer(tiny_model_config)
    conversion = CSDformer(tiny_model_config)
    assert sorted(conversion_name(n) for n, _ in direct.neurons()) == sorted(n for n, _ in conversion.quantizers())
    for _, n in direct.neurons():
        assert n.step_mode == "m" and n.tau == 2.0 and n.v_threshold == 1.0 and n.v_reset == 0.0
        assert type(n.surrogate_function).__name__ == "ATan"
    # the same weights and BatchNorms; the clips become two attention gains per block
    d_params = {n: p.shape for n, p in direct.named_parameters()}
    c_params = {n: p.shape for n, p in conversion.named_parameters() if not n.endswith(".clip")}
    assert {k: v for k, v in d_params.items() if not k.endswith("_gain")} == c_params
    assert sorted(k for k in d_params if k.endswith("_gain")) == ["blocks.0.attn.a_gain", "blocks.0.attn.o_gain"]


def test_gradients_reach_the_first_conv_through_the_surrogate(tiny_model_config):
    torch.manual_seed(0)
    model = DirectCSDformer(tiny_model_config)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(_images(4)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    first = model.tokenizer[0].conv.weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0
    # every path from the loss to the first conv crosses at least one neuron (the spikes' surrogate)
    for name in ("blocks.0.attn.a_gain", "blocks.0.attn.o_gain", "blocks.0.attn.q.weight", "pos_embed"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_without_the_surrogate_no_gradient_reaches_the_first_conv(tiny_model_config):
    # the control: with a Heaviside whose backward is 0 the first conv gets nothing (so the gradient above
    # came through the surrogate, not a path around the neurons)
    class NoGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return (x >= 0).to(x.dtype)

        @staticmethod
        def backward(ctx, g):
            return torch.zeros_like(g)

    class Heaviside(torch.nn.Module):
        def forward(self, x):
            return NoGrad.apply(x)

    torch.manual_seed(0)
    model = DirectCSDformer(tiny_model_config)
    for _, n in model.neurons():
        n.surrogate_function = Heaviside()
    model(_images(4)).sum().backward()
    grad = model.tokenizer[0].conv.weight.grad
    assert grad is None or grad.abs().sum() == 0


def test_each_forward_starts_from_reset_neurons(tiny_model_config):
    torch.manual_seed(0)
    model = DirectCSDformer(tiny_model_config).eval()
    x = _images(2, seed=1)
    with torch.no_grad():
        first = model(x)
        model(_images(2, seed=2))
        assert torch.equal(model(x), first)


def test_param_groups_decay_conv_and_linear_weights_only(tiny_model_config):
    model = DirectCSDformer(tiny_model_config)
    decay, no_decay, *clips = train.param_groups(model, 0.05, 1e-3)
    assert clips == []
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = sorted(names[id(p)] for p in decay["params"])
    assert all(n.endswith("weight") and ".bn." not in n for n in decayed)
    assert "pos_embed" not in decayed and not any(n.endswith("_gain") for n in decayed)
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


# ----------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def trained_direct(tmp_path_factory):
    return train_once(tmp_path_factory, "direct", train_direct.main)


@needs_fashion_mnist
def test_direct_training_writes_metrics_and_weights(trained_direct):
    out = trained_direct["out"]
    m = _metrics(out)
    assert m["route"] == "direct" and m["world_size"] == 1
    assert m["time_steps"] == 4 and m["test_images"] == LIMIT_TEST
    assert 0.0 <= m["test_accuracy"] <= 1.0
    assert m["epochs"] == {"direct": 1, "direct-low-lr": 1, "total": 2}
    assert [(h["epoch"], h["phase"]) for h in m["history"]] == [(1, "direct"), (2, "direct-low-lr")]
    for h in m["history"]:
        assert h["step_seconds"] >= 0 and h["eval_seconds"] >= 0
        assert h["seconds"] == pytest.approx(h["step_seconds"] + h["eval_seconds"])
    assert m["command"].startswith("python -m csdformer.train_direct ")
    assert m["neuron"]["surrogate"].startswith("ATan")
    # the stored weights rebuild a model whose accuracy is the reported one
    model = DirectCSDformer(ModelConfig.from_dict(json.load(open(trained_direct["config"]))["model"]))
    model.load_state_dict(load_file(os.path.join(out, train_direct.WEIGHTS_FILE)))
    test = datasets.load("fashion-mnist", "test").subset(LIMIT_TEST)
    model.eval()
    with torch.no_grad():
        acc = float((model(datasets.to_model_input(test.images)).argmax(1) == test.labels).float().mean())
    assert m["test_accuracy"] == pytest.approx(acc)


@needs_fashion_mnist
def test_direct_schedule_is_the_conversion_schedule(trained_direct):
    # one step per stretch: the first at train.lr with the float phase's warm-up, the second at train.qat_lr
    # without one, each a cosine over its own steps (the conversion route's float and QAT phases)
    m = _metrics(trained_direct["out"])
    cfg = train.load_config(trained_direct["config"])["train"]
    expected = [cfg["lr"] * train.cosine_lambda(1, cfg["warmup_epochs"])(1),
                cfg["qat_lr"] * train.cosine_lambda(1, 0)(1)]
    assert [h["lr"] for h in m["history"]] == pytest.approx(expected)


@needs_fashion_mnist
def test_direct_rerun_resumes_and_refuses_a_conversion_checkpoint(trained_direct, tmp_path, capsys, clean_dist_env):
    args = list(trained_direct["args"])
    capsys.readouterr()
    assert train_direct.main(args) == 0
    log = capsys.readouterr().out
    assert "resuming from" in log and "after epoch 2/2" in log and "loss" not in log.split("resuming")[1]
    # a conversion run in the same folder: its checkpoint is the direct route's, which it must not load
    with pytest.raises(SystemExit) as e:
        train.main(args)
    assert "direct route" in str(e.value.code)


@needs_fashion_mnist
def test_two_process_ddp_direct(tmp_path):
    config = write_config(tmp_path)
    out = str(tmp_path / "out")
    proc = torchrun("csdformer.train_direct", _args(config, out), tmp_path)
    m = _metrics(out)
    assert m["world_size"] == 2
    assert "world size 2" in proc.stdout
    assert [(h["epoch"], h["phase"]) for h in m["history"]] == [(1, "direct"), (2, "direct-low-lr")]
    # rank 0's final accuracy: the stored weights on the test subset
    cfg = json.load(open(config))
    model = DirectCSDformer(ModelConfig.from_dict(cfg["model"]))
    model.load_state_dict(load_file(os.path.join(out, train_direct.WEIGHTS_FILE)))
    model.eval()
    test = datasets.load("fashion-mnist", "test").subset(LIMIT_TEST)
    with torch.no_grad():
        acc = float((model(datasets.to_model_input(test.images)).argmax(1) == test.labels).float().mean())
    assert m["test_accuracy"] == pytest.approx(acc)
