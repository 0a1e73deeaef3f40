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

from conftest import CSDPACK, REPO, attention_unit_image, missing, needs_csdpack, needs_fashion_mnist

from csdformer import reference as ref
from csdformer.reference import Image, ImageError

EXPORTS = [os.path.join(REPO, "Toolchain", "models", "fmnist-tiny")]
# The committed golden case of the reference model (Tests/TestData, from Tests/TestPlan/plan.json).
GOLDEN = os.path.join(REPO, "Tests", "TestData", "fmnist_tiny")
MODE_NAMES = ("fused", "spiking")  # ref.FUSED, ref.SPIKING


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
    assert image.magic == 0x46445343 and image.format_version == 5 and image.math_version == 2
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
    (lambda b: b[:4] + b"\x02" + b[5:], "format_version"),  # format 2 (reserved1, one scratch): repack
    (lambda b: b[:4] + b"\x03" + b[5:], "format_version"),  # format 3 (reserved0, no bands): repack
    (lambda b: b[:4] + b"\x04" + b[5:], "format_version"),  # format 4 (no attention units): repack
    (lambda b: b[:4] + b"\x06" + b[5:], "format_version"),
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


def _op(kind, in_dims, out_dims, heads=0, flags=0, index=0):
    return ref.Op(index, kind, flags, 0, 0, in_dims, out_dims, heads, (0, 0), (0, 0), (0, 0), 0, 0, 0)


def test_stream_neuron_scratch():
    """FORMAT.md "Kernel scratch": a stream neuron needs none fused and, spiking, one token's [D][T] int16
    steps widened to int32, align16(4 T D)."""
    def need(N, D, T, mode):
        img = Image(data=b"", time_steps=T, tokens=N, width=D)
        img.ops = [_op(ref.STREAM_NEURON, (N, D, 1), (N, D, 1))]
        assert img.scratch_bytes(mode) == img.op_scratch_bytes(img.ops[0], mode)  # the largest of one op
        return img.op_scratch_bytes(img.ops[0], mode)

    assert need(49, 64, 7, ref.FUSED) == 0
    assert need(49, 64, 7, ref.SPIKING) == 4 * 7 * 64
    assert need(3, 5, 3, ref.SPIKING) == 64  # 60 rounded up to 16
    assert need(3, 5, 16, ref.SPIKING) == 320


def test_conv_linear_and_other_scratch():
    """FORMAT.md "Kernel scratch", by hand: conv (K = Cin * 9) and linear (K = Din), G = ceil(K / 4): fused
    32 G, spiking max(32 G, 16 G + align16(4 T outputs)); a channel-major linear the same as any linear;
    max-pool and classifier none."""
    img = Image(data=b"", time_steps=7, tokens=49, width=64)
    conv = _op(ref.CONV3X3, (32, 7, 7), (64, 7, 7))           # K 288, G 72
    assert img.op_scratch_bytes(conv, ref.FUSED) == 32 * 72
    assert img.op_scratch_bytes(conv, ref.SPIKING) == 16 * 72 + 4 * 7 * 64
    pixels = _op(ref.CONV3X3, (1, 28, 28), (16, 28, 28))      # K 9, G 3
    assert img.op_scratch_bytes(pixels, ref.FUSED) == 96
    assert img.op_scratch_bytes(pixels, ref.SPIKING) == 48 + 448
    fc1 = _op(ref.LINEAR, (49, 64, 1), (49, 128, 1))          # G 16
    assert img.op_scratch_bytes(fc1, ref.FUSED) == 512
    assert img.op_scratch_bytes(fc1, ref.SPIKING) == 256 + 7 * 128 * 4
    v = _op(ref.LINEAR, (49, 64, 1), (49, 64, 1), flags=ref.OPF_CHANNEL_MAJOR)
    assert img.op_scratch_bytes(v, ref.FUSED) == 512 and img.op_scratch_bytes(v, ref.SPIKING) == 256 + 7 * 64 * 4
    odd = _op(ref.LINEAR, (3, 5, 1), (3, 3, 1))               # G 2; 4 T outputs = 84 -> 96
    assert img.op_scratch_bytes(odd, ref.FUSED) == 64 and img.op_scratch_bytes(odd, ref.SPIKING) == 32 + 96
    for op in (_op(ref.MAXPOOL, (16, 28, 28), (16, 14, 14)), _op(ref.CLASSIFIER, (49, 64, 1), (10, 1, 1))):
        assert img.op_scratch_bytes(op, ref.FUSED) == img.op_scratch_bytes(op, ref.SPIKING) == 0


def test_arena_bytes_is_the_end_of_the_furthest_buffer_or_scratch(image):
    """FORMAT.md "Kernel scratch" (format 3): each op has its own scratch, placed by the packer where no
    live buffer is. The reference model's largest needs are 2,304 bytes fused (the 288-input conv) and
    3,840 spiking (the 64 -> 128 linear); the fused peak is the attention pair (its 624 bytes next to the
    stream, q, k and v), the spiking one the 64 -> 128 linear (the stream, u, its output and its scratch)."""
    assert image.scratch_bytes(ref.FUSED) == 288 // 4 * 32 == 2304
    assert image.scratch_bytes(ref.SPIKING) == 64 // 4 * 16 + image.time_steps * 128 * 4 == 3840
    N, D, T = image.tokens, image.width, image.time_steps
    stream = {m: image.buffer_bytes("stream", (N, D), m) for m in (ref.FUSED, ref.SPIKING)}
    counts = N * D  # one byte per neuron: fused counts, and trains at T <= 8
    scores, _ = _pairs(image)[0]
    pair = image.op_scratch_bytes(scores, ref.FUSED)
    assert pair == 208 + 32 * 13 == 624
    assert image.arena_bytes[ref.FUSED] == stream[ref.FUSED] + 3 * counts + pair == 16304
    assert image.arena_bytes[ref.SPIKING] == stream[ref.SPIKING] + counts + 2 * counts + 3840 == 57152
    # recomputed from the records: the end of the furthest buffer (fused, a producer's band: FORMAT.md
    # "Bands in the fused plan") or scratch, rounded up to 16
    for mode in (ref.FUSED, ref.SPIKING):
        end = 0
        for op in image.ops:
            if op.kind not in (ref.CLASSIFIER, ref.ATTN_SCORES):
                if op.stream_out:
                    size = image.buffer_bytes("stream", (N, D), mode)
                elif op.band and mode == ref.FUSED:
                    rows = list(op.out_dims)
                    rows[1 if op.kind == ref.CONV3X3 else 0] = op.band
                    size = int(np.prod(rows))  # one byte per count
                else:
                    size = image.buffer_bytes("counts", op.out_dims, mode)
                end = max(end, op.output[mode] + size)
            need = image.op_scratch_bytes(op, mode)
            assert (op.scratch[mode] == 0) if need == 0 else (op.scratch[mode] % 16 == 0)
            if need:
                end = max(end, op.scratch[mode] + need)
        assert image.arena_bytes[mode] == (end + 15) // 16 * 16


def test_attention_pair_scratch():
    # FORMAT.md "Kernel scratch": the pair's need, hd = D / heads, Gq = ceil(hd / 4), Gn = ceil(N / 4):
    # fused align16(4 N) + 32 max(Gq, Gn), spiking max(fused, 64 + 16 max(Gq, Gn) + align16(N b))
    def pair_need(N, D, heads, T, mode):
        img = Image(data=b"", time_steps=T, tokens=N, width=D)
        scores = _op(ref.ATTN_SCORES, (N, D, 1), (heads, N, N), heads, index=0)
        values = _op(ref.ATTN_VALUES, (heads, N, N), (N, D, 1), heads, index=1)
        img.ops = [scores, values]
        need = img.attention_scratch_bytes(scores, mode)
        assert img.attention_scratch_bytes(values, mode) == need == img.scratch_bytes(mode)  # both records
        assert img.op_scratch_bytes(scores, mode) == img.op_scratch_bytes(values, mode) == need
        return need

    # the reference model's blocks: hd 16, N 49: Gq 4, Gn 13
    assert pair_need(49, 64, 4, 7, ref.FUSED) == 208 + 32 * 13
    assert pair_need(49, 64, 4, 7, ref.SPIKING) == 208 + 32 * 13  # above 64 + 16 x 13 + 64
    # small pairs: Gq = Gn = 1, where the spiking list (two-byte trains) is above the fused need; Gn = 3;
    # and a wide head (hd 64, Gq 16 > Gn 2)
    assert pair_need(4, 4, 1, 4, ref.FUSED) == 16 + 32
    assert pair_need(4, 4, 1, 10, ref.SPIKING) == 64 + 16 + 16
    assert pair_need(12, 4, 1, 10, ref.FUSED) == 48 + 32 * 3
    assert pair_need(12, 4, 1, 10, ref.SPIKING) == max(48 + 96, 64 + 48 + 32)
    assert pair_need(7, 128, 2, 4, ref.FUSED) == 32 + 32 * 16
    assert pair_need(7, 128, 2, 16, ref.SPIKING) == max(32 + 32 * 16, 64 + 16 * 16 + 16)


def _pairs(image):
    """(ATTN_SCORES, ATTN_VALUES) of every attention block."""
    return [(op, image.ops[op.index + 1]) for op in image.ops if op.kind == ref.ATTN_SCORES]


def _set_offset(packed, op_index: int, field: int, mode: int, offset: int) -> bytes:
    """The image with one arena offset of one op record (field 20 input, 28 input2, 36 output; mode 0
    fused, 1 spiking) replaced, the CRC recomputed."""
    m = bytearray(packed[0])
    struct.pack_into("<I", m, 128 + 64 * op_index + field + 4 * mode, offset)
    return _recrc(m)


def _block(image, scores):
    """The attention block of a pair: (u, v, k, q) = the stream neuron and the three projections, in
    the packer's order (format 3: v first, channel-major, then k, then q)."""
    return tuple(image.ops[scores.index - i] for i in (4, 3, 2, 1))


def test_attention_pair_in_the_plan(image):
    """Format 3: the scores hold no arena buffer (the scores' output and the values' input are 0); the
    packer projects v first (CHANNEL_MAJOR, into its own buffer), then k, then q over its input u, and
    the attention output goes over q (FORMAT.md "In place"); both records of the pair share one scratch."""
    pairs = _pairs(image)
    assert len(pairs) == 2
    for scores, values in pairs:
        assert values.kind == ref.ATTN_VALUES and values.heads == scores.heads
        assert scores.output == (0, 0) and values.input == (0, 0)
        assert values.output == scores.input, "the attention output replaces q"
        u, v, k, q = _block(image, scores)
        assert u.kind == ref.STREAM_NEURON
        assert all(p.kind == ref.LINEAR and not p.stream_out and p.input == u.output for p in (v, k, q))
        assert v.channel_major and v.flags == ref.OPF_CHANNEL_MAJOR
        assert not k.channel_major and not q.channel_major
        assert (v.output, k.output, q.output) == (values.input2, scores.input2, scores.input)
        assert q.output == q.input, "the q projection writes over its input"
        assert v.output != v.input, "a channel-major output is never in place"
        assert values.scratch == scores.scratch
        for mode in (ref.FUSED, ref.SPIKING):
            assert image.op_scratch_bytes(scores, mode) > 0 and scores.scratch[mode] % 16 == 0


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
    # the q projection (Din == Dout) may write over its input, but only exactly there
    scores, _ = _pairs(image)[0]
    q = image.ops[scores.index - 1]
    src = q.input[0]
    assert q.output[0] == src
    off = src - 16 if src >= 16 else src + 16
    with pytest.raises(ImageError, match=rf"op {q.index} \(LINEAR\): arena offsets \(fused\): "
                                         rf"output \[{off}, \d+\) overlaps input \[{src}, \d+\) \(only at its "
                                         rf"offset {src}: in place\)"):
        Image.parse(_set_offset(packed, q.index, 36, ref.FUSED, off))


def test_in_place_only_for_a_square_linear(image, packed):
    # fc1 (D -> 2D) writing over its input at the same offset is refused: not a square LINEAR (the
    # spiking arena is widened so that the wider output fits: the overlap, not the arena's end, refuses)
    fc1 = next(op for op in image.ops if op.kind == ref.LINEAR and not op.stream_out
               and op.in_dims[1] != op.out_dims[1])
    src = fc1.input[1]
    m = bytearray(_set_offset(packed, fc1.index, 36, ref.SPIKING, src))
    wide = src + image.buffer_bytes("counts", fc1.out_dims, ref.SPIKING)
    struct.pack_into("<I", m, 56, max(image.arena_bytes[1], (wide + 15) // 16 * 16))
    with pytest.raises(ImageError, match=rf"op {fc1.index} \(LINEAR\): arena offsets \(spiking\): "
                                         rf"output \[{src}, \d+\) overlaps input \[{src}, \d+\)$"):
        Image.parse(_recrc(m))


@pytest.mark.parametrize("mode", [ref.FUSED, ref.SPIKING], ids=MODE_NAMES)
def test_channel_major_linear_is_never_in_place(image, packed, mode):
    """FORMAT.md "In place": a LINEAR with CHANNEL_MAJOR may not write over its input (it stores [Dout][N]
    while it reads token rows): the v projection moved onto its input u is refused, and so is the q
    projection (in place over u) once it carries CHANNEL_MAJOR."""
    scores, _ = _pairs(image)[0]
    _, v, _, q = _block(image, scores)
    src = v.input[mode]
    with pytest.raises(ImageError, match=rf"op {v.index} \(LINEAR\): arena offsets \({['fused', 'spiking'][mode]}\): "
                                         rf"output \[{src}, \d+\) overlaps input \[{src}, \d+\)$"):
        Image.parse(_set_offset(packed, v.index, 36, mode, src))
    m = bytearray(packed[0])
    m[128 + 64 * q.index + 1] |= ref.OPF_CHANNEL_MAJOR
    with pytest.raises(ImageError, match=rf"op {q.index} \(LINEAR\): arena offsets \(fused\): "
                                         rf"output \[{q.input[0]}, \d+\) overlaps input"):
        Image.parse(_recrc(m))


# ---- format 3: the channel-major v and each op's kernel scratch -------------------------------------


def _set_flags(packed, op_index: int, flags: int) -> bytes:
    m = bytearray(packed[0])
    m[128 + 64 * op_index + 1] = flags
    return _recrc(m)


def _set_scratch(packed, offsets: dict) -> bytes:
    """The image with scratch offsets replaced: {(op index, mode): offset}, the CRC recomputed."""
    m = bytearray(packed[0])
    for (index, mode), offset in offsets.items():
        struct.pack_into("<I", m, 128 + 64 * index + 56 + 4 * mode, offset)
    return _recrc(m)


@pytest.mark.parametrize("kind", [ref.CONV3X3, ref.MAXPOOL, ref.STREAM_NEURON, ref.ATTN_SCORES, ref.ATTN_VALUES,
                                  ref.CLASSIFIER], ids=lambda k: ref.KIND_NAMES[k])
def test_channel_major_flag_only_on_a_linear(image, packed, kind):
    op = next(o for o in image.ops if o.kind == kind and not o.input_pixels)
    with pytest.raises(ImageError, match=rf"op {op.index} \({op.name}\): flags 0x{op.flags | 16:02x}: "
                                         rf"CHANNEL_MAJOR is allowed only on a LINEAR"):
        Image.parse(_set_flags(packed, op.index, op.flags | ref.OPF_CHANNEL_MAJOR))


def test_channel_major_and_stream_out_not_both(image, packed):
    add = next(o for o in image.ops if o.kind == ref.LINEAR and o.stream_out)
    with pytest.raises(ImageError, match=rf"op {add.index} \(LINEAR\): flags 0x12: a LINEAR carries STREAM_OUT "
                                         rf"or CHANNEL_MAJOR, not both"):
        Image.parse(_set_flags(packed, add.index, ref.OPF_STREAM_OUT | ref.OPF_CHANNEL_MAJOR))


@pytest.mark.parametrize("flag", [ref.OPF_STREAM_SET, ref.OPF_TOKEN_BIAS])
def test_linear_stream_set_and_token_bias_refused(image, packed, flag):
    # FORMAT.md: LINEAR may carry STREAM_OUT or CHANNEL_MAJOR only (STREAM_SET, TOKEN_BIAS: CONV3X3)
    add = next(o for o in image.ops if o.kind == ref.LINEAR and o.stream_out)
    with pytest.raises(ImageError, match=rf"op {add.index} \(LINEAR\): flags .* not allowed for this kind"):
        Image.parse(_set_flags(packed, add.index, add.flags | flag))


def test_v_must_be_channel_major(image, packed):
    """FORMAT.md "Channel-major values": the values' v is a value kind of its own; a plain counts value
    there (the v projection without CHANNEL_MAJOR) fails the shape chaining."""
    scores, values = _pairs(image)[0]
    _, v, _, _ = _block(image, scores)
    with pytest.raises(ImageError, match=rf"op {values.index} \(ATTN_VALUES\): chaining \(fused\): input2 \(v\) "
                                         rf"at {v.output[0]} is the counts \[49, 64, 1\] written by op {v.index}, "
                                         rf"expected the channel-major counts \[49, 64, 1\]"):
        Image.parse(_set_flags(packed, v.index, 0))


def test_channel_major_read_by_another_op(image, packed):
    """Only ATTN_VALUES reads a channel-major value: the k projection made channel-major is refused where
    the scores read it as k (and the packer's plan is otherwise unchanged)."""
    scores, _ = _pairs(image)[0]
    _, _, k, _ = _block(image, scores)
    with pytest.raises(ImageError, match=rf"op {scores.index} \(ATTN_SCORES\): chaining \(fused\): input2 \(k\) "
                                         rf"at {k.output[0]} is the channel-major counts \[49, 64, 1\] written by "
                                         rf"op {k.index} \(a channel-major value: only ATTN_VALUES reads it, as v\)"):
        Image.parse(_set_flags(packed, k.index, ref.OPF_CHANNEL_MAJOR))


@needs_csdpack
def test_scratch_offsets_match_csdpack_inspect(image, packed, tmp_path):
    """The reference's per-op needs and the image's offsets against csdpack inspect --json (the Swift
    planner's report): every op's scratch offset and need in both modes, and the largest needs."""
    import json
    path = tmp_path / "m.csd"
    path.write_bytes(packed[0])
    report = json.loads(subprocess.run([CSDPACK, "inspect", str(path), "--json"], check=True, capture_output=True,
                                       text=True, timeout=120).stdout)
    assert report["format_version"] == 5
    assert report["largest_scratch_bytes"] == {"fused": image.scratch_bytes(ref.FUSED),
                                               "spiking": image.scratch_bytes(ref.SPIKING)}
    for op, entry in zip(image.ops, report["ops"]):
        for mode, name in enumerate(MODE_NAMES):
            arena = entry["arena"][name]
            need = image.op_scratch_bytes(op, mode)
            assert arena.get("scratch_bytes", 0) == need, f"op {op.index} {name}"
            assert arena.get("scratch", 0) == op.scratch[mode], f"op {op.index} {name}"
            # the output buffer's size: fused, a producer's band (FORMAT.md "Bands in the fused plan")
            value = image.output_value(op, mode)
            assert arena.get("output_bytes", 0) == (image.buffer_bytes(*value, mode) if value else 0), \
                f"op {op.index} {name}"
        assert entry.get("band", 0) == op.band, f"op {op.index}"
    # the peak of live_bytes (buffers and the op's own scratch) is the arena
    for name in MODE_NAMES:
        assert max(e["live_bytes"][name] for e in report["ops"]) == report["arena_bytes"][name]


@pytest.mark.parametrize("target", ["input", "output", "scores-k", "stream-add"])
@pytest.mark.parametrize("mode", [ref.FUSED, ref.SPIKING], ids=MODE_NAMES)
def test_scratch_overlapping_the_ops_own_buffers(image, packed, mode, target):
    """An op's scratch apart from the buffers it reads and writes (FORMAT.md "Kernel scratch"): the k
    projection's over its input u or its output k, the pair's over k, a stream add's over the stream."""
    scores, _ = _pairs(image)[0]
    _, _, k, _ = _block(image, scores)
    add = image.ops[scores.index + 2]
    assert add.stream_out and not add.stream_set
    op, at, name = {"input": (k, k.input[mode], "input"), "output": (k, k.output[mode], "output"),
                    "scores-k": (scores, scores.input2[mode], "input2 \\(k\\)"),
                    "stream-add": (add, add.output[mode], "its stream")}[target]
    offsets = {(op.index, mode): at}
    if op is scores:
        offsets[(op.index + 1, mode)] = at  # the values' record too: the pair shares one scratch
    need = image.op_scratch_bytes(op, mode)
    with pytest.raises(ImageError, match=rf"op {op.index} \({op.name}\): kernel scratch \({MODE_NAMES[mode]}\): "
                                         rf"\[{at}, {at + need}\) overlaps {name} \[{at}, \d+\)"):
        Image.parse(_set_scratch(packed, offsets))


@pytest.mark.parametrize("writer", ["k-projection", "pair"])
@pytest.mark.parametrize("mode", [ref.FUSED, ref.SPIKING], ids=MODE_NAMES)
def test_scratch_overwrites_v_before_the_values_read_it(image, packed, mode, writer):
    """A buffer overwritten between its producer and its reader by another op's kernel scratch is
    refused like one overwritten by an output (FORMAT.md "Arena plan"): the k projection's scratch, or
    the pair's (both records), moved onto v, which the k projection and the scores do not touch."""
    scores, values = _pairs(image)[0]
    _, v, k, _ = _block(image, scores)
    at = v.output[mode]
    if writer == "k-projection":
        op, offsets = k, {(k.index, mode): at}
    else:
        op, offsets = scores, {(scores.index, mode): at, (values.index, mode): at}
    need = image.op_scratch_bytes(op, mode)
    with pytest.raises(ImageError, match=rf"op {values.index} \(ATTN_VALUES\): chaining \({MODE_NAMES[mode]}\): "
                                         rf"input2 \(v\) at {at}, the channel-major counts \[49, 64, 1\] written by "
                                         rf"op {v.index}, was overwritten by op {op.index}'s kernel scratch "
                                         rf"\[{at}, {at + need}\) before this op reads it"):
        Image.parse(_set_scratch(packed, offsets))


def test_scratch_overwrites_the_stream_before_the_add(image, packed):
    # the q projection's scratch over the stream, which it does not read: the stream add after the pair
    # then finds its stream overwritten
    scores, _ = _pairs(image)[0]
    _, _, _, q = _block(image, scores)
    add = image.ops[scores.index + 2]
    stream = add.output[0]
    with pytest.raises(ImageError, match=rf"op {add.index} \(LINEAR\): chaining \(fused\): the stream it adds into "
                                         rf"at {stream}, the stream \[49, 64\] written by op \d+, was overwritten "
                                         rf"by op {q.index}'s kernel scratch"):
        Image.parse(_set_scratch(packed, {(q.index, ref.FUSED): stream}))


@pytest.mark.parametrize("mode", [ref.FUSED, ref.SPIKING], ids=MODE_NAMES)
def test_values_scratch_differs_from_the_scores(image, packed, mode):
    scores, values = _pairs(image)[0]
    at = scores.scratch[mode]
    other = at - 16 if at >= 16 else at + 16
    with pytest.raises(ImageError, match=rf"op {values.index} \(ATTN_VALUES\): kernel scratch \({MODE_NAMES[mode]}\): "
                                         rf"offset {other}, but the scores \(op {scores.index}\) have {at}: the "
                                         rf"attention pair shares one kernel scratch"):
        Image.parse(_set_scratch(packed, {(values.index, mode): other}))


@pytest.mark.parametrize("kind, mode", [(ref.MAXPOOL, ref.FUSED), (ref.CLASSIFIER, ref.SPIKING),
                                        (ref.STREAM_NEURON, ref.FUSED)],
                         ids=["maxpool-fused", "classifier-spiking", "stream_neuron-fused"])
def test_scratch_without_a_need_is_0(image, packed, kind, mode):
    op = next(o for o in image.ops if o.kind == kind)
    assert image.op_scratch_bytes(op, mode) == 0 and op.scratch[mode] == 0
    with pytest.raises(ImageError, match=rf"op {op.index} \({op.name}\): kernel scratch \({MODE_NAMES[mode]}\): "
                                         rf"offset 16, expected 0 \(this op needs no kernel scratch\)"):
        Image.parse(_set_scratch(packed, {(op.index, mode): 16}))


@pytest.mark.parametrize("where, message", [
    ("unaligned", "offset {at} is not 16-aligned"),
    ("at-the-end", "offset {at} is not inside the {arena}-byte arena"),
    ("past-the-end", r"\[{at}, {end}\) \({need} bytes\) leaves the {arena}-byte arena"),
], ids=["unaligned", "at-the-end", "past-the-end"])
def test_scratch_inside_the_arena(image, packed, where, message):
    op = image.ops[0]  # the encoding conv: 96 bytes fused
    arena, need = image.arena_bytes[ref.FUSED], image.op_scratch_bytes(op, ref.FUSED)
    at = {"unaligned": op.scratch[0] + 8, "at-the-end": arena, "past-the-end": arena - 16}[where]
    text = message.format(at=at, arena=arena, end=at + need, need=need)
    with pytest.raises(ImageError, match=rf"op 0 \(CONV3X3\): kernel scratch \(fused\): {text}"):
        Image.parse(_set_scratch(packed, {(0, ref.FUSED): at}))


@pytest.mark.parametrize("mode", [ref.FUSED, ref.SPIKING], ids=MODE_NAMES)
@pytest.mark.parametrize("delta", [16, 32])
def test_arena_bytes_must_be_the_plan_end(image, packed, mode, delta):
    """arena_bytes is exactly the end of the furthest buffer or scratch, rounded up to 16: a larger one
    (an arena with room for a format 2 scratch at its end, say) is refused."""
    m = bytearray(packed[0])
    struct.pack_into("<I", m, 52 + 4 * mode, image.arena_bytes[mode] + delta)
    need = image.arena_bytes[mode]
    with pytest.raises(ImageError, match=rf"arena_bytes: {MODE_NAMES[mode]} arena is {need + delta}, the plan "
                                         rf"needs {need} \(the end of the furthest buffer or kernel scratch"):
        Image.parse(_recrc(m))


def test_a_smaller_arena_cuts_the_scratch(image, packed):
    # 16 bytes less fused: the pair's scratch, which ends the fused plan, leaves the arena
    scores, _ = _pairs(image)[0]
    m = bytearray(packed[0])
    arena = image.arena_bytes[ref.FUSED] - 16
    struct.pack_into("<I", m, 52, arena)
    at = scores.scratch[ref.FUSED]
    assert at + image.op_scratch_bytes(scores, ref.FUSED) == arena + 16
    with pytest.raises(ImageError, match=rf"op \d+ \(\w+\): (kernel scratch|arena offsets) \(fused\): .*leaves the "
                                         rf"{arena}-byte arena"):
        Image.parse(_recrc(m))


# ---- format 4: bands ---------------------------------------------------------------------------------------

# (producer, band): the packer bands every eligible pair of the reference model (FORMAT.md "Bands")
BANDED = [(0, 2), (2, 4), (13, 8), (23, 8)]
ONLY_TWO_PAIRS = (r"only a CONV3X3 without STREAM_OUT \(before a MAXPOOL with pool 2\) or a LINEAR without STREAM_OUT "
                  r"or CHANNEL_MAJOR \(before a LINEAR\) has a band")


def _set_band(packed, op_index: int, band: int) -> bytes:
    """The image with one op record's band (bytes 18..19) replaced, the CRC recomputed."""
    m = bytearray(packed[0])
    struct.pack_into("<H", m, 128 + 64 * op_index + 18, band)
    return _recrc(m)


def test_the_packer_bands_every_eligible_pair(image):
    """FORMAT.md "Bands": the two convs before a 2x2 max-pool run 2 and 4 map rows at a time (56 positions,
    whole blocks), fc1 before fc2 in both blocks eight tokens at a time. The consumer reads the producer's output at its offset in both plans: fused
    the band buffer ([C][band][W] or [band][D] counts), spiking the whole value (the spiking plan ignores bands)."""
    assert [(op.index, op.band) for op in image.ops if op.band] == BANDED
    for i, band in BANDED:
        producer, consumer = image.ops[i], image.ops[i + 1]
        assert consumer.band == 0 and consumer.in_dims == producer.out_dims
        assert consumer.input == producer.output
        c, h, w = producer.out_dims
        shape = (c, band, w) if producer.kind == ref.CONV3X3 else (band, h, w)
        assert image.band_shape(producer) == shape
        assert image.output_value(producer, ref.FUSED) == ("band", shape)
        assert image.buffer_bytes("band", shape, ref.FUSED) == (c * band * w if producer.kind == ref.CONV3X3
                                                                else band * h)
        assert image.output_value(producer, ref.SPIKING) == ("counts", producer.out_dims)
    assert [(image.ops[i + 1].kind, image.ops[i + 1].pool) for i, _ in BANDED[:2]] == [(ref.MAXPOOL, 2)] * 2
    assert all(image.ops[i].kind == image.ops[i + 1].kind == ref.LINEAR for i, _ in BANDED[2:])


@pytest.mark.parametrize("op_index, band, message", [
    # format 5: a STREAM_NEURON with a band starts an attention unit (FORMAT.md "Attention units"); the MLP's is
    # followed by fc1, not by the v linear
    (12, 2, r"op 12 \(STREAM_NEURON\): band 2: starts an attention unit, but is followed by op 13 \(LINEAR with "
            r"flags 0x00\) where the unit has a LINEAR with CHANNEL_MAJOR \(v\)"),
    (4, 2, rf"op 4 \(CONV3X3\): band 2: {ONLY_TWO_PAIRS}"),     # the tokenizer's conv writes the stream
    (6, 8, rf"op 6 \(LINEAR\): band 8: {ONLY_TWO_PAIRS}"),      # the v projection: CHANNEL_MAJOR
    (11, 8, rf"op 11 \(LINEAR\): band 8: {ONLY_TWO_PAIRS}"),    # a stream add
    (8, 8, r"op 8 \(LINEAR\): band 8: followed by op 9 \(ATTN_SCORES\), expected a LINEAR"),
    (0, 3, r"op 0 \(CONV3X3\): band 3: expected an even number of rows in 2\.\.H = 2\.\.28"),
    (0, 30, r"op 0 \(CONV3X3\): band 30: expected an even number of rows in 2\.\.H = 2\.\.28"),
    (2, 16, r"op 2 \(CONV3X3\): band 16: expected an even number of rows in 2\.\.H = 2\.\.14"),
    (13, 50, r"op 13 \(LINEAR\): band 50: expected a number of tokens in 1\.\.N = 1\.\.49"),
    (1, 2, r"op 1 \(MAXPOOL\): band 2: the consumer of op 0's band has band 0 \(a unit is two ops\)"),
    (14, 8, r"op 14 \(LINEAR\): band 8: the consumer of op 13's band has band 0 \(a unit is two ops\)"),
], ids=["stream-neuron", "stream-conv", "channel-major", "stream-add", "before-attention", "odd", "above-H",
        "above-H-second-conv", "above-N", "consumer-maxpool", "consumer-linear"])
def test_band_fields_refused(packed, op_index, band, message):
    """FORMAT.md "Bands": a band on any other op, or out of its range, is CSD_E_OP_FIELDS (the reference's op
    field errors: "op i (KIND): band b: ...")."""
    with pytest.raises(ImageError, match=message):
        Image.parse(_set_band(packed, op_index, band))


def test_band_before_a_3x3_pool_refused(image, packed):
    # op 1 made a 3x3 max-pool (28 -> 14 too, so its dims still hold): op 0's band now has no 2x2 pool after it
    assert image.ops[1].pool == 2 and ref._pool_hw(28, 28, 3) == (14, 14)
    m = bytearray(packed[0])
    m[128 + 64 * 1 + 3] = 3
    with pytest.raises(ImageError, match=r"op 0 \(CONV3X3\): band 2: followed by op 1 \(MAXPOOL with pool 3\), "
                                         r"expected a MAXPOOL with pool 2"):
        Image.parse(_recrc(m))


def test_band_consumer_reads_the_producers_dims(packed):
    # the max-pool after the banded conv claims 15 input channels (and keeps its own dims consistent)
    m = bytearray(packed[0])
    struct.pack_into("<H", m, 128 + 64 * 1 + 4, 15)
    struct.pack_into("<H", m, 128 + 64 * 1 + 10, 15)
    with pytest.raises(ImageError, match=r"op 1 \(MAXPOOL\): dims: the consumer of op 0's band reads its output "
                                         r"\[16, 28, 28\] \(in \[15, 28, 28\], out \[15, 14, 14\]\)"):
        Image.parse(_recrc(m))


@pytest.mark.parametrize("mode", [ref.FUSED, ref.SPIKING], ids=MODE_NAMES)
def test_band_consumer_input_is_the_producers_output(image, packed, mode):
    """FORMAT.md "Bands": the consumer's input equals the producer's output in both plans (CSD_E_ARENA_PLAN)."""
    fc1, fc2 = image.ops[13], image.ops[14]
    at = fc2.input[mode] + 16
    with pytest.raises(ImageError, match=rf"op 14 \(LINEAR\): arena offsets \({MODE_NAMES[mode]}\): input {at}, "
                                         rf"expected {fc1.output[mode]} \(the output of op 13, whose band this op "
                                         rf"consumes\)"):
        Image.parse(_set_offset(packed, 14, 20, mode, at))


def test_band_consumer_scratch_over_the_producers_input(image, packed):
    """FORMAT.md "Bands in the fused plan": while fc1 and fc2 run band by band, fc1 still reads u: fc2's scratch
    over u is refused fused (CSD_E_ARENA_PLAN); spiking the two ops run one after the other, and there u, dead
    after fc1, may hold fc2's scratch."""
    fc1, fc2 = image.ops[13], image.ops[14]
    u = fc1.input[ref.FUSED]
    need = image.op_scratch_bytes(fc2, ref.FUSED)
    with pytest.raises(ImageError, match=rf"op 14 \(LINEAR\): kernel scratch \(fused\): \[{u}, {u + need}\) overlaps "
                                         rf"op 13's input \[{u}, {u + 49 * 64}\): both are live while the band unit "
                                         rf"of ops 13 and 14 runs"):
        Image.parse(_set_scratch(packed, {(14, ref.FUSED): u}))
    u = fc1.input[ref.SPIKING]
    assert image.op_scratch_bytes(fc2, ref.SPIKING) <= image.buffer_bytes("counts", fc1.in_dims, ref.SPIKING)
    assert Image.parse(_set_scratch(packed, {(14, ref.SPIKING): u})).ops[14].scratch[ref.SPIKING] == u


def test_band_consumer_output_over_the_producers_scratch(image, packed):
    # the encoding conv's scratch moved onto the max-pool's output: both live while the unit runs
    pool = image.ops[1]
    at = pool.output[ref.FUSED]
    need = image.op_scratch_bytes(image.ops[0], ref.FUSED)
    with pytest.raises(ImageError, match=rf"op 1 \(MAXPOOL\): arena offsets \(fused\): output \[{at}, "
                                         rf"{at + 16 * 14 * 14}\) overlaps op 0's kernel scratch \[{at}, "
                                         rf"{at + need}\): both are live while the band unit of ops 0 and 1 runs"):
        Image.parse(_set_scratch(packed, {(0, ref.FUSED): at}))


def _unit_plan(consumer_output: int, reader: bool = False) -> Image:
    """A hand-made arena plan (T = 4) with a band unit of two square LINEARs (FORMAT.md "Bands"): op 0, a conv
    from the pixels to counts [3, 4, 1] (at 0, scratch 96 bytes at 16); op 1, a LINEAR [3, 4, 1] -> [3, 4, 1]
    with band 2 (fused its band [2, 4, 1] at 112, spiking the whole value there; scratch at 128); op 2, the
    consumer, the same LINEAR (output fused at ``consumer_output``, spiking in place at 112; scratch at 176
    fused, 128 spiking); with ``reader``, op 3, another LINEAR reading op 1's output at 112."""
    img = Image(data=b"", time_steps=4, tokens=3, width=4, arena_bytes=(208, 208))

    def linear(index, src, dst, scratch, band=0):
        return ref.Op(index, ref.LINEAR, 0, 0, 0, (3, 4, 1), (3, 4, 1), 0, src, (0, 0), dst, 0, 0, 0,
                      scratch=scratch, band=band)

    img.ops = [ref.Op(0, ref.CONV3X3, ref.OPF_INPUT_PIXELS, 0, 0, (1, 4, 1), (3, 4, 1), 0, (0, 0), (0, 0), (0, 0),
                      0, 0, 0, scratch=(16, 16)),
               linear(1, (0, 0), (112, 112), (128, 128), band=2),
               linear(2, (112, 112), (consumer_output, 112), (176, 128))]
    if reader:
        img.ops.append(linear(3, (112, 112), (0, 0), (16, 16)))
    return img


def test_band_consumer_never_writes_over_the_band():
    """FORMAT.md "Bands in the fused plan": the consumer may not write over the band, even a square LINEAR that
    may otherwise write over its input (FORMAT.md "In place"); the spiking plan ignores bands, and there the
    same consumer writes over the producer's whole output in place."""
    for mode in (ref.FUSED, ref.SPIKING):
        _unit_plan(160)._check_arena(mode)
    with pytest.raises(ImageError, match=r"op 2 \(LINEAR\): arena offsets \(fused\): output \[112, 124\) overlaps "
                                         r"input \[112, 120\) \(the band of op 1: its consumer never writes over "
                                         r"it\)"):
        _unit_plan(112)._check_arena(ref.FUSED)


def test_band_read_by_another_op_is_a_shape_error():
    """FORMAT.md "Bands in the fused plan": the band buffer is chained with the band's shape; a reader
    expecting the whole value there fails the shape chaining (CSD_E_SHAPE), fused; spiking it is the whole
    value (op 2 wrote over it in place there, so op 3 finds op 2's output, of the same shape)."""
    with pytest.raises(ImageError, match=r"op 3 \(LINEAR\): chaining \(fused\): input at 112 is the band of counts "
                                         r"\[2, 4, 1\] written by op 1 \(a band of the fused plan: only op 2, its "
                                         r"consumer, reads it\), expected the counts \[3, 4, 1\]"):
        _unit_plan(160, reader=True)._check_arena(ref.FUSED)
    _unit_plan(160, reader=True)._check_arena(ref.SPIKING)


# ---- format 5: attention units -----------------------------------------------------------------------------

# The first attention block of the reference model (FORMAT.md "Attention units"): its stream neuron (op 5), the
# v, k and q linears (ops 6, 7, 8), the pair (ops 9, 10); op 11, the stream add, reads o. csdpack convert writes
# no unit without --low-ram (which the Swift packer does not have yet), so the unit images here are the packer's
# image with the unit made by hand (conftest.attention_unit_image): with a band of 8 tokens and 4 heads of
# hd = 16, the fused plan holds the stream at 0 ([49][64] int16, 6,272 bytes), o at 6272 (3,136), u at 9408
# ([8][64], 512), v at 9920 ([16][49], 784), k at 10704 ([49][16], 784), q at 11488 ([8][16], 128) and one
# scratch region at 11616 that the linears (512 bytes) and the pair (624) share. The spiking plan is the
# packer's (units ignored).
UNIT, BAND = 5, 8
AT = {"stream": 0, "o": 6272, "u": 9408, "v": 9920, "k": 10704, "q": 11488, "scratch": 11616}
OP_FIELDS, SHAPE, ARENA_PLAN, ARENA_END = -13, -14, -16, -28  # Include/csd.h


def _unit(packed, band=BAND, **kw) -> bytes:
    return attention_unit_image(packed[0], UNIT, band, **kw)


def _field(data: bytes, op_index: int, field: int, fmt: str, value) -> bytes:
    """``data`` with one field of one op record (FORMAT.md "Op table": 1 flags, 4 in_dims, 10 out_dims, 16 heads,
    18 band, 20 input, 28 input2, 36 output, 56 scratch; fused then spiking) replaced, the CRC recomputed."""
    m = bytearray(data)
    struct.pack_into(fmt, m, 128 + 64 * op_index + field, *(value if isinstance(value, tuple) else (value,)))
    return _recrc(m)


def test_attention_unit_is_accepted(packed):
    """FORMAT.md "Attention units": the hand-made unit passes; its u, v, k and q hold one band or head in the
    fused plan (u [b][D], v [hd][N] channel-major, k [N][hd], q [b][hd]: "Attention units in the fused plan"),
    o and the stream whole; the spiking plan holds every value whole (the packer's plan, q still in place over
    u and o over q there); the linears and the pair share one scratch region (scratch may overlap scratch)."""
    img = Image.parse(_unit(packed))
    assert img.format_version == 5
    assert [img.unit_start(i) for i in range(3, 13)] == [None, None] + [UNIT] * 6 + [None, None]
    u, v, k, q, scores, values = img.ops[UNIT:UNIT + 6]
    assert (u.band, q.band, v.band, k.band, scores.band, values.band) == (BAND, BAND, 0, 0, 0, 0)
    assert (v.heads, k.heads, q.heads, scores.heads) == (4, 4, 4, 4)
    assert not img.band_producer(u) and not img.band_producer(q)
    held = {"u": ("unit u", (8, 64), 512), "v": ("unit v", (16, 49), 784), "k": ("unit k", (49, 16), 784),
            "q": ("unit q", (8, 16), 128)}
    for op, name in ((u, "u"), (v, "v"), (k, "k"), (q, "q")):
        kind, shape, size = held[name]
        assert img.unit_value(op) == (kind, shape)
        assert img.output_value(op, ref.FUSED) == (kind, shape) and img.buffer_bytes(kind, shape, ref.FUSED) == size
        assert op.output[ref.FUSED] == AT[name]
        assert img.output_value(op, ref.SPIKING) == ("channel-major" if op is v else "counts", (49, 64, 1))
    assert img.output_value(values, ref.FUSED) == ("counts", (49, 64, 1)) and values.output[ref.FUSED] == AT["o"]
    assert img.unit_value(scores) is None and img.unit_value(values) is None
    assert {op.scratch[ref.FUSED] for op in (v, k, q, scores, values)} == {AT["scratch"]}
    assert q.output[ref.SPIKING] == u.output[ref.SPIKING] == values.output[ref.SPIKING]
    assert img.arena_bytes == (16304, 57152)  # the second attention block, not a unit, still reaches 16,304


@pytest.mark.parametrize("band", [1, 5, 8, 49])
def test_attention_unit_computes_what_the_ops_compute_one_after_the_other(packed, band):
    """SEMANTICS.md "Attention units": the unit is an order of evaluation only, so the reference's values do
    not change: every op's output and the logits of the unit image equal the packer's image's, fused and
    spiking (at D = T and at D = 0), for a band of 1, 5 (the last band shorter), 8 and N tokens."""
    plain, unit = Image.parse(packed[0]), Image.parse(_unit(packed, band=band))
    assert unit.ops[UNIT].band == band and unit.ops[UNIT + 3].band == band
    pixels = np.random.default_rng(band).integers(0, 256, size=(2, 1, 28, 28), dtype=np.uint8)
    for mode, delay in (("fused", None), ("spiking", 7), ("spiking", 0)):
        want_logits, want = ref._execute(plain, pixels, mode, delay, True)
        got_logits, got = ref._execute(unit, pixels, mode, delay, True)
        np.testing.assert_array_equal(got_logits, want_logits)
        for i, (w, g) in enumerate(zip(want, got)):
            np.testing.assert_array_equal(g, w, err_msg=f"op {i} {mode} D={delay}")


def test_both_attention_blocks_as_units(packed):
    """Both attention blocks as units: the fused plan's end is then the second unit's scratch region, at
    6272 + 3136 + 512 + 784 + 784 + 128 + 624 = 12,240 bytes (the stream, o, u, v, k, q and the pair's scratch),
    and arena_bytes[0] must be that."""
    first = _unit(packed)
    both = attention_unit_image(first, 15, BAND, arena=12240)
    img = Image.parse(both)
    assert [op.index for op in img.ops if op.band and op.kind == ref.STREAM_NEURON] == [5, 15]
    assert img.arena_bytes == (12240, 57152)
    with pytest.raises(ImageError, match=r"arena_bytes: fused arena is 16304, the plan needs 12240"):
        Image.parse(attention_unit_image(first, 15, BAND))


def _flags(i, flags):
    return lambda b: _field(b, i, 1, "<B", flags)


def _heads_of(i, heads):
    return lambda b: _field(b, i, 16, "<H", heads)


def _band_of(i, band):
    return lambda b: _field(b, i, 18, "<H", band)


def _arena(i, field, mode, offset):
    return lambda b: _field(b, i, field + 4 * mode, "<I", offset)


IN_UNIT = r" in the attention unit of ops 5\.\.10\)"
HOLDS = r": the attention unit of ops 5\.\.10 holds both while it runs"
# case -> (the change: a mutation of the unit image's bytes, a dict of attention_unit_image's options, or both as
# a tuple; the reference's message; the status FORMAT.md names for the rule)
UNIT_REFUSALS = {
    # CSD_E_OP_FIELDS: the band, the unit's kinds and flags, heads, bands
    "band-above-N": (_band_of(5, 50), r"op 5 \(STREAM_NEURON\): band 50: an attention unit's band is a number of "
                                      r"tokens in 1\.\.N = 1\.\.49", OP_FIELDS),
    "v-not-channel-major": (_flags(6, 0), r"op 5 \(STREAM_NEURON\): band 8: starts an attention unit, but is followed "
                                          r"by op 6 \(LINEAR with flags 0x00\) where the unit has a LINEAR with "
                                          r"CHANNEL_MAJOR \(v\)", OP_FIELDS),
    "k-channel-major": (_flags(7, 16), r"op 5 \(STREAM_NEURON\): band 8: starts an attention unit, but is followed by "
                                       r"op 7 \(LINEAR with flags 0x10\) where the unit has a LINEAR without flags "
                                       r"\(k\)", OP_FIELDS),
    "q-channel-major": (_flags(8, 16), r"op 8 \(LINEAR with flags 0x10\) where the unit has a LINEAR without flags "
                                       r"\(q\)", OP_FIELDS),
    "no-scores": (lambda b: _field(b, 9, 0, "<B", ref.LINEAR),
                  r"op 5 \(STREAM_NEURON\): band 8: .* op 9 \(LINEAR with flags 0x00\) where the unit has an "
                  r"ATTN_SCORES", OP_FIELDS),
    "mlp-neuron": (_band_of(12, 8), r"op 12 \(STREAM_NEURON\): band 8: starts an attention unit, but is followed by "
                                    r"op 13 \(LINEAR with flags 0x00\)", OP_FIELDS),
    "last-neuron": (_band_of(25, 8), r"op 25 \(STREAM_NEURON\): band 8: starts an attention unit, but is followed by "
                                     r"op 26 \(CLASSIFIER with flags 0x00\) where the unit has a LINEAR with "
                                     r"CHANNEL_MAJOR \(v\)", OP_FIELDS),
    "k-heads": (_heads_of(7, 2), r"op 7 \(LINEAR\): heads 2: the linears of the attention unit of op 5 have the "
                                 r"pair's heads, 4 \(op 9\)", OP_FIELDS),
    "v-heads-0": (_heads_of(6, 0), r"op 6 \(LINEAR\): heads 0: the linears of the attention unit of op 5 have the "
                                   r"pair's heads, 4 \(op 9\)", OP_FIELDS),
    "fc1-heads": (_heads_of(13, 4), r"op 13 \(LINEAR\): heads 4, expected 0 \(only the linears of an attention unit "
                                    r"have heads\)", OP_FIELDS),
    "v-heads-outside-a-unit": (_heads_of(16, 4), r"op 16 \(LINEAR\): heads 4, expected 0 \(only the linears of an "
                                                 r"attention unit have heads\)", OP_FIELDS),
    "v-band": (_band_of(6, 8), r"op 6 \(LINEAR\): band 8: expected 0 in the attention unit of op 5 \(only its "
                               r"STREAM_NEURON and q linear have a band\)", OP_FIELDS),
    "k-band": (_band_of(7, 8), r"op 7 \(LINEAR\): band 8: expected 0 in the attention unit of op 5", OP_FIELDS),
    "scores-band": (_band_of(9, 8), r"op 9 \(ATTN_SCORES\): band 8: expected 0 in the attention unit of op 5",
                    OP_FIELDS),
    "values-band": (_band_of(10, 8), r"op 10 \(ATTN_VALUES\): band 8: expected 0 in the attention unit of op 5",
                    OP_FIELDS),
    "q-band-other": (_band_of(8, 4), r"op 8 \(LINEAR\): band 4: expected 8 in the attention unit of op 5 \(its q "
                                     r"linear has the unit's band, 8\)", OP_FIELDS),
    "q-band-0": (_band_of(8, 0), r"op 8 \(LINEAR\): band 0: expected 8 in the attention unit of op 5", OP_FIELDS),
    # CSD_E_SHAPE: the unit's dims
    "k-dims": (lambda b: _field(b, 7, 10, "<3H", (49, 32, 1)),
               r"op 7 \(LINEAR\): dims: the linears of the attention unit of op 5 map \[N, D, 1\] to \[N, D, 1\] = "
               r"\[49, 64, 1\] \(in \[49, 64, 1\], out \[49, 32, 1\]\)", SHAPE),
    "scores-dims": (lambda b: _field(_field(b, 9, 4, "<3H", (49, 32, 1)), 10, 10, "<3H", (49, 32, 1)),
                    r"op 9 \(ATTN_SCORES\): dims: the scores of the attention unit of op 5 read q \[N, D, 1\] = "
                    r"\[49, 64, 1\] \(in \[49, 32, 1\], out \[4, 49, 49\]\)", SHAPE),
    # CSD_E_ARENA_PLAN: the unit's reads at its ops' outputs, in both plans
    "v-reads-u-fused": (_arena(6, 20, ref.FUSED, 9424), r"op 6 \(LINEAR\): arena offsets \(fused\): input 9424, "
                                                        r"expected 9408 \(u, the output of op 5," + IN_UNIT, ARENA_PLAN),
    "q-reads-u-spiking": (_arena(8, 20, ref.SPIKING, 43920), r"op 8 \(LINEAR\): arena offsets \(spiking\): input "
                                                             r"43920, expected 43904 \(u, the output of op 5," + IN_UNIT,
                          ARENA_PLAN),
    "scores-read-q-fused": (_arena(9, 20, ref.FUSED, 10704), r"op 9 \(ATTN_SCORES\): arena offsets \(fused\): input "
                                                             r"10704, expected 11488 \(q, the output of op 8," + IN_UNIT,
                            ARENA_PLAN),
    "scores-read-k-spiking": (_arena(9, 28, ref.SPIKING, 47040), r"op 9 \(ATTN_SCORES\): arena offsets \(spiking\): "
                                                                 r"input2 47040, expected 50176 \(k, the output of op "
                                                                 r"7," + IN_UNIT, ARENA_PLAN),
    "values-read-v-fused": (_arena(10, 28, ref.FUSED, 10704), r"op 10 \(ATTN_VALUES\): arena offsets \(fused\): "
                                                              r"input2 10704, expected 9920 \(v, the output of op 6,"
                                                              + IN_UNIT, ARENA_PLAN),
    "values-read-v-spiking": (_arena(10, 28, ref.SPIKING, 50176), r"op 10 \(ATTN_VALUES\): arena offsets "
                                                                  r"\(spiking\): input2 50176, expected 47040 \(v, the "
                                                                  r"output of op 6," + IN_UNIT, ARENA_PLAN),
    # CSD_E_ARENA_PLAN: the six buffers pairwise apart, each scratch apart from them, no in-place, fused
    "o-over-u": ({"place": {"u": 9392}}, r"op 10 \(ATTN_VALUES\): arena offsets \(fused\): output \[6272, 9408\) "
                                         r"overlaps u \(op 5's output\) \[9392, 9904\)" + HOLDS, ARENA_PLAN),
    "v-over-stream": ({"place": {"v": 6256}}, r"op 6 \(LINEAR\): arena offsets \(fused\): output \[6256, 7040\) "
                                              r"overlaps the stream \(op 5's input\) \[0, 6272\)" + HOLDS, ARENA_PLAN),
    "k-over-v": ({"place": {"k": 9920}}, r"op 7 \(LINEAR\): arena offsets \(fused\): output \[9920, 10704\) overlaps "
                                         r"v \(op 6's output\) \[9920, 10704\)" + HOLDS, ARENA_PLAN),
    "q-in-place-over-u": ({"place": {"q": 9408}}, r"op 8 \(LINEAR\): arena offsets \(fused\): output \[9408, 9536\) "
                                                  r"overlaps input \[9408, 9920\) \(no op of the attention unit of ops "
                                                  r"5\.\.10 writes in place in the fused plan\)", ARENA_PLAN),
    "o-in-place-over-q": ({"place": {"o": 11488, "scratch": 14640}},
                          r"op 10 \(ATTN_VALUES\): arena offsets \(fused\): output \[11488, 14624\) overlaps input "
                          r"\(q\) \[11488, 11616\) \(no op of the attention unit of ops 5\.\.10 writes in place in the "
                          r"fused plan\)", ARENA_PLAN),
    "k-scratch-over-stream": ({"scratch": {2: 6256}}, r"op 7 \(LINEAR\): kernel scratch \(fused\): \[6256, 6768\) "
                                                      r"overlaps the stream \(op 5's input\) \[0, 6272\)" + HOLDS,
                              ARENA_PLAN),
    "pair-scratch-over-u": ({"scratch": {4: 9408, 5: 9408}}, r"op 9 \(ATTN_SCORES\): kernel scratch \(fused\): "
                                                             r"\[9408, 10032\) overlaps u \(op 5's output\) "
                                                             r"\[9408, 9920\)" + HOLDS, ARENA_PLAN),
    "v-scratch-under-o": ({"scratch": {1: 6272}}, r"op 10 \(ATTN_VALUES\): arena offsets \(fused\): output "
                                                  r"\[6272, 9408\) overlaps op 6's kernel scratch \[6272, 6784\)" + HOLDS,
                          ARENA_PLAN),
    # CSD_E_SHAPE: chained with the unit's shapes (only the unit's ops read u, v, k and q). With a band of N, u
    # holds the whole [49][64] counts in its 3,136 bytes (nothing else written inside them), and is still u.
    "stream-add-reads-u": (({"band": 49}, _arena(11, 20, ref.FUSED, 9408)),
                           r"op 11 \(LINEAR\): chaining \(fused\): input at 9408 is the u of an attention unit \(counts "
                           r"\[band\]\[D\]\) \[49, 64\] written by op 5 \(a buffer of the attention unit of ops 5\.\.10 "
                           r"in the fused plan: only the unit's ops read it\), expected the counts \[49, 64, 1\]", SHAPE),
}


def _refused_unit(packed, case: str) -> bytes:
    """The unit image of a case of UNIT_REFUSALS: its options of attention_unit_image (a dict), a mutation of
    the default unit image's bytes, or both (a tuple)."""
    change = UNIT_REFUSALS[case][0]
    options, mutate = change if isinstance(change, tuple) else (change, None) if isinstance(change, dict) else ({}, change)
    data = _unit(packed, **options)
    return mutate(data) if mutate else data


@pytest.mark.parametrize("case", list(UNIT_REFUSALS))
def test_attention_unit_refusals(packed, case):
    """FORMAT.md "Attention units" and "Attention units in the fused plan", one rule at a time on the hand-made
    unit: the reference's message names the op and the check (its status: CSD_E_OP_FIELDS for "band" and
    "heads", CSD_E_SHAPE for "dims" and a chaining to a value of another shape, CSD_E_ARENA_PLAN for "arena
    offsets" and "kernel scratch")."""
    _, message, _ = UNIT_REFUSALS[case]
    with pytest.raises(ImageError, match=message):
        Image.parse(_refused_unit(packed, case))


def test_attention_unit_rules_are_fused_only(packed):
    """The spiking plan ignores units: there q may write in place over u and o over q (the packer's spiking plan,
    which the unit images keep), and a stream add may read the whole u (here: op 11 pointed at u's spiking
    offset, where the values wrote o in place, which is the same counts [49, 64, 1])."""
    img = Image.parse(_unit(packed))
    u, q, values = img.ops[UNIT], img.ops[UNIT + 3], img.ops[UNIT + 5]
    assert q.output[ref.SPIKING] == q.input[ref.SPIKING] == u.output[ref.SPIKING] == values.output[ref.SPIKING]
    # fused, the same in-place plan is refused (test_attention_unit_refusals: q-in-place-over-u, o-in-place-over-q)


@pytest.mark.parametrize("name, size", [("u", 8 * 64), ("v", 16 * 49), ("k", 49 * 16), ("q", 8 * 16)])
def test_attention_unit_buffers_have_the_units_sizes(packed, name, size):
    """FORMAT.md "Attention units in the fused plan": u, v, k and q are [b][D], [hd][N], [N][hd] and [b][hd]
    counts. Each placed last, at 16304 (the packer's fused end): arena_bytes[0] is its end, and one buffer
    ending 16 bytes past a smaller arena is refused (CSD_E_ARENA_END)."""
    end = 16304 + (size + 15) // 16 * 16
    img = Image.parse(_unit(packed, place={name: 16304}, arena=end))
    assert img.arena_bytes[ref.FUSED] == end
    with pytest.raises(ImageError, match=rf"arena offsets \(fused\): output \[16304, {16304 + size}\) leaves the "
                                         rf"{end - 16}-byte arena"):
        Image.parse(_unit(packed, place={name: 16304}, arena=end - 16))


@needs_csdpack
def test_csdpack_inspect_agrees_on_attention_units(packed, tmp_path):
    """The Swift validator (csdpack inspect --json) on the same hand-made images: the unit images are valid, and
    each refusal has the status FORMAT.md names for its rule (needs a csdpack that reads format 5)."""
    import json

    def status(data: bytes) -> int:
        path = tmp_path / "unit.csd"
        path.write_bytes(data)
        r = subprocess.run([CSDPACK, "inspect", str(path), "--json"], capture_output=True, text=True, timeout=120)
        return json.loads(r.stdout)["status"] if r.stdout.strip() else r.returncode

    assert status(_unit(packed)) == 0
    assert status(attention_unit_image(_unit(packed), 15, BAND, arena=12240)) == 0
    got = {case: status(_refused_unit(packed, case)) for case in UNIT_REFUSALS}
    assert got == {case: want for case, (_, _, want) in UNIT_REFUSALS.items()}


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


def test_spiking_arena_is_at_least_the_fused_one():
    """FORMAT.md "Arena plan": arena_bytes[1] is the larger of the spiking plan's end and arena_bytes[0] (a
    spiking session at D >= T runs in the fused plan). The unit plan with the consumer's output at 208 ends at
    224 fused and at 208 spiking."""
    img = _unit_plan(208)
    img.arena_bytes = (224, 224)
    for mode in (ref.FUSED, ref.SPIKING):
        img._check_arena(mode)
    img.arena_bytes = (224, 208)
    with pytest.raises(ImageError, match=r"arena_bytes: spiking arena is 208, expected the fused arena 224 \(the "
                                         r"spiking plan ends at 208, before it\)"):
        img._check_arena(ref.SPIKING)
