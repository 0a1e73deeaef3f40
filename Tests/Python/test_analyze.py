"""``csdpack inspect``'s live bytes and peak op, and ``inspect --analyze`` (docs/ANALYZE.md).

The images are the committed test-plan images in Tests/TestData; the data-sample runs need Fashion-MNIST.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess

import pytest

from conftest import CSDPACK, REPO, needs_csdpack, needs_fashion_mnist

pytestmark = [needs_csdpack]

REFERENCE = os.path.join(REPO, "Tests", "TestData", "fmnist_tiny", "model.csd")
IMAGES = sorted(glob.glob(os.path.join(REPO, "Tests", "TestData", "*", "model.csd")))
RATES_SWIFT = os.path.join(REPO, "Sources", "CSDPack", "CortexM4Rates.swift")
BENCHMARKS = os.path.join(REPO, "docs", "BENCHMARKS.md")
SWIFT_CLASS = {"convPixels": "conv3x3_pixels", "maxPool": "maxpool", "conv": "conv3x3", "convStream": "conv3x3_stream",
               "streamNeuron": "stream_neuron", "linear": "linear", "attention": "attention",
               "linearStream": "linear_stream", "classifier": "classifier"}


def csdpack(*args) -> subprocess.CompletedProcess:
    return subprocess.run([CSDPACK, *map(str, args)], capture_output=True, text=True, timeout=300)


def inspect(*args) -> dict:
    r = csdpack("inspect", *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def documented_rates() -> dict[str, tuple[str, float, str, float, float]]:
    """docs/BENCHMARKS.md's "Per-class rates" table: class -> (fused unit, fused, spiking unit, count, event)."""
    with open(BENCHMARKS) as f:
        text = f.read()
    section = text[text.index("### Per-class rates"):]
    rows = {}
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"[\d.]+", cells[2]):
            rows[cells[0]] = (cells[1], float(cells[2]), cells[3], float(cells[4]), float(cells[5]))
    return rows


def test_the_swift_rates_are_the_documented_ones():
    with open(RATES_SWIFT) as f:
        swift = {SWIFT_CLASS[m.group(1)]: tuple(float(m.group(i)) for i in (2, 3, 4))
                 for m in re.finditer(r"case \.(\w+): return \(([\d.]+), ([\d.]+), ([\d.]+)\)", f.read())}
    doc = documented_rates()
    assert set(doc) == set(SWIFT_CLASS.values()) == set(swift)
    for cls, (_, fused, _, count, event) in doc.items():
        assert swift[cls] == (fused, count, event), cls


def test_reference_live_bytes_by_hand():
    """The reference model (49 tokens x 64, 4 heads, T = 7): what each op needs, counted from its shapes."""
    report = inspect(REFERENCE)
    ops = report["ops"]
    stream = {"fused": 49 * 64 * 2, "spiking": 49 * 64 * 2 * 7}  # int16 [N][D], spiking [N][D][T]
    counts = 49 * 64  # one byte per neuron: fused counts, and trains at T <= 8
    for mode in ("fused", "spiking"):
        assert ops[0]["live_bytes"][mode] == 16 * 28 * 28  # the encoding conv's output (pixels are the caller's)
        # the k projection: the stream, u, q and k; v then writes over u
        assert ops[7]["live_bytes"][mode] == ops[8]["live_bytes"][mode] == stream[mode] + 3 * counts
        # the first attention pair: the stream, q, k and v (the scores go through the kernel scratch, the
        # output over q)
        assert ops[9]["live_bytes"][mode] == ops[10]["live_bytes"][mode] == stream[mode] + 3 * counts
        assert ops[26]["live_bytes"][mode] == counts  # the classifier reads the last quantizer's counts only
        # fused, the first max-pool (16 x 28 x 28 counts in, 16 x 14 x 14 out) holds as many bytes as op 7
        # and comes first
        assert ops[1]["live_bytes"][mode] == 16 * 28 * 28 + 16 * 14 * 14
        assert report["peak_op"][mode] == {"fused": 1, "spiking": 7}[mode]
        # the planner reaches the bound: arena = peak + kernel scratch
        assert ops[9]["live_bytes"][mode] + report["scratch_bytes"][mode] == report["arena_bytes"][mode]


@pytest.mark.parametrize("image", IMAGES, ids=[os.path.basename(os.path.dirname(p)) for p in IMAGES])
def test_live_bytes_fit_the_arena_and_cover_every_op(image):
    report = inspect(image)
    for mode in ("fused", "spiking"):
        live = [op["live_bytes"][mode] for op in report["ops"]]
        assert max(live) + report["scratch_bytes"][mode] <= report["arena_bytes"][mode]
        assert report["peak_op"][mode] == live.index(max(live))
        for op, b in zip(report["ops"], live):
            need = (op["arena"][mode].get("output_bytes", 0) + 15) // 16 * 16
            assert b >= need, f"op {op['index']}: live {b} below its output {need}"


def test_peak_is_marked_in_the_text():
    r = csdpack("inspect", REFERENCE)
    assert r.returncode == 0, r.stderr
    # the stream, u, q and k while the k projection runs (the scores stream through the scratch)
    assert "peak live:       fused 15680 B at op 1 (maxpool), spiking 53312 B at op 7 (linear)" in r.stdout
    row7 = next(line for line in r.stdout.splitlines() if re.match(r"\s+7\s+linear", line))
    assert row7.split()[-2:] == ["15680", "53312*"]
    # in both blocks the v projection and the attention output write in place, nothing else (stream adds
    # show their own flag)
    in_place = [line.split()[0] for line in r.stdout.splitlines() if " in_place " in line]
    assert in_place == ["8", "10", "18", "20"]
    assert [op["index"] for op in inspect(REFERENCE)["ops"] if op["in_place"]] == [8, 10, 18, 20]


def units(op: dict, unit: str, macs: float, synaptic_ops: float | None) -> float | None:
    return {"MAC": macs, "synaptic op": synaptic_ops, "input element": op["in"][0] * op["in"][1] * op["in"][2],
            "element": op["out"][0] * op["out"][1] * op["out"][2]}[unit]


def test_analyze_without_data():
    report = inspect(REFERENCE, "--analyze")
    a = report["analyze"]
    rates = documented_rates()
    assert a["delay"] == 7 and a["spiking_path"] == "count" and a["sample"] is None
    assert a["m4_instructions_are_estimates"] is True
    for op, entry in zip(report["ops"], a["ops"]):
        unit, fused, spiking_unit, count, _ = rates[entry["class"]]
        assert entry["m4_instructions_estimate"]["fused"] == pytest.approx(units(op, unit, op["macs"], None) * fused)
        assert entry["synaptic_ops"] is None
        spiking = entry["m4_instructions_estimate"]["spiking"]
        if spiking_unit == "synaptic op":
            assert spiking is None
        else:
            assert spiking == pytest.approx(units(op, spiking_unit, entry["spiking_macs"], None) * count)
    t = a["totals"]
    assert t["synaptic_ops"] is None and t["m4_instructions_estimate"]["spiking"] is None
    assert t["flash_bytes"] == sum(e["flash_bytes"] for e in a["ops"])
    assert 128 + t["flash_bytes"] <= report["image_bytes"] < 128 + t["flash_bytes"] + 16 * (len(a["ops"]) + 1)
    assert t["macs"] == report["macs"]
    assert t["peak_live_bytes"] == {"fused": 15680, "spiking": 53312}
    r = csdpack("inspect", REFERENCE, "--analyze")
    assert r.returncode == 0 and "ESTIMATE" in r.stdout and "need data (--data)" in r.stdout


@needs_fashion_mnist
@pytest.mark.parametrize("delay,path", [(7, "count"), (3, "event")])
def test_analyze_with_data_matches_verify(delay, path):
    report = inspect(REFERENCE, "--analyze", "--data", "fashion-mnist", "--limit", 4, "--delay", delay)
    a = report["analyze"]
    assert a["sample"] == {"data": "fashion-mnist", "images": 4} and a["spiking_path"] == path
    r = csdpack("verify", REFERENCE, "--limit", 4, "--mode", "spiking", "--delay", delay, "--json")
    assert r.returncode == 0, r.stderr
    verify = json.loads(r.stdout)
    mean = verify["modes"][0]["mean_synaptic_ops"]
    assert a["totals"]["synaptic_ops"] == pytest.approx(mean)
    rates = documented_rates()
    column = 3 if path == "count" else 4
    total = 0.0
    for op, entry in zip(report["ops"], a["ops"]):
        rate = rates[entry["class"]]
        expected = units(op, rate[2], entry["spiking_macs"], entry["synaptic_ops"]) * rate[column]
        assert entry["m4_instructions_estimate"]["spiking"] == pytest.approx(expected)
        total += expected
    assert a["totals"]["m4_instructions_estimate"]["spiking"] == pytest.approx(total)


@pytest.mark.parametrize("args,message", [
    (["--data", "fashion-mnist"], "--data and --delay need --analyze"),
    (["--analyze", "--delay", "99"], "--delay 99: need 0...7"),
    (["--analyze", "--data-dir", "/tmp"], "--data-dir needs --data"),
])
def test_analyze_options_refused(args, message):
    r = csdpack("inspect", REFERENCE, *args)
    assert r.returncode != 0
    assert message in r.stderr
