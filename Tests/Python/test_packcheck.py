"""Tests of csdformer.packcheck, the check of csdpack's fold and quantization written from the docs.

    CSDPACK=/path/to/csdpack python -m pytest Tests/Python/test_packcheck.py -q

The committed reference export Toolchain/models/fmnist-tiny is packed with the csdpack binary
(CSDPACK, as `make test` sets it). The tests show that the check passes on that image, that a
one-unit change of one tensor element or one op record field (CRC fixed) is reported as exactly
that tensor or record, and that every rounding site matters: with one site's rounding switched
from half-to-even to toward-zero the check disagrees with csdpack on the reference model, so a
rounding-mode change at any site of the packer would fail the check.
"""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np
import pytest

from conftest import REFERENCE_EXPORT as EXPORT, REPO, attention_unit_image, pack_reference

from csdformer import packcheck
from csdformer import reference as ref

CSDPACK = os.environ.get("CSDPACK", os.path.join(REPO, ".build", "debug", "csdpack"))
MODE_NAMES = ("fused", "spiking")  # ref.FUSED, ref.SPIKING

pytestmark = pytest.mark.skipif("CSDPACK" not in os.environ and not os.access(CSDPACK, os.X_OK),
                                reason=f"csdpack binary not found at {CSDPACK}")


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> str:
    return pack_reference(str(tmp_path_factory.mktemp("packcheck") / "model.csd"))


@pytest.fixture(scope="module")
def expected():
    export = packcheck.load_export(EXPORT)
    return packcheck.expected_image(export, export[0]["time_steps"], export[0]["levels"], export[0]["time_steps"])


def failing(findings) -> set[str]:
    return {f.what for f in findings if not f.ok}


def test_reference_image_passes(packed, capsys):
    findings = packcheck.check(EXPORT, packed)
    assert failing(findings) == set()
    assert packcheck.main([EXPORT, packed]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "packcheck: 60 tensors, 155128 bytes, all equal"
    # format 3: the v projection first (CHANNEL_MAJOR, a flag of its record), then k, then q
    assert "packcheck: op 6 linear blocks.0.attn.v record OK (k = 4)" in out
    assert "packcheck: op 7 linear blocks.0.attn.k weights OK (4096 bytes)" in out
    assert "packcheck: op 8 linear blocks.0.attn.q weights OK (4096 bytes)" in out
    assert "packcheck: op 11 linear blocks.0.attn.proj record OK (s = 9)" in out  # the stream shift


def test_stream_shift_is_the_smallest_that_fits(expected):
    """SEMANTICS.md section 4, step 5 on the reference export, recomputed here channel by channel: one
    stream shift s for every writer, the smallest for which every channel's sum over the writers so far
    (after each writer) of the interval S (the hull of [lo >> s, hi >> s] and [neg >> s, ceil(pos / 2^s)], lo / hi = M neg / M
    pos + the stored biases' min / max, h = 2^(s-1) included) stays within +-32767; the last reader's
    |X| bound is the largest |end| of the summed fused intervals [lo >> s, hi >> s]."""
    doc, tensors = packcheck.load_export(EXPORT)
    L = doc["levels"]
    builder = packcheck._Builder(doc, tensors, L, {})
    s = builder.stream_shift
    writers = [op for op in expected.ops if op.flags & ref.OPF_STREAM_OUT]
    assert len(writers) == 5 and {op.shift for op in writers} == {s} and 0 < s <= 24
    D = builder.D

    def intervals(shift: int):
        """The largest |end| of the sums of S over the writers so far (after each writer), and of the
        sums of F over all of them, as plain Python integers."""
        any_lo, any_hi, f_lo, f_hi, reach = [0] * D, [0] * D, [0] * D, [0] * D, 0
        for op in writers:
            w16, bias, _ = builder.writers[op.name]  # bias: round(b'/u), without the rounding half
            m = packcheck.PIXEL_MAX if op.flags & ref.OPF_INPUT_PIXELS else L
            half = 1 << (shift - 1) if shift > 0 else 0
            rows = w16.reshape(w16.shape[0], -1)
            per_channel = bias.reshape(-1, D)
            for c in range(D):
                pos = sum(int(w) for w in rows[c] if w > 0)
                neg = sum(int(w) for w in rows[c] if w < 0)
                lo = m * neg + int(per_channel[:, c].min()) + half
                hi = m * pos + int(per_channel[:, c].max()) + half
                f_lo[c] += lo // 2 ** shift
                f_hi[c] += hi // 2 ** shift
                any_lo[c] += min(lo // 2 ** shift, neg // 2 ** shift)
                any_hi[c] += max(hi // 2 ** shift, -(-pos // 2 ** shift))
            reach = max(reach, max(-x for x in any_lo), max(any_hi))
        return reach, max(max(-x for x in f_lo), max(f_hi))

    for op in writers:
        _, bias, _ = builder.writers[op.name]
        np.testing.assert_array_equal(op.tensors["biases"], bias + (1 << (s - 1)))
    reach, fused = intervals(s)
    assert reach <= 32767 < intervals(s - 1)[0]
    builder.build()
    assert builder.stream_bound == fused


# ---- mutations of the image --------------------------------------------------------------------


def with_crc(data: bytearray) -> bytes:
    """FORMAT.md: CRC-32 of [0, image_bytes) with the crc32 field read as 0."""
    image_bytes = struct.unpack_from("<I", data, 12)[0]
    body = bytearray(data[:image_bytes])
    body[16:20] = b"\0\0\0\0"
    struct.pack_into("<I", data, 16, zlib.crc32(bytes(body)) & 0xFFFFFFFF)
    return bytes(data)


def bump_tensor(image: ref.Image, op_index: int, name: str, pick) -> bytes:
    """The image with one element of a tensor (the first where pick(values) holds) raised by one."""
    op = image.ops[op_index]
    values = getattr(op, name).reshape(-1)
    i = int(np.flatnonzero(pick(values))[0])
    at = image.data_offset + getattr(op, name + "_offset") + i * values.itemsize
    data = bytearray(image.data)
    code = {1: "<b", 2: "<h", 4: "<i"}[values.itemsize]
    struct.pack_into(code, data, at, struct.unpack_from(code, data, at)[0] + 1)
    return with_crc(data)


def record_field(image: ref.Image, op_index: int, offset: int, fmt: str, change) -> bytes:
    """The image with one field of an op record replaced by change(old)."""
    data = bytearray(image.data)
    at = image.header_bytes + op_index * ref.OP_RECORD_BYTES + offset
    struct.pack_into(fmt, data, at, *change(struct.unpack_from(fmt, data, at)))
    return with_crc(data)


def below_max(limit):
    return lambda v: np.abs(v.astype(np.int64)) < limit


def anything(v):
    return np.ones(v.shape, dtype=bool)


TENSOR_MUTATIONS = [
    ("int8 code of a conv", 2, "weights", below_max(127), "op 2 conv3x3 tokenizer.1.conv weights"),
    ("int8 code of a linear", 13, "weights", below_max(127), "op 13 linear blocks.0.mlp.fc1 weights"),
    ("threshold", 6, "thresholds", anything, "op 6 linear blocks.0.attn.v thresholds"),
    ("attention threshold", 19, "thresholds", anything, "op 19 attn_scores blocks.1.attn.a_quant thresholds"),
    ("stream reader threshold", 22, "thresholds", anything, "op 22 stream_neuron blocks.1.mlp.quant thresholds"),
    ("int16 stream weight", 11, "weights", below_max(32767), "op 11 linear blocks.0.attn.proj weights"),
    ("neuron bias", 13, "biases", anything, "op 13 linear blocks.0.mlp.fc1 biases"),
    ("stream bias", 24, "biases", anything, "op 24 linear blocks.1.mlp.fc2 biases"),
    ("token bias", 4, "biases", anything, "op 4 conv3x3 tokenizer.2.conv biases"),
    ("classifier code", 26, "weights", below_max(127), "op 26 classifier head weights"),
    ("classifier bias", 26, "biases", anything, "op 26 classifier head biases"),
]


@pytest.mark.parametrize("op_index,name,pick,what", [m[1:] for m in TENSOR_MUTATIONS],
                         ids=[m[0] for m in TENSOR_MUTATIONS])
def test_one_element_changed_is_that_tensor(packed, tmp_path, op_index, name, pick, what):
    path = tmp_path / "mutated.csd"
    path.write_bytes(bump_tensor(ref.Image.load(packed), op_index, name, pick))
    assert failing(packcheck.check(EXPORT, str(path))) == {what}
    assert packcheck.main([EXPORT, str(path)]) == 1


RECORD_MUTATIONS = [
    ("shift one more", 13, 2, "<B", lambda v: (v[0] + 1,), "op 13 linear blocks.0.mlp.fc1 record"),
    # a stream writer's shift field is the stream shift s, which the format accepts in 0..24
    ("stream shift one more", 11, 2, "<B", lambda v: (v[0] + 1,), "op 11 linear blocks.0.attn.proj record"),
    # (swapping q and k would put the attention output, written over q, on k: the reference refuses that)
    ("scores read k as q", 9, 20, "<4I", lambda v: (v[2], v[3], v[2], v[3]),
     "op 9 attn_scores blocks.0.attn.a_quant record"),
]


@pytest.mark.parametrize("op_index,offset,fmt,change,what", [m[1:] for m in RECORD_MUTATIONS],
                         ids=[m[0] for m in RECORD_MUTATIONS])
def test_record_field_changed_is_that_record(packed, tmp_path, op_index, offset, fmt, change, what):
    path = tmp_path / "mutated.csd"
    path.write_bytes(record_field(ref.Image.load(packed), op_index, offset, fmt, change))
    assert failing(packcheck.check(EXPORT, str(path))) == {what}


def test_an_input_written_over_before_it_is_read(packed, tmp_path):
    """The k projection writing in place over its input u, and the q projection then reading u's offset
    (now k) into k's old buffer, the pair and the stream add following q there: a plan the reference's
    shape chaining accepts (q reads a live buffer of u's kind and shape at u's offset), but q is
    computed from k instead of u."""
    image = ref.Image.load(packed)
    u, k_old = image.ops[5].output[0], image.ops[7].output[0]
    data = bytearray(image.data)

    def put(op_index: int, field: int, value: int) -> None:  # a fused arena offset
        struct.pack_into("<I", data, image.header_bytes + op_index * ref.OP_RECORD_BYTES + field, value)

    put(7, 36, u)        # k's output over u (in place: a square LINEAR)
    put(8, 36, k_old)    # q's output where k was
    put(9, 20, k_old)    # the scores' q ...
    put(9, 28, u)        # ... and k
    put(10, 36, k_old)   # the attention output over q
    put(11, 20, k_old)   # the stream add reads it there
    path = tmp_path / "mutated.csd"
    path.write_bytes(with_crc(data))
    ref.Image.load(str(path))  # a consistent plan as far as the format goes
    findings = packcheck.check(EXPORT, str(path))
    assert failing(findings) == {"op 8 linear blocks.0.attn.q record"}
    assert any("input (output of op 5) is written over by op 7" in f.message for f in findings if not f.ok)


def test_an_input_written_over_by_a_kernel_scratch(packed):
    """overwritten_before counts an op's kernel scratch like its output (FORMAT.md "Arena plan"): v, read
    by the values, with the k projection's scratch moved onto it (on the parsed records: the reference
    refuses such an image, so packcheck would not get that far)."""
    image = ref.Image.load(packed)
    assert packcheck.overwritten_before(image, 6, 10) is None  # v, read by the values
    for mode in (ref.FUSED, ref.SPIKING):
        image = ref.Image.load(packed)
        k = image.ops[7]
        k.scratch = tuple(image.ops[6].output[m] if m == mode else k.scratch[m] for m in (0, 1))
        assert packcheck.overwritten_before(image, 6, 10) == 7
        assert packcheck.overwritten_before(image, 6, 7) is None  # the reader's own scratch is not "between"


def test_band_buffers_in_the_fused_plan(packed):
    """FORMAT.md "Bands in the fused plan": a band's producer writes only its band (fc1: 8 of its 49 tokens of
    128 counts, the first conv: 2 of its 28 rows of 16 x 28 counts); the spiking plan holds the whole output."""
    image = ref.Image.load(packed)
    fc1, conv = image.ops[13], image.ops[0]
    assert (fc1.band, conv.band) == (8, 2)
    assert packcheck.output_buffer(image, fc1, ref.FUSED) == (fc1.output[ref.FUSED], 8 * 128)
    assert packcheck.output_buffer(image, fc1, ref.SPIKING) == (fc1.output[ref.SPIKING], 49 * 128)
    assert packcheck.output_buffer(image, conv, ref.FUSED) == (conv.output[ref.FUSED], 16 * 2 * 28)
    assert packcheck.output_buffer(image, conv, ref.SPIKING) == (conv.output[ref.SPIKING], 16 * 28 * 28)


def test_a_band_producers_input_is_read_until_its_consumer_ran(packed):
    """FORMAT.md "Bands in the fused plan": fc1 (op 13) reads u (op 12's output) while fc2 (op 14) consumes its
    bands, so fc2's kernel scratch over u writes over fc1's input before fc1 has read it all, fused; spiking the
    two ops run one after the other (on the parsed records: the reference refuses the fused image)."""
    image = ref.Image.load(packed)
    assert image.ops[13].band and packcheck.overwritten_before(image, 12, 13) is None
    for mode, writer in ((ref.FUSED, 14), (ref.SPIKING, None)):
        image = ref.Image.load(packed)
        fc2 = image.ops[14]
        fc2.scratch = tuple(image.ops[12].output[m] if m == mode else fc2.scratch[m] for m in (0, 1))
        assert packcheck.overwritten_before(image, 12, 13) == writer, MODE_NAMES[mode]


# ---- format 5: attention units (hand-made: csdpack convert writes them only with --low-ram) -------------


@pytest.fixture(scope="module")
def unit_image(packed, tmp_path_factory) -> str:
    """The packed reference model with its first attention block (ops 5..10) made an attention unit by hand
    (conftest.attention_unit_image: band 8, 4 heads; FORMAT.md "Attention units")."""
    with open(packed, "rb") as f:
        data = attention_unit_image(f.read(), 5, 8)
    path = tmp_path_factory.mktemp("unit") / "unit.csd"
    path.write_bytes(data)
    return str(path)


def test_an_attention_unit_image_passes(unit_image):
    """The unit's v, k and q linears carry the pair's heads (4), which packcheck expects where the image has a
    unit (and 0 elsewhere); the unit changes no tensor and no other record field."""
    findings = packcheck.check(EXPORT, unit_image)
    assert failing(findings) == set()
    image = ref.Image.load(unit_image)
    assert [image.ops[i].heads for i in (6, 7, 8, 16, 17, 18)] == [4, 4, 4, 0, 0, 0]
    # the same heads outside a unit are a mismatch of that record (the reference refuses such an image, so the
    # comparison runs on the parsed records)
    expected = packcheck.expected_image(packcheck.load_export(EXPORT), image.time_steps, image.levels, image.delay)
    image.ops[16].heads = 4
    assert failing(packcheck.compare(expected, image)) == {"op 16 linear blocks.1.attn.v record"}


def test_attention_unit_buffers_in_the_fused_plan(unit_image):
    """FORMAT.md "Attention units in the fused plan": u [8][64], v [16][49], k [49][16], q [8][16] counts; o whole;
    the spiking plan holds every value whole."""
    image = ref.Image.load(unit_image)
    sizes = [packcheck.output_buffer(image, image.ops[i], ref.FUSED)[1] for i in (5, 6, 7, 8, 10)]
    assert sizes == [8 * 64, 16 * 49, 49 * 16, 8 * 16, 49 * 64]
    assert packcheck.output_buffer(image, image.ops[9], ref.FUSED) is None  # the scores: in the kernel scratch
    assert all(packcheck.output_buffer(image, image.ops[i], ref.SPIKING)[1] == 49 * 64 for i in (5, 6, 7, 8, 10))


def test_an_attention_units_inputs_are_read_until_its_last_op(unit_image):
    """FORMAT.md "Attention units in the fused plan": the unit's buffers live from its first op to its last, so
    the v linear (op 6) reads u (op 5's output) until op 10 has run: the k linear's or the pair's scratch over u
    writes over it first, fused (on the parsed records: the reference refuses such an image); spiking the ops
    run one after the other, and the pair's scratch comes after every reader of u."""
    image = ref.Image.load(unit_image)
    assert packcheck.overwritten_before(image, 5, 6) is None
    for op_index in (7, 9):
        image = ref.Image.load(unit_image)
        op = image.ops[op_index]
        op.scratch = (image.ops[5].output[ref.FUSED], op.scratch[ref.SPIKING])
        assert packcheck.overwritten_before(image, 5, 6) == op_index
    image = ref.Image.load(unit_image)
    image.ops[9].scratch = (image.ops[9].scratch[ref.FUSED], image.ops[5].output[ref.SPIKING])
    assert packcheck.overwritten_before(image, 5, 6) is None


# ---- every rounding site is visible ------------------------------------------------------------


def site_tensors(expected, site: str) -> set[str]:
    """The findings' names of the tensors a rounding site produces."""
    names = set()
    for i, op in enumerate(expected.ops):
        stream = bool(op.flags & ref.OPF_STREAM_OUT)
        neuron_layer = op.kind in (ref.CONV3X3, ref.LINEAR) and not stream
        wanted = {
            "codes": "weights" if neuron_layer else None,
            "thresholds": "thresholds" if neuron_layer else None,
            "biases": "biases" if neuron_layer else None,
            "attention": "thresholds" if op.kind in (ref.ATTN_SCORES, ref.ATTN_VALUES) else None,
            "stream_weights": "weights" if stream else None,
            "stream_biases": "biases" if stream and not op.flags & ref.OPF_TOKEN_BIAS else None,
            "token_biases": "biases" if op.flags & ref.OPF_TOKEN_BIAS else None,
            "reader_thresholds": "thresholds" if op.kind == ref.STREAM_NEURON else None,
            "classifier_codes": "weights" if op.kind == ref.CLASSIFIER else None,
            "classifier_biases": "biases" if op.kind == ref.CLASSIFIER else None,
        }[site]
        if wanted:
            names.add(f"op {i} {op.label} {wanted}")
    return names


@pytest.mark.parametrize("site", packcheck.SITES)
def test_rounding_site_toward_zero_disagrees(packed, expected, site):
    findings = packcheck.check(EXPORT, packed, rounding={site: np.trunc})
    assert failing(findings) & site_tensors(expected, site), f"{site}: toward-zero rounding went unnoticed"


# ---- command line ------------------------------------------------------------------------------


def test_unusable_inputs_exit_2(packed, tmp_path):
    assert packcheck.main([EXPORT, str(tmp_path / "missing.csd")]) == 2
    assert packcheck.main([str(tmp_path), packed]) == 2
    float_export = tmp_path / "float"
    float_export.mkdir()
    (float_export / "model.safetensors").write_bytes(open(os.path.join(EXPORT, "model.safetensors"), "rb").read())
    with open(os.path.join(EXPORT, "model.json")) as f:
        doc = json.load(f)
    doc["phase"] = "float"
    (float_export / "model.json").write_text(json.dumps(doc))
    assert packcheck.main([str(float_export), packed]) == 2


def test_plan_mode_checks_each_case(tmp_path, capsys):
    with open(os.path.join(REPO, "Tests", "TestPlan", "plan.json")) as f:
        cases = {c["name"]: c for c in json.load(f)["cases"]}
    committed = dict(cases["fmnist_tiny"], export=EXPORT)  # an absolute path is taken as is
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"cases": [committed, cases["synthetic_t1"]]}))
    assert packcheck.main(["--plan", str(plan), "--csdpack", CSDPACK, "--work", str(tmp_path / "work")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "packcheck: case fmnist_tiny: 60 tensors, 155128 bytes, all equal" in out
    assert out[-1] == "packcheck: plan: 2 cases, all equal"
