"""The peer engines of make bench-peers: the fake-quant model in ONNX Runtime (csdformer.onnxpeer),
the converted network simulated step by step in SpikingJelly (csdformer.snnsim), and a tiny
benchpeers run (its last line's format; no wall-clock assertions).

The reference model is packed here with the csdpack binary (CSDPACK, as `make test` sets it).
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch

from conftest import CSDPACK, missing, needs_csdpack, needs_fashion_mnist, pack_reference
from conftest import REFERENCE_EXPORT as EXPORT

from csdformer import data as datasets
from csdformer import reference as ref
from csdformer.export import load_export


pytestmark = [needs_fashion_mnist]


@pytest.fixture(scope="module")
def packed_path(tmp_path_factory) -> str:
    if not ("CSDPACK" in os.environ or os.access(CSDPACK, os.X_OK)):
        missing(f"csdpack binary missing at {CSDPACK} (build it with `swift build`; `make test` sets CSDPACK)")
    return pack_reference(str(tmp_path_factory.mktemp("csd") / "fmnist_tiny.csd"))


@pytest.fixture(scope="module")
def test_pixels() -> torch.Tensor:
    return datasets.load("fashion-mnist", "test").images[:256]


# ---------------------------------------------------------------------------------------------
# ONNX Runtime


def test_onnx_export_runs_in_onnxruntime_with_the_fake_quant_predictions(tmp_path, test_pixels):
    """256 test images: every prediction equal; logits equal to float rounding except where a
    quantizer's floor lands on the other side of a boundary. On all 10,000 test images that
    happened on 31 (0.3%; largest logit difference 0.13, every prediction equal): ONNX Runtime's
    and PyTorch's conv and matmul kernels sum in different orders, and a QCFS input within a float32
    rounding of a count boundary (x / s + 1/2 an integer) floors to the neighbouring count. On these
    256 images it happens on one (difference 0.013, at batch 1 and 64); the bound allows 3 (1.2%)."""
    import onnx

    from csdformer import onnxpeer

    model = load_export(EXPORT)
    path = str(tmp_path / "model.onnx")
    onnxpeer.export_onnx(model, path, (1, 28, 28))
    graph = onnx.load(path).graph
    assert {node.domain for node in graph.node} <= {"", "ai.onnx"}, "only standard ONNX operators"
    assert {"Floor", "Clip", "Round", "Conv", "MaxPool"} <= {node.op_type for node in graph.node}
    with torch.no_grad():
        expected = model(datasets.to_model_input(test_pixels)).numpy()
    for threads, batch in ((1, 1), (2, 64)):
        got = onnxpeer.run_batches(onnxpeer.session(path, threads), test_pixels.numpy(), batch)
        assert got.shape == expected.shape
        assert (got.argmax(1) == expected.argmax(1)).all()
        off = np.abs(got - expected).max(axis=1) > 1e-4
        assert int(off.sum()) <= 3, f"{int(off.sum())} images with a logit off by more than 1e-4"
        assert np.abs(got - expected)[~off].max() <= 1e-4


# ---------------------------------------------------------------------------------------------
# the SpikingJelly simulation


@pytest.mark.parametrize("delay", [0, 2, 5])
def test_dif_node_single_step_equals_the_reference_neuron(delay):
    """DIFNode stepped one step at a time (T + D steps, zeros after T - 1) against
    reference.fire_dif on random currents with per-neuron thresholds and biases."""
    from spikingjelly.activation_based import functional

    from csdformer.snnsim import DIFNode

    T, L, k = 6, 5, 3
    g = np.random.default_rng(delay)
    cur = g.integers(-40, 90, size=(4, T, 3, 5))  # [B, T, C, X]
    theta = g.integers(50, 200, size=(3, 1))
    beta = g.integers(-60, 60, size=(3, 1))
    expected = ref.fire_dif(cur, k, theta, beta, L, T, delay)  # [B, T, C, X]
    node = DIFNode(torch.from_numpy(theta), torch.from_numpy(beta), L, delay, step_mode="s")
    steps = torch.from_numpy(cur * (1 << k)).to(torch.float64).transpose(0, 1)  # [T, B, C, X]
    steps = torch.cat([steps, torch.zeros((delay,) + steps.shape[1:], dtype=torch.float64)])
    spikes = torch.stack([node(x) for x in steps])[delay:]
    assert np.array_equal(spikes.transpose(0, 1).numpy().astype(np.uint8), expected)
    functional.reset_net(node)  # a fresh run after a reset: multi-step mode, same trains
    node.step_mode = "m"
    assert np.array_equal(node(steps[:T]).transpose(0, 1).numpy().astype(np.uint8), expected)


@pytest.mark.parametrize("shift", [0, 3, 10])
def test_stream_sink_equals_the_reference_writer(shift):
    """StreamSink (the running sum with the bias, rounded down by the stream shift, one step at a time)
    against reference.stream_write_steps on random currents, per-token biases and a reset between runs."""
    from spikingjelly.activation_based import functional

    from csdformer.snnsim import StreamSink

    T = 5
    g = np.random.default_rng(shift)
    cur = g.integers(-3000, 3000, size=(2, T, 4, 6))  # [B, T, N, D]
    bias = g.integers(-5000, 5000, size=(4, 6))
    expected = ref.stream_write_steps(cur, bias, shift)
    sink = StreamSink(torch.from_numpy(bias), shift)
    for _ in range(2):  # the second run after a reset starts from P[-1] = 0 again
        functional.reset_net(sink)
        got = sink(torch.from_numpy(cur).to(torch.float64).transpose(0, 1)).transpose(0, 1)
        assert np.array_equal(got.numpy().astype(np.int64), expected)


@needs_csdpack
def test_simulation_logits_equal_the_spiking_logits(packed_path, test_pixels):
    """The packed reference model simulated in SpikingJelly: logits equal to the NumPy reference's
    spiking logits at D = T and D = 3 (the event path), batched and at batch 1."""
    from csdformer.snnsim import SpikingNetwork, run_batches

    image = ref.Image.load(packed_path)
    pixels = test_pixels[:6]
    for delay in (image.time_steps, 3):
        expected = ref.run_batch(image, pixels.numpy(), mode="spiking", delay=delay)
        net = SpikingNetwork(image, delay=delay)
        assert np.array_equal(run_batches(net, pixels, 3).numpy(), expected)
        assert np.array_equal(net(pixels[:1]).numpy()[0], expected[0])
    with pytest.raises(ValueError):
        SpikingNetwork(image, delay=image.time_steps + 1)


# ---------------------------------------------------------------------------------------------
# make bench-peers


@needs_csdpack
def test_benchpeers_small_run_prints_the_ratio_line(packed_path, capsys):
    from csdformer import benchpeers

    code = benchpeers.main([packed_path, "--export", EXPORT, "--csdpack", CSDPACK, "--limit", "3",
                            "--batches", "1,2", "--probe", "2", "--repeat", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.strip().splitlines()
    assert re.fullmatch(r"bench-peers: images=3 fused_vs_onnxruntime=\d+\.\d\d spiking_vs_simulator=\d+\.\d\d",
                        lines[-1]), lines[-1]
    assert sum("ours: Swift runtime" in line for line in lines) == 5
    assert "each time the least of 2 runs" in lines[0], lines[0]
    # the batch found best on all cores (1 or 2 here) depends on timing
    assert any(re.search(r"the simulation's logits equal ours \(spiking\) on 3/3 images at D=7 \(batch 1( and 2)?\) and D=3",
                         line) for line in lines)
    assert any("ONNX Runtime's predictions equal the PyTorch fake-quant model's on 3/3 images" in line
               for line in lines)
    with pytest.raises(SystemExit):  # one image leaves nothing after the runtime's fixed cost
        benchpeers.main([packed_path, "--export", EXPORT, "--csdpack", CSDPACK, "--limit", "1"])
    with pytest.raises(SystemExit):  # no run to take the least of
        benchpeers.main([packed_path, "--export", EXPORT, "--csdpack", CSDPACK, "--repeat", "0"])
