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

from conftest import CSDPACK, REPO, attention_unit_image, needs_csdpack, needs_fashion_mnist, recrc

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
    """The reference model (49 tokens x 64, 4 heads, T = 7): what each op needs, counted from its shapes.
    An op's live bytes are its live buffers and its own kernel scratch (rounded up to 16; the attention
    pair's at both records; a band unit's two at both, docs/FORMAT.md "Bands"), and the planner reaches that
    bound: the arena is their peak. Fused, the convs and pools and the MLPs run as band units: their
    outputs are bands (the first conv's 2 rows of 16 x 28, fc1's 8 tokens of 128)."""
    report = inspect(REFERENCE)
    ops = report["ops"]
    stream = {"fused": 49 * 64 * 2, "spiking": 49 * 64 * 2 * 7}  # int16 [N][D], spiking [N][D][T]
    counts = 49 * 64  # one byte per neuron: fused counts, and trains at T <= 8
    # kernel scratch (docs/FORMAT.md "Kernel scratch"): the encoding conv (K 9), a 64-input linear into
    # 64 or 128 outputs, the attention pair (hd 16, N 49)
    conv0 = {"fused": 32 * 3, "spiking": 16 * 3 + 4 * 7 * 16}
    linear64 = {"fused": 32 * 16, "spiking": 16 * 16 + 4 * 7 * 64}
    linear128 = {"fused": 32 * 16, "spiking": 16 * 16 + 4 * 7 * 128}
    pair = 208 + 32 * 13
    # the first conv and pool as a unit, fused: the conv's band, its scratch and the pool's output
    assert ops[0]["live_bytes"]["fused"] == ops[1]["live_bytes"]["fused"] == 16 * 2 * 28 + conv0["fused"] + 16 * 14 * 14
    # fc1 and fc2 as a unit, fused: the stream, u, fc1's band of 8 tokens, and both scratches (fc2: 128 inputs)
    assert ops[13]["live_bytes"]["fused"] == ops[14]["live_bytes"]["fused"] == (stream["fused"] + counts + 8 * 128
                                                                                 + linear128["fused"] + 32 * 32)
    assert [op.get("band", 0) for op in ops if op.get("band")] == [2, 4, 8, 8]
    # spiking, the units run op by op: the encoding conv's output and scratch (pixels are the caller's)
    assert ops[0]["live_bytes"]["spiking"] == 16 * 28 * 28 + conv0["spiking"]
    # the first max-pool (16 x 28 x 28 counts in, 16 x 14 x 14 out) needs no scratch
    assert ops[1]["live_bytes"]["spiking"] == 16 * 28 * 28 + 16 * 14 * 14
    # fc1: the stream, u, its [49][128] output and its scratch
    assert ops[13]["live_bytes"]["spiking"] == stream["spiking"] + 3 * counts + linear128["spiking"]
    for mode in ("fused", "spiking"):
        assert ops[0]["arena"][mode]["scratch_bytes"] == conv0[mode]
        # the v projection first: the stream, u and v (channel-major, its own buffer), and its scratch
        assert ops[6]["live_bytes"][mode] == stream[mode] + 2 * counts + linear64[mode]
        # the k projection, then q over u: the stream, u (or q), v and k, and the scratch
        assert ops[7]["live_bytes"][mode] == ops[8]["live_bytes"][mode] == stream[mode] + 3 * counts + linear64[mode]
        # the first attention pair: the stream, q, k and v and the pair's scratch (the scores go through the
        # kernel scratch, the output over q), at both records
        assert ops[9]["live_bytes"][mode] == ops[10]["live_bytes"][mode] == stream[mode] + 3 * counts + pair
        assert ops[9]["arena"][mode]["scratch"] == ops[10]["arena"][mode]["scratch"]
        assert ops[9]["arena"][mode]["scratch_bytes"] == ops[10]["arena"][mode]["scratch_bytes"] == pair
        assert ops[26]["live_bytes"][mode] == counts  # the classifier reads the last quantizer's counts only
        assert "scratch" not in ops[26]["arena"][mode]  # and needs no scratch
        # fused the pair is the peak, spiking fc1 (the first of equals)
        assert report["peak_op"][mode] == {"fused": 9, "spiking": 13}[mode]
        # the planner reaches the bound: the arena is the peak of live bytes, scratch included
        assert max(op["live_bytes"][mode] for op in ops) == report["arena_bytes"][mode]
    assert report["arena_bytes"] == {"fused": stream["fused"] + 3 * counts + pair,
                                     "spiking": stream["spiking"] + 3 * counts + linear128["spiking"]}
    assert report["largest_scratch_bytes"] == {"fused": 288 // 4 * 32, "spiking": linear128["spiking"]}


@pytest.mark.parametrize("image", IMAGES, ids=[os.path.basename(os.path.dirname(p)) for p in IMAGES])
def test_live_bytes_fit_the_arena_and_cover_every_op(image):
    report = inspect(image)
    for mode in ("fused", "spiking"):
        live = [op["live_bytes"][mode] for op in report["ops"]]
        assert max(live) <= report["arena_bytes"][mode]
        assert report["peak_op"][mode] == live.index(max(live))
        assert report["largest_scratch_bytes"][mode] == max(op["arena"][mode].get("scratch_bytes", 0)
                                                            for op in report["ops"])
        for op, b in zip(report["ops"], live):
            arena = op["arena"][mode]
            # its output and its own scratch (in separate bytes) are live while it runs
            need = (arena.get("output_bytes", 0) + 15) // 16 * 16 + (arena.get("scratch_bytes", 0) + 15) // 16 * 16
            assert b >= need, f"op {op['index']}: live {b} below its output and scratch {need}"
            if "scratch_bytes" in arena:
                assert arena["scratch"] % 16 == 0
                assert arena["scratch"] + arena["scratch_bytes"] <= report["arena_bytes"][mode]


def test_peak_is_marked_in_the_text():
    r = csdpack("inspect", REFERENCE)
    assert r.returncode == 0, r.stderr
    # fused the attention pair (the stream, q, k, v and the pair's scratch), spiking fc1 (its scratch and
    # its [49][128] output)
    assert "peak live:       fused 16304 B at op 9 (attn_scores), spiking 57152 B at op 13 (linear)" in r.stdout
    row9 = next(line for line in r.stdout.splitlines() if re.match(r"\s+9\s+attn_scores", line))
    assert row9.split()[-2:] == ["16304*", "53936"]
    row13 = next(line for line in r.stdout.splitlines() if re.match(r"\s+13\s+linear", line))
    assert row13.split()[-2:] == ["11968", "57152*"]  # fused: the MLP's band unit
    # in both blocks the q projection and the attention output write in place, nothing else (stream adds
    # show their own flag; the v projection, channel-major, writes its own buffer)
    in_place = [line.split()[0] for line in r.stdout.splitlines() if " in_place " in line]
    assert in_place == ["8", "10", "18", "20"]
    assert [op["index"] for op in inspect(REFERENCE)["ops"] if op["in_place"]] == [8, 10, 18, 20]
    assert [op["index"] for op in inspect(REFERENCE)["ops"] if "channel_major" in op["flags"]] == [6, 16]


def test_attention_unit_live_bytes_by_hand(tmp_path):
    """docs/FORMAT.md "Attention units in the fused plan": the planner gives the stream, u, v, k, q, o and the
    unit's kernel scratch lifetimes that cover all six records of a unit. The reference model with both
    attention blocks made units by hand (conftest.attention_unit_image, band 8: no packer image has a unit until
    `csdpack convert --low-ram`): at each of ops 5..10 and 15..20 the fused live bytes are the stream (6,272),
    o (3,136), k and v of one head (784 each), a band of u (8 x 64) and of q (8 x 16) and the largest of the
    scratch regions (the pair's 624; the linears' 512 share its bytes): 12,240, which is the fused peak and
    arena. Spiking the unit is ignored: the live bytes are those of the same image without units."""
    with open(REFERENCE, "rb") as f:
        data = f.read()
    plain = tmp_path / "plain.csd"
    m = bytearray(data)
    m[4:6] = (5).to_bytes(2, "little")  # the packer's image as format 5 writes it without units
    plain.write_bytes(recrc(m))
    both = tmp_path / "units.csd"
    both.write_bytes(attention_unit_image(attention_unit_image(data, 5, 8), 15, 8, arena=12240))
    report, before = inspect(both), inspect(plain)
    unit = 6272 + 3136 + 2 * 784 + 8 * 64 + 8 * 16 + 624
    assert unit == 12240 == report["arena_bytes"]["fused"]
    live = [op["live_bytes"]["fused"] for op in report["ops"]]
    assert live[5:11] == live[15:21] == [unit] * 6
    assert max(live) == unit and report["peak_op"]["fused"] == 5
    assert [op["live_bytes"]["spiking"] for op in report["ops"]] == [op["live_bytes"]["spiking"] for op in before["ops"]]


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
    assert t["peak_live_bytes"] == {"fused": 16304, "spiking": 57152} == report["arena_bytes"]
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
