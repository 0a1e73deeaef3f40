"""Tests of the NumPy reference executor (Toolchain/csdformer/reference.py).

The model under test is packed here with the csdpack binary (CSDPACK, as `make test` sets it)
from the committed reference export Toolchain/models/fmnist-tiny.
"""

from __future__ import annotations

import os
import struct
import subprocess
import zlib

import numpy as np
import pytest

from conftest import CSDPACK, REPO, missing, needs_csdpack, needs_fashion_mnist

from csdformer import reference as ref
from csdformer.reference import Image, ImageError

EXPORTS = [os.path.join(REPO, "Toolchain", "models", "fmnist-tiny")]
# The committed golden case of the reference model (Tests/TestData, from Tests/TestPlan/plan.json).
GOLDEN = os.path.join(REPO, "Tests", "TestData", "fmnist_tiny")


def _export_dir():
    for d in EXPORTS:
        if os.path.isfile(os.path.join(d, "model.safetensors")) and os.path.isfile(os.path.join(d, "model.json")):
            return d
    return None


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """(image bytes, export folder) of the model under test."""
    export = _export_dir()
    if export is None:
        missing(f"no export to pack (looked in {', '.join(EXPORTS)})")
    if "CSDPACK" in os.environ or os.access(CSDPACK, os.X_OK):  # under make test a missing binary fails
        out = str(tmp_path_factory.mktemp("csd") / "model.csd")
        subprocess.run([CSDPACK, "convert", os.path.join(export, "model.safetensors"),
                        "--config", os.path.join(export, "model.json"), "-o", out],
                       check=True, capture_output=True, timeout=120)
    elif os.path.isfile(os.path.join(export, "model.csd")):
        out = os.path.join(export, "model.csd")
    else:
        missing(f"csdpack binary missing at {CSDPACK} (build it with `swift build`; `make test` sets CSDPACK) "
                f"and {export} holds no packed model.csd")
    with open(out, "rb") as f:
        return f.read(), export


@pytest.fixture(scope="module")
def image(packed):
    return Image.parse(packed[0])


@pytest.fixture(scope="module")
def test_images():
    from csdformer import data as datasets
    split = datasets.load("fashion-mnist", "test")
    return split.images[:500].numpy(), split.labels[:500].numpy()


def _recrc(b: bytearray) -> bytes:
    b[16:20] = b"\0\0\0\0"
    image_bytes = struct.unpack_from("<I", b, 12)[0]
    struct.pack_into("<I", b, 16, zlib.crc32(bytes(b[:image_bytes])) & 0xFFFFFFFF)
    return bytes(b)


# ---------------------------------------------------------------------------------------------
# parsing and validation


def test_parse_header(image):
    assert image.magic == 0x46445343 and image.format_version == 2 and image.math_version == 2
    assert image.input_shape == (1, 28, 28) and image.classes == 10
    assert image.ops[0].kind == ref.CONV3X3 and image.ops[0].input_pixels
    assert image.ops[-1].kind == ref.CLASSIFIER
    for op in image.ops:
        if op.weights is not None:
            assert op.weights.dtype == (np.int16 if op.stream_out else np.int8)
        if op.thresholds is not None:
            assert op.thresholds.dtype == np.int32 and op.thresholds.min() >= 1
    # SEMANTICS.md "Stream sinks": every writer of an image has the same stream shift s (its shift field);
    # the reference model's stream is 2^s coarser than its writers' weights
    shifts = {op.shift for op in image.ops if op.stream_out}
    assert len(shifts) == 1 and 0 < shifts.pop() <= 24


def test_load_from_file(packed, tmp_path):
    p = tmp_path / "m.csd"
    p.write_bytes(packed[0])
    assert Image.load(str(p)).op_count == Image.parse(packed[0]).op_count


def test_trailing_bytes_are_accepted(packed):
    Image.parse(packed[0] + b"\xff" * 32)  # the caller's size may exceed image_bytes


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:100], "size"),
    (lambda b: b"XSDF" + b[4:], "magic"),
    (lambda b: b[:-16], "image_bytes"),
    (lambda b: b[:4] + b"\x01" + b[5:], "format_version"),  # version 1 is refused like any other
    (lambda b: b[:4] + b"\x03" + b[5:], "format_version"),
    (lambda b: b[:6] + b"\x01" + b[7:], "math_version"),  # math version 1 (an int32 stream) is refused
    (lambda b: b[:6] + b"\x03" + b[7:], "math_version"),
])
def test_header_errors(packed, mutate, message):
    with pytest.raises(ImageError, match=message):
        Image.parse(mutate(packed[0]))


def test_crc_flip_anywhere(packed):
    b = packed[0]
    for pos in (20, 130, len(b) // 2, len(b) - 1):
        m = bytearray(b)
        m[pos] ^= 0x10
        with pytest.raises(ImageError, match="crc32"):
            Image.parse(bytes(m))


@pytest.mark.parametrize("pos", [51, 68, 100, 127])
def test_reserved_header_byte(packed, pos):
    m = bytearray(packed[0])
    m[pos] = 1
    with pytest.raises(ImageError, match="reserved"):
        Image.parse(_recrc(m))


@pytest.mark.parametrize("field", [18, 56, 63])
def test_reserved_op_byte(packed, field):
    m = bytearray(packed[0])
    m[128 + 64 * 2 + field] = 1
    with pytest.raises(ImageError, match="reserved"):
        Image.parse(_recrc(m))


def test_op_record_bytes(packed):
    m = bytearray(packed[0])
    struct.pack_into("<I", m, 24, 32)
    with pytest.raises(ImageError, match="op_record_bytes"):
        Image.parse(_recrc(m))


def test_bad_delay_range(packed):
    m = bytearray(packed[0])
    m[50] = m[48] + 1  # D = T + 1
    with pytest.raises(ImageError, match="delay"):
        Image.parse(_recrc(m))


def test_bad_kind(packed):
    m = bytearray(packed[0])
    m[128 + 64 * 1] = 9
    with pytest.raises(ImageError, match="kind"):
        Image.parse(_recrc(m))


def test_broken_chaining(image, packed):
    # point op 2's fused input somewhere no earlier op wrote
    m = bytearray(packed[0])
    struct.pack_into("<I", m, 128 + 64 * 2 + 20, image.ops[2].input[0] + 16)
    with pytest.raises(ImageError, match="chaining"):
        Image.parse(_recrc(m))


def test_conv_fan_in_beyond_16_bits(packed):
    # op 2 (conv 16 -> 32) claims 7,282 input channels: a fan-in of 65,538
    m = bytearray(packed[0])
    struct.pack_into("<H", m, 128 + 64 * 2 + 4, 7282)
    with pytest.raises(ImageError, match="fan-in"):
        Image.parse(_recrc(m))


def _writers(image):
    return [op for op in image.ops if op.stream_out]


def _set_shift(packed, op_index: int, shift: int) -> bytes:
    m = bytearray(packed[0])
    m[128 + 64 * op_index + 2] = shift
    return _recrc(m)


def test_stream_writer_shift_range(image, packed):
    """A stream writer's shift field is the stream shift s, 0..24 like a neuron op's k (FORMAT.md): 24 is
    accepted on a writer, 25 refused."""
    for op in _writers(image)[:2]:  # the set (a conv) and the first add (a linear)
        assert Image.parse(_set_shift(packed, op.index, 24)).ops[op.index].shift == 24
        with pytest.raises(ImageError, match=rf"op {op.index} \({op.name}\): shift 25 out of range"):
            Image.parse(_set_shift(packed, op.index, 25))


def test_stream_buffers_are_int16(image):
    """FORMAT.md "Arena plan": the stream takes N D x 2 bytes fused, N D T x 2 spiking."""
    N, D, T = image.tokens, image.width, image.time_steps
    assert image.buffer_bytes("stream", (N, D), ref.FUSED) == N * D * 2
    assert image.buffer_bytes("stream", (N, D), ref.SPIKING) == N * D * T * 2


def test_stream_neuron_scratch():
    """FORMAT.md "Kernel scratch": a stream neuron needs none fused and, spiking, one token's [D][T] int16
    steps widened to int32, align16(4 T D)."""
    def need(N, D, T, mode):
        img = Image(data=b"", time_steps=T, tokens=N, width=D)
        img.ops = [ref.Op(0, ref.STREAM_NEURON, 0, 0, 0, (N, D, 1), (N, D, 1), 0, (0, 0), (0, 0), (16, 16), 0, 0, 0)]
        return img.scratch_bytes(mode)

    assert need(49, 64, 7, ref.FUSED) == 0
    assert need(49, 64, 7, ref.SPIKING) == 4 * 7 * 64
    assert need(3, 5, 3, ref.SPIKING) == 64  # 60 rounded up to 16
    assert need(3, 5, 16, ref.SPIKING) == 320


def test_arena_bytes_include_the_kernel_scratch(image):
    # FORMAT.md "Kernel scratch": fused the attention pair (hd 16, N 49: a block of four queries, the head's
    # v as four blocks of 13 groups, eight queries' scores and v's per-key sums), above the 288-input conv's
    # 32 per group of four; spiking the 64 -> 128 linear's list (16 x 16) and its [T][128] int32 currents,
    # above a stream neuron's [T][64] int32 steps
    assert image.scratch_bytes(ref.FUSED) == 32 * 4 * (1 + 13) + 2 * 400 > 288 // 4 * 32
    assert image.scratch_bytes(ref.SPIKING) == 64 // 4 * 16 + image.time_steps * 128 * 4 > image.time_steps * 64 * 4


def test_attention_pair_scratch():
    # FORMAT.md "Kernel scratch": the pair's need, hd = D / heads, Gq = ceil(hd / 4), Gn = ceil(N / 4):
    # fused 32 Gq (1 + Gn) + 2 align16(8 N), spiking max(fused, 64 + 16 max(Gq, Gn) + align16(N b))
    def pair_need(N, D, heads, T, mode):
        img = Image(data=b"", time_steps=T, tokens=N, width=D)
        scores = ref.Op(0, ref.ATTN_SCORES, 0, 0, 0, (N, D, 1), (heads, N, N), heads, (0, 0), (0, 0), (0, 0), 0, 0, 0)
        values = ref.Op(1, ref.ATTN_VALUES, 0, 0, 0, (heads, N, N), (N, D, 1), heads, (0, 0), (16, 16), (0, 0), 0, 0, 0)
        img.ops = [scores, values]
        need = img.attention_scratch_bytes(scores, mode)
        assert img.attention_scratch_bytes(values, mode) == need == img.scratch_bytes(mode)  # both records
        return need

    # the reference model's blocks: hd 16, N 49: Gq 4, Gn 13
    assert pair_need(49, 64, 4, 4, ref.FUSED) == 32 * 4 * 14 + 2 * 400
    assert pair_need(49, 64, 4, 4, ref.SPIKING) == 32 * 4 * 14 + 2 * 400
    # small pairs: Gq = Gn = 1, and Gn = 3 with two-byte trains; the spiking list stays below the fused need
    assert pair_need(4, 4, 1, 4, ref.FUSED) == 32 * 2 + 2 * 32
    assert pair_need(4, 4, 1, 10, ref.SPIKING) == max(32 * 2 + 2 * 32, 64 + 16 + 16)
    assert pair_need(12, 4, 1, 10, ref.SPIKING) == max(32 * 4 + 2 * 96, 64 + 48 + 32)


def _pairs(image):
    """(ATTN_SCORES, ATTN_VALUES) of every attention block."""
    return [(op, image.ops[op.index + 1]) for op in image.ops if op.kind == ref.ATTN_SCORES]


def _set_offset(packed, op_index: int, field: int, mode: int, offset: int) -> bytes:
    """The image with one arena offset of one op record (field 20 input, 28 input2, 36 output; mode 0
    fused, 1 spiking) replaced, the CRC recomputed."""
    m = bytearray(packed[0])
    struct.pack_into("<I", m, 128 + 64 * op_index + field + 4 * mode, offset)
    return _recrc(m)


def test_attention_pair_in_the_plan(image):
    """Format 2: the scores hold no arena buffer (the scores' output and the values' input are 0), and
    the packer writes in place where the input dies: the v projection over its input, the attention
    output over q (FORMAT.md "In place")."""
    pairs = _pairs(image)
    assert len(pairs) == 2
    for scores, values in pairs:
        assert values.kind == ref.ATTN_VALUES and values.heads == scores.heads
        assert scores.output == (0, 0) and values.input == (0, 0)
        assert values.output == scores.input, "the attention output replaces q"
        v = image.ops[scores.index - 1]  # q, k, v projections, then the pair
        assert v.kind == ref.LINEAR and v.output == values.input2
        assert v.output == v.input, "the v projection writes over its input"


@pytest.mark.parametrize("mode", [ref.FUSED, ref.SPIKING])
def test_scores_output_must_be_0(image, packed, mode):
    scores, _ = _pairs(image)[0]
    m = _set_offset(packed, scores.index, 36, mode, 16)
    with pytest.raises(ImageError, match=rf"op {scores.index} \(ATTN_SCORES\): arena offsets .*output 16, expected 0"):
        Image.parse(m)


@pytest.mark.parametrize("mode", [ref.FUSED, ref.SPIKING])
def test_values_input_must_be_0(image, packed, mode):
    # the values pointing at q, a live buffer of the scores' input shape, is still refused
    scores, values = _pairs(image)[0]
    m = _set_offset(packed, values.index, 20, mode, scores.input[mode])
    with pytest.raises(ImageError, match=rf"op {values.index} \(ATTN_VALUES\): arena offsets .*expected 0"):
        Image.parse(m)


def _kind(index: int, kind: int):
    def mutate(m: bytearray) -> None:
        m[128 + 64 * index] = kind
    return mutate


def _swap_kinds(i: int, j: int):
    def mutate(m: bytearray) -> None:
        a, b = 128 + 64 * i, 128 + 64 * j
        m[a], m[b] = m[b], m[a]
    return mutate


def _heads(index: int, heads: int):
    def mutate(m: bytearray) -> None:
        struct.pack_into("<H", m, 128 + 64 * index + 16, heads)
    return mutate


@pytest.mark.parametrize("broken, at", [
    (lambda s, v: _swap_kinds(s, v), "s"),                    # the values first: it follows a LINEAR
    (lambda s, v: _kind(v, ref.STREAM_NEURON), "s"),          # the scores followed by another kind
    (lambda s, v: _kind(s, ref.ATTN_VALUES), "s"),            # two values in a row
    (lambda s, v: _heads(v, 2), "v"),                         # the values' heads differ from the scores'
], ids=["swapped", "scores-alone", "values-alone", "heads"])
def test_attention_pair_broken(image, packed, broken, at):
    scores, values = _pairs(image)[0]
    m = bytearray(packed[0])
    broken(scores.index, values.index)(m)
    index = {"s": scores.index, "v": values.index}[at]
    with pytest.raises(ImageError, match=rf"op {index} \(ATTN_\w+\): attention pair"):
        Image.parse(_recrc(m))


@pytest.mark.parametrize("over", ["k", "v", "q-shifted"])
def test_attention_output_overlaps(image, packed, over):
    """ATTN_VALUES may write over q only at q's offset, never over k or v (FORMAT.md "In place")."""
    scores, values = _pairs(image)[0]
    q, k, v = scores.input[0], scores.input2[0], values.input2[0]
    off, name = {"k": (k, "input2 \\(k\\)"), "v": (v, "input2 \\(v\\)"),
                 "q-shifted": (q - 16 if q >= 16 else q + 16, "input \\(q\\)")}[over]
    m = _set_offset(packed, values.index, 36, ref.FUSED, off)
    with pytest.raises(ImageError, match=rf"op {values.index} \(ATTN_VALUES\): arena offsets \(fused\): "
                                         rf"output \[{off}, \d+\) overlaps {name}"):
        Image.parse(m)


def test_linear_in_place_only_at_its_input_offset(image, packed):
    # the v projection (Din == Dout) may write over its input, but only exactly there
    scores, _ = _pairs(image)[0]
    v = image.ops[scores.index - 1]
    src = v.input[0]
    off = src - 16 if src >= 16 else src + 16
    with pytest.raises(ImageError, match=rf"op {v.index} \(LINEAR\): arena offsets \(fused\): "
                                         rf"output \[{off}, \d+\) overlaps input"):
        Image.parse(_set_offset(packed, v.index, 36, ref.FUSED, off))


def test_in_place_only_for_a_square_linear(image, packed):
    # fc1 (D -> 2D) writing over its input at the same offset is refused: not a square LINEAR
    fc1 = next(op for op in image.ops if op.kind == ref.LINEAR and not op.stream_out
               and op.in_dims[1] != op.out_dims[1])
    src = fc1.input[1]  # the spiking plan, whose arena holds the wider output there
    with pytest.raises(ImageError, match=rf"op {fc1.index} \(LINEAR\): arena offsets \(spiking\): "
                                         rf"output \[{src}, \d+\) overlaps input"):
        Image.parse(_set_offset(packed, fc1.index, 36, ref.SPIKING, src))


def test_zero_threshold(image, packed):
    op = next(o for o in image.ops if o.thresholds is not None)
    m = bytearray(packed[0])
    struct.pack_into("<i", m, image.data_offset + op.thresholds_offset, 0)
    with pytest.raises(ImageError, match="threshold"):
        Image.parse(_recrc(m))


def test_macs_mismatch(packed):
    m = bytearray(packed[0])
    struct.pack_into("<I", m, 60, struct.unpack_from("<I", m, 60)[0] + 1)
    with pytest.raises(ImageError, match="macs"):
        Image.parse(_recrc(m))


# ---------------------------------------------------------------------------------------------
# kernels


def test_temporal_decomposition_identity():
    rng = np.random.default_rng(0)
    B, T, N, D, h = 2, 5, 6, 8, 2
    q = (rng.random((B, T, N, D)) < 0.4).astype(np.uint8)
    k = (rng.random((B, T, N, D)) < 0.4).astype(np.uint8)
    v = (rng.random((B, T, N, D)) < 0.4).astype(np.uint8)
    a = (rng.random((B, T, h, N, N)) < 0.4).astype(np.uint8)
    steps = ref.attn_scores_steps(q, k, h)
    assert steps.shape == (B, T, h, N, N)
    np.testing.assert_array_equal(steps.sum(axis=1), ref.attn_scores_acc(q.sum(1), k.sum(1), h))
    steps = ref.attn_values_steps(a, v, h)
    assert steps.shape == (B, T, N, D)
    np.testing.assert_array_equal(steps.sum(axis=1), ref.attn_values_acc(a.sum(1), v.sum(1), h))
    # the per-step currents never look ahead: step t only uses spikes up to t
    cut = 3
    np.testing.assert_array_equal(ref.attn_scores_steps(q[:, :cut], k[:, :cut], h),
                                  ref.attn_scores_steps(q, k, h)[:, :cut])


@pytest.mark.parametrize("pool, hw", [(2, (7, 6)), (3, (7, 7)), (3, (4, 5))])
def test_maxpool_steps(pool, hw):
    rng = np.random.default_rng(1)
    trains = (rng.random((2, 6, 3) + hw) < 0.5).astype(np.uint8)
    m = ref.maxpool_steps(trains, pool)
    assert set(np.unique(m)) <= {0, 1}
    fused = ref._maxpool(trains.sum(axis=1).astype(np.int64), pool)
    np.testing.assert_array_equal(m.sum(axis=1), fused)
    assert fused.shape[2:] == ref._pool_hw(hw[0], hw[1], pool)


def test_dif_at_full_delay_equals_fused():
    rng = np.random.default_rng(2)
    T, L, k = 6, 4, 2
    theta = rng.integers(1, 400, size=9)
    beta = rng.integers(-300, 300, size=9)
    cur = rng.integers(-60, 120, size=(50, T, 9))
    trains = ref.fire_dif(cur, k, theta, beta, L, T, T)
    counts = ref.fire_fused(cur.sum(axis=1), k, theta, beta, L)
    np.testing.assert_array_equal(trains.sum(axis=1), counts)
    t = np.arange(T).reshape(1, T, 1)
    np.testing.assert_array_equal(trains, (t < counts[:, None, :]).astype(np.uint8))
    # a smaller delay never emits more than L spikes
    assert ref.fire_dif(cur, k, theta, beta, L, T, 0).sum(axis=1).max() <= L


def test_stream_writer_rounds_by_the_stream_shift():
    """SEMANTICS.md "Stream sinks", by hand: fused v = floor((acc + bias) / 2^s) (an arithmetic shift: the
    floor also for negative sums); spiking, the steps of the rounded running sum P[t] = bias + I[0..t]
    sum (telescoping) to the fused v of the same total, whatever the order of the currents."""
    s = 2
    acc = np.array([[-7, -1, 0, 5, 12, -9]])
    bias = np.array([1, 1, 2, 2, 2, -1])
    # y = -6, 0, 2, 7, 14, -10 -> floor(y / 4) = -2, 0, 0, 1, 3, -3
    np.testing.assert_array_equal(ref.stream_write_fused(acc, bias, s), [[-2, 0, 0, 1, 3, -3]])
    np.testing.assert_array_equal(ref.stream_write_fused(acc, bias, 0), acc + bias)  # s = 0: y itself
    # spiking: currents [B = 1, T = 3, 6] summing to acc over the steps
    cur = np.array([[[-3, 2, 0, 5, 4, -9],
                     [-3, -4, 0, -1, 4, 6],
                     [-1, 1, 0, 1, 4, -6]]])
    assert (cur.sum(axis=1) == acc).all()
    steps = ref.stream_write_steps(cur, bias, s)
    # P[t] = bias + running sum:  [-2, 3, 2, 7, 6, -10], [-5, -1, 2, 6, 10, -4], [-6, 0, 2, 7, 14, -10]
    # floor(P[t] / 4):            [-1, 0, 0, 1, 1, -3],  [-2, -1, 0, 1, 2, -1],  [-2, 0, 0, 1, 3, -3]
    np.testing.assert_array_equal(steps, [[[-1, 0, 0, 1, 1, -3],
                                           [-1, -1, 0, 0, 1, 2],
                                           [0, 1, 0, 0, 1, -2]]])
    np.testing.assert_array_equal(steps.sum(axis=1), ref.stream_write_fused(acc, bias, s))
    # the whole current at t = 0 (a writer reading the pixels): all of v lands at step 0
    first = np.zeros_like(cur)
    first[:, 0] = acc
    np.testing.assert_array_equal(ref.stream_write_steps(first, bias, s)[:, 0], [[-2, 0, 0, 1, 3, -3]])
    assert not ref.stream_write_steps(first, bias, s)[:, 1:].any()
    # random currents, every shift: the steps always sum to the fused value
    rng = np.random.default_rng(3)
    cur = rng.integers(-5000, 5000, size=(4, 7, 3, 5))
    bias = rng.integers(-20000, 20000, size=(3, 5))
    for s in (0, 1, 5, 10, 24):
        np.testing.assert_array_equal(ref.stream_write_steps(cur, bias, s).sum(axis=1),
                                      ref.stream_write_fused(cur.sum(axis=1), bias, s), err_msg=f"s = {s}")


def _writer_op(flags: int, shift: int, biases) -> ref.Op:
    op = ref.Op(0, ref.LINEAR, ref.OPF_STREAM_OUT | flags, shift, 0, (1, 1, 1), (1, 2, 1), 0, (0, 0), (0, 0),
                (16, 16), 0, 0, 0)
    op.biases = np.asarray(biases, dtype=np.int32)
    return op


@pytest.mark.parametrize("mode", [ref.FUSED, ref.SPIKING])
def test_stream_values_must_fit_int16(mode):
    """The stream is int16: a set or an add that leaves it raises Int16Overflow (a proven image never
    does); the writer's sum y and its running sums are int32 (Int32Overflow)."""
    def write(op, acc, stream=None):
        bufs = {16: stream} if stream is not None else {}
        acc = np.asarray(acc, dtype=np.int64).reshape(1, 1, 2)
        if mode == ref.SPIKING:
            acc = np.stack([acc, np.zeros_like(acc)], axis=1)  # [B, T = 2, N, D]
            if stream is not None:
                bufs[16] = np.stack([stream, np.zeros_like(stream)], axis=1)
        out = ref._write_stream(bufs, op, mode, acc, "writer")
        return out if mode == ref.FUSED else out.sum(axis=1)

    stream = np.array([[[32000, -32000]]], dtype=np.int64)
    np.testing.assert_array_equal(write(_writer_op(ref.OPF_STREAM_SET, 1, [1, 0]), [65533, -65536]),
                                  [[[32767, -32768]]])  # the int16 ends
    with pytest.raises(ref.Int16Overflow, match="writer: stream"):
        write(_writer_op(ref.OPF_STREAM_SET, 1, [1, 0]), [65535, 0])
    np.testing.assert_array_equal(write(_writer_op(0, 4, [0, 0]), [767 * 16, -768 * 16], stream),
                                  [[[32767, -32768]]])
    with pytest.raises(ref.Int16Overflow, match="writer: stream"):
        write(_writer_op(0, 4, [0, 0]), [0, -769 * 16], stream)
    with pytest.raises(ref.Int32Overflow, match="writer"):
        write(_writer_op(ref.OPF_STREAM_SET, 24, [1, 0]), [2 ** 31 - 1, 0])


# ---------------------------------------------------------------------------------------------
# execution on the real model


@needs_fashion_mnist
def test_fused_equals_spiking_at_full_delay(image, test_images):
    x = test_images[0][:20]
    fused = ref.run_batch(image, x, "fused")
    spiking = ref.run_batch(image, x, "spiking", delay=image.time_steps)
    assert fused.dtype == np.int32 and fused.shape == (20, image.classes)
    np.testing.assert_array_equal(fused, spiking)


@needs_fashion_mnist
def test_run_matches_run_batch(image, test_images):
    x = test_images[0][:3]
    batch = ref.run_batch(image, x, "fused")
    for i in range(3):
        np.testing.assert_array_equal(ref.run(image, x[i]), batch[i])
        np.testing.assert_array_equal(ref.run(image, x[i].reshape(-1)), batch[i])  # flat pixels


@needs_fashion_mnist
def test_per_op_traces(image, test_images):
    T = image.time_steps
    for pixels in test_images[0][:3]:
        lf, fused = ref.run(image, pixels, "fused", trace=True)
        ls, spiking = ref.run(image, pixels, "spiking", delay=T, trace=True)
        assert len(fused) == len(spiking) == len(image.ops)
        np.testing.assert_array_equal(lf, ls)
        for op, f, s in zip(image.ops, fused, spiking):
            if op.kind == ref.CLASSIFIER:
                np.testing.assert_array_equal(f, lf)
                continue
            if op.stream_out:
                assert f.dtype == np.int16 and f.shape == (image.tokens, image.width)
                assert s.dtype == np.int16 and s.shape == (image.tokens, image.width, T)
                # each value's sum over the steps is the fused value (SEMANTICS.md "Stream sinks")
                np.testing.assert_array_equal(s.astype(np.int64).sum(axis=-1), f, err_msg=f"op {op.index} stream")
                continue
            assert f.dtype == np.uint8 and f.max() <= image.levels
            want = {ref.CONV3X3: op.out_dims, ref.MAXPOOL: op.out_dims, ref.ATTN_SCORES: op.out_dims}
            assert f.shape == tuple(want.get(op.kind, op.out_dims[:2]))
            assert s.shape == f.shape + (T,) and set(np.unique(s)) <= {0, 1}
            np.testing.assert_array_equal(s.sum(axis=-1), f, err_msg=f"op {op.index} ({op.name}) counts")
            # at D = T a neuron fires its count at steps 0..count-1
            np.testing.assert_array_equal(s, (np.arange(T) < f[..., None]).astype(s.dtype),
                                          err_msg=f"op {op.index} ({op.name}) spike times")


def _golden(name: str, dtype) -> np.ndarray:
    path = os.path.join(GOLDEN, name)
    assert os.path.isfile(path), f"{path} is missing (committed golden data; `make testdata` regenerates it)"
    return np.fromfile(path, dtype=dtype)


def test_spiking_runs_match_the_committed_golden_logits():
    """The reference model's committed golden case: fused and spiking at D = 0, 3 and T reproduce
    the committed logits of every image (a change in reference.py that moves them fails here, not
    only in the runtimes' golden tests), D = 0 differs from D = T, and at D = T spiking equals fused."""
    img = Image.load(os.path.join(GOLDEN, "model.csd"))
    T = img.time_steps
    x = _golden("inputs.u8", np.uint8).reshape(-1, *img.input_shape)
    assert len(x) == 6
    fused = ref.run_batch(img, x, "fused")
    np.testing.assert_array_equal(fused, _golden("fused.logits.i32", "<i4").reshape(len(x), img.classes))
    for delay in (0, 3, T):
        want = _golden(f"spiking_D{delay}.logits.i32", "<i4").reshape(len(x), img.classes)
        got = ref.run_batch(img, x, "spiking", delay=delay)
        assert got.dtype == np.int32 and got.shape == (len(x), img.classes)
        np.testing.assert_array_equal(got, want, err_msg=f"spiking D = {delay}")
        # one image at a time gives the same logits as the batch
        np.testing.assert_array_equal(ref.run(img, x[0], "spiking", delay=delay), want[0], err_msg=f"D = {delay}")
    np.testing.assert_array_equal(ref.run_batch(img, x, "spiking", delay=T), fused)
    assert (ref.run_batch(img, x, "spiking", delay=0) != fused).any(axis=1).all()  # the delay matters here
    with pytest.raises(ValueError):
        ref.run(img, x[0], "spiking", delay=T + 1)


@needs_fashion_mnist
def test_agreement_with_fake_quant(image, packed, test_images):
    pred_path = os.path.join(packed[1], "test_pred.npy")
    if not os.path.isfile(pred_path):
        missing(f"{pred_path} missing (committed with the export)")
    want = np.load(pred_path)[:500]
    got = ref.predict(ref.run_batch(image, test_images[0][:len(want)], "fused"))
    agreement = float(np.mean(got == want))
    assert agreement >= 0.99, f"fused predictions agree with the fake-quant model on {100 * agreement:.2f}%"


def _runtime_logits(model: str, count: int, *options: str) -> np.ndarray:
    """The host runtime's logits (csdpack trace) of the first ``count`` Fashion-MNIST test images."""
    out = subprocess.run([CSDPACK, "trace", model, "--index", "0", "--count", str(count), *options],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    rows = [[int(v) for v in line.split()[1:]] for line in out.splitlines() if line.startswith("logits ")]
    assert len(rows) == count, out
    return np.array(rows, dtype=np.int32)


@needs_csdpack
@needs_fashion_mnist
def test_long_trains_and_other_levels(packed, tmp_path, test_images):
    """T > 8 (uint16 trains in the spiking plan) with L < T still gives fused == spiking at D = T; the
    header's delay (4) is the default, and the Swift host runtime agrees with the reference there."""
    export = packed[1]
    out = str(tmp_path / "t10.csd")
    subprocess.run([CSDPACK, "convert", os.path.join(export, "model.safetensors"),
                    "--config", os.path.join(export, "model.json"), "-o", out,
                    "--time-steps", "10", "--levels", "5", "--delay", "4", "--force"],
                   check=True, capture_output=True, timeout=120)
    img = Image.load(out)
    assert (img.time_steps, img.levels, img.delay) == (10, 5, 4)
    x = test_images[0][:4]
    np.testing.assert_array_equal(ref.run_batch(img, x, "fused"), ref.run_batch(img, x, "spiking", delay=10))
    default = ref.run_batch(img, x, "spiking")  # the header's delay 4
    np.testing.assert_array_equal(default, ref.run_batch(img, x, "spiking", delay=4))
    np.testing.assert_array_equal(default, _runtime_logits(out, len(x), "--mode", "spiking"))


@needs_fashion_mnist
def test_cli(packed, tmp_path, capsys):
    p = tmp_path / "m.csd"
    p.write_bytes(packed[0])
    assert ref.main([str(p), "--data", "fashion-mnist", "--limit", "8", "--mode", "both"]) == 0
    out = capsys.readouterr().out
    assert "fused: accuracy" in out and "logits differ on 0 of 8" in out
