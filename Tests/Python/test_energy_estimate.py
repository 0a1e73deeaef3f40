"""csdpack verify's energy estimate (45 nm: 4.6 pJ per MAC, 0.9 pJ per synaptic operation).

Runs the committed reference image on a few Fashion-MNIST test images in both modes and at
every delay, and checks the estimate against the operation counts verify reports next to it.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import CSDPACK, REPO, needs_csdpack, needs_fashion_mnist

IMAGE = os.path.join(REPO, "Tests", "TestData", "fmnist_tiny", "model.csd")
IMAGES = 12

pytestmark = [needs_fashion_mnist, needs_csdpack]


def verify(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([CSDPACK, "verify", IMAGE, "--data", "fashion-mnist", "--limit", str(IMAGES), *extra],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def report() -> dict:
    r = verify("--mode", "both", "--sweep-delay", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def entries(report: dict) -> list[dict]:
    return report["modes"] + report["delay_sweep"]


def test_estimate_prices_the_counted_operations(report):
    for e in entries(report):
        expected = 4.6 * e["mean_macs"] + 0.9 * e["mean_synaptic_ops"]
        assert e["energy_estimate_pj"] == pytest.approx(expected, rel=1e-12), e
        assert sum(e["energy_estimate_pj_per_op"]) == pytest.approx(e["energy_estimate_pj"], rel=1e-9), e


def test_fused_is_all_macs_and_spiking_only_the_encoding_layer(report):
    fused, spiking = report["modes"]
    assert fused["mode"] == "fused" and spiking["mode"] == "spiking"
    assert fused["mean_synaptic_ops"] == 0
    assert fused["energy_estimate_pj"] == pytest.approx(4.6 * fused["mean_macs"])
    per_op = spiking["energy_estimate_pj_per_op"]
    # the encoding conv (op 0) reads pixels: its MACs, not accumulates; the other ops accumulate
    assert per_op[0] == pytest.approx(4.6 * spiking["mean_macs"])
    assert 0 < spiking["mean_macs"] < fused["mean_macs"]
    assert spiking["energy_estimate_pj"] < fused["energy_estimate_pj"]


def test_every_delay_has_its_own_estimate(report):
    sweep = report["delay_sweep"]
    assert [e["delay"] for e in sweep] == list(range(len(sweep)))
    assert len({round(e["energy_estimate_pj"], 6) for e in sweep}) > 1  # spikes, hence operations, vary with D


def test_text_output_states_the_estimate():
    r = verify("--mode", "both")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert sum("energy estimate" in line and "nJ" in line for line in lines) == 2, r.stdout
    assert any("4.6 pJ per MAC" in line and "0.9 pJ per synaptic operation" in line for line in lines), r.stdout
