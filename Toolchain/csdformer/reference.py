"""Independent NumPy reference executor for `.csd` images (format 5, math 2).

Written only from ``docs/FORMAT.md`` and ``docs/SEMANTICS.md``; it shares no code with the
Swift packer/runtime, so that agreeing bit for bit with them checks both the implementations
and the completeness of the specification.

Library use::

    from csdformer.reference import load, run, run_batch
    image = load("model.csd")                     # an Image: parsed and validated; raises ImageError
    logits = run(image, pixels)                   # fused mode, int32 [classes]
    logits, trace = run(image, pixels, mode="spiking", delay=3, trace=True)
    all_logits = run_batch(image, images, mode="fused")   # int32 [B, classes]

Command line::

    python -m csdformer.reference MODEL.csd --data fashion-mnist [--limit N]
        [--mode fused|spiking|both] [--delay D] [--reference PRED.npy]

Only NumPy is needed here; the command line imports ``csdformer.data`` (and therefore torch)
to load the data set.

Arithmetic: everything is computed in int64. Products of integer matrices go through float64
BLAS, which is exact because every partial sum is an integer of magnitude < 2**53 (checked for
every product from the operands' magnitudes). Every quantity that SEMANTICS.md defines as int32
(accumulations, shifted currents, membranes, a stream writer's sum and running sums, logits) is
checked against the int32 range and an ``Int32Overflow`` is raised if one leaves it; every value
of the int16 residual stream (fused, and at every step in spiking mode) is checked against the
int16 range and an ``Int16Overflow`` is raised if one leaves it (the packer proves that none does).
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ImageError", "Int32Overflow", "Int16Overflow", "Image", "Op", "load", "run", "run_batch", "predict",
    "attn_scores_acc", "attn_scores_steps", "attn_values_acc", "attn_values_steps", "maxpool_steps",
    "fire_fused", "fire_dif", "stream_write_fused", "stream_write_steps",
    "CONV3X3", "LINEAR", "MAXPOOL", "STREAM_NEURON", "ATTN_SCORES", "ATTN_VALUES", "CLASSIFIER",
    "OPF_INPUT_PIXELS", "OPF_STREAM_OUT", "OPF_STREAM_SET", "OPF_TOKEN_BIAS", "OPF_CHANNEL_MAJOR",
]

MAGIC = 0x46445343
FORMAT_VERSION = 5
MATH_VERSION = 2
HEADER_BYTES = 128
OP_RECORD_BYTES = 64
MAX_OPS = 256

CONV3X3, LINEAR, MAXPOOL, STREAM_NEURON, ATTN_SCORES, ATTN_VALUES, CLASSIFIER = range(1, 8)
KIND_NAMES = {CONV3X3: "CONV3X3", LINEAR: "LINEAR", MAXPOOL: "MAXPOOL", STREAM_NEURON: "STREAM_NEURON",
              ATTN_SCORES: "ATTN_SCORES", ATTN_VALUES: "ATTN_VALUES", CLASSIFIER: "CLASSIFIER"}
OPF_INPUT_PIXELS, OPF_STREAM_OUT, OPF_STREAM_SET, OPF_TOKEN_BIAS, OPF_CHANNEL_MAJOR = 1, 2, 4, 8, 16
# the flags each kind may carry (FORMAT.md "Op table"; other kinds none)
_ALLOWED_FLAGS = {CONV3X3: OPF_INPUT_PIXELS | OPF_STREAM_OUT | OPF_STREAM_SET | OPF_TOKEN_BIAS,
                  LINEAR: OPF_STREAM_OUT | OPF_CHANNEL_MAJOR}

FUSED, SPIKING = 0, 1
MODES = {"fused": FUSED, "spiking": SPIKING}

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
INT16_MIN, INT16_MAX = -(2 ** 15), 2 ** 15 - 1
MAX_SHIFT = 24
_EXACT = 2 ** 53

# header: everything up to reserved[60]
_HEADER = struct.Struct("<IHHIIIIIIIHHHHHHBBBBIIII")
# op record: kind, flags, shift, pool, in_dims, out_dims, heads, band, input, input2, output,
# weights, thresholds, biases, scratch
_OP = struct.Struct("<BBBB3H3HHH2I2I2IIII2I")
assert _HEADER.size == 68 and _OP.size == 64


class ImageError(ValueError):
    """An image failed a check of FORMAT.md; the message names the check."""


class Int32Overflow(ArithmeticError):
    """A value that SEMANTICS.md defines as int32 left the int32 range."""


class Int16Overflow(ArithmeticError):
    """A value of the residual stream, int16 in SEMANTICS.md (math version 2), left the int16 range."""


def _check32(x: np.ndarray, what: str) -> None:
    if x.size and (x.min() < INT32_MIN or x.max() > INT32_MAX):
        raise Int32Overflow(f"{what}: value {int(x.min())}..{int(x.max())} outside int32")


def _check16(x: np.ndarray, what: str) -> None:
    if x.size and (x.min() < INT16_MIN or x.max() > INT16_MAX):
        raise Int16Overflow(f"{what}: value {int(x.min())}..{int(x.max())} outside int16")


def _align16(n: int) -> int:
    return (n + 15) // 16 * 16


# ----------------------------------------------------------------------------------------------
# Image


@dataclass
class Op:
    index: int
    kind: int
    flags: int
    shift: int
    pool: int
    in_dims: tuple
    out_dims: tuple
    heads: int
    input: tuple          # (fused, spiking) arena offsets
    input2: tuple
    output: tuple
    weights_offset: int
    thresholds_offset: int
    biases_offset: int
    scratch: tuple = (0, 0)   # (fused, spiking) arena offsets of the op's kernel scratch
    band: int = 0             # 0, or the rows of the op's fused-plan output band (FORMAT.md "Bands")
    weights: np.ndarray | None = None      # int8, or int16 for a stream writer
    thresholds: np.ndarray | None = None   # int32
    biases: np.ndarray | None = None       # int32

    @property
    def name(self) -> str:
        return KIND_NAMES.get(self.kind, f"kind {self.kind}")

    @property
    def input_pixels(self) -> bool:
        return bool(self.flags & OPF_INPUT_PIXELS)

    @property
    def stream_out(self) -> bool:
        return bool(self.flags & OPF_STREAM_OUT)

    @property
    def stream_set(self) -> bool:
        return bool(self.flags & OPF_STREAM_SET)

    @property
    def token_bias(self) -> bool:
        return bool(self.flags & OPF_TOKEN_BIAS)

    @property
    def channel_major(self) -> bool:
        return bool(self.flags & OPF_CHANNEL_MAJOR)

    def __repr__(self) -> str:  # compact, for printing a whole table
        return (f"Op({self.index}: {self.name} flags={self.flags} k={self.shift} pool={self.pool} "
                f"in={list(self.in_dims)} out={list(self.out_dims)} heads={self.heads} "
                f"input={self.input} input2={self.input2} output={self.output} scratch={self.scratch}"
                + (f" band={self.band})" if self.band else ")"))


@dataclass
class Image:
    data: bytes
    magic: int = 0
    format_version: int = 0
    math_version: int = 0
    header_bytes: int = 0
    image_bytes: int = 0
    crc32: int = 0
    op_count: int = 0
    op_record_bytes: int = 0
    data_offset: int = 0
    data_bytes: int = 0
    input_channels: int = 0
    input_height: int = 0
    input_width: int = 0
    classes: int = 0
    tokens: int = 0
    width: int = 0
    time_steps: int = 0
    levels: int = 0
    delay: int = 0
    flags: int = 0
    arena_bytes: tuple = (0, 0)
    macs: int = 0
    tensor_bytes: int = 0
    ops: list = field(default_factory=list)

    @classmethod
    def load(cls, path: str) -> "Image":
        with open(path, "rb") as f:
            return cls.parse(f.read())

    @classmethod
    def parse(cls, data: bytes) -> "Image":
        data = bytes(data)
        img = cls(data=data)
        img._parse_header()
        img._parse_ops()
        return img

    @property
    def input_shape(self) -> tuple:
        return (self.input_channels, self.input_height, self.input_width)

    # -- header --------------------------------------------------------------------------------

    def _parse_header(self) -> None:
        b = self.data
        if len(b) < HEADER_BYTES:
            raise ImageError(f"size: {len(b)} bytes is smaller than the 128-byte header")
        (self.magic, self.format_version, self.math_version, self.header_bytes, self.image_bytes,
         self.crc32, self.op_count, self.op_record_bytes, self.data_offset, self.data_bytes,
         self.input_channels, self.input_height, self.input_width, self.classes, self.tokens,
         self.width, self.time_steps, self.levels, self.delay, self.flags,
         a0, a1, self.macs, self.tensor_bytes) = _HEADER.unpack_from(b, 0)
        self.arena_bytes = (a0, a1)
        if self.magic != MAGIC:
            raise ImageError(f"magic: 0x{self.magic:08x}, expected 0x{MAGIC:08x} ('CSDF')")
        if self.format_version != FORMAT_VERSION:
            raise ImageError(f"format_version: {self.format_version}, expected {FORMAT_VERSION}")
        if self.math_version != MATH_VERSION:
            raise ImageError(f"math_version: {self.math_version}, expected {MATH_VERSION}")
        if self.header_bytes != HEADER_BYTES:
            raise ImageError(f"header_bytes: {self.header_bytes}, expected {HEADER_BYTES}")
        if self.image_bytes > len(b):
            raise ImageError(f"image_bytes: {self.image_bytes} exceeds the {len(b)} bytes given (truncated image)")
        if self.image_bytes < HEADER_BYTES:
            raise ImageError(f"image_bytes: {self.image_bytes} is smaller than the header")
        body = bytearray(b[:self.image_bytes])
        body[16:20] = b"\0\0\0\0"
        crc = zlib.crc32(bytes(body)) & 0xFFFFFFFF
        if crc != self.crc32:
            raise ImageError(f"crc32: stored 0x{self.crc32:08x}, computed 0x{crc:08x}")
        if self.op_record_bytes != OP_RECORD_BYTES:
            raise ImageError(f"op_record_bytes: {self.op_record_bytes}, expected {OP_RECORD_BYTES}")
        if not 1 <= self.op_count <= MAX_OPS:
            raise ImageError(f"op_count: {self.op_count}, expected 1..{MAX_OPS}")
        want = _align16(self.header_bytes + self.op_count * OP_RECORD_BYTES)
        if self.data_offset != want:
            raise ImageError(f"data_offset: {self.data_offset}, expected {want}")
        if self.data_offset > self.image_bytes or self.data_bytes != self.image_bytes - self.data_offset:
            raise ImageError(f"data_bytes: {self.data_bytes}, expected image_bytes - data_offset = "
                             f"{self.image_bytes - self.data_offset}")
        # reserved bytes: header flags, header reserved[60], the padding after the op table
        if self.flags != 0:
            raise ImageError(f"reserved: header flags is {self.flags}, expected 0")
        if any(b[68:128]):
            raise ImageError("reserved: header reserved[60] is not zero")
        table_end = self.header_bytes + self.op_count * OP_RECORD_BYTES
        if any(b[table_end:self.data_offset]):
            raise ImageError("reserved: padding between the op table and the data section is not zero")
        # an op record has no reserved field left: format 3 made its last 8 bytes (reserved1 in format 2)
        # the op's scratch offsets, format 4 its bytes 18..19 (reserved0 in format 3) its band, checked
        # with the op's fields (FORMAT.md "Bands"; format 5 also "Attention units")
        # metadata ranges
        T, L = self.time_steps, self.levels
        if not 1 <= T <= 16:
            raise ImageError(f"metadata: time_steps T = {T}, expected 1..16")
        if not 1 <= L <= T:
            raise ImageError(f"metadata: levels L = {L}, expected 1..T = 1..{T}")
        if not 0 <= self.delay <= T:
            raise ImageError(f"metadata: delay D = {self.delay}, expected 0..T = 0..{T}")
        for name in ("input_channels", "input_height", "input_width", "classes", "tokens", "width"):
            if getattr(self, name) < 1:
                raise ImageError(f"metadata: {name} is 0")

    # -- op table ------------------------------------------------------------------------------

    def _parse_ops(self) -> None:
        b = self.data
        self.ops = []
        for i in range(self.op_count):
            f = _OP.unpack_from(b, self.header_bytes + i * OP_RECORD_BYTES)
            op = Op(index=i, kind=f[0], flags=f[1], shift=f[2], pool=f[3], in_dims=tuple(f[4:7]),
                    out_dims=tuple(f[7:10]), heads=f[10], input=tuple(f[12:14]), input2=tuple(f[14:16]),
                    output=tuple(f[16:18]), weights_offset=f[18], thresholds_offset=f[19],
                    biases_offset=f[20], scratch=tuple(f[21:23]), band=f[11])
            self.ops.append(op)
        covered = []
        for op in self.ops:
            self._check_op(op)
            covered += self._load_tensors(op)
        # every data byte outside a tensor is padding and must be zero
        mask = np.zeros(self.data_bytes, dtype=bool)
        total = 0
        seen = set()
        for off, size in covered:
            mask[off:off + size] = True
            if (off, size) not in seen:
                seen.add((off, size))
                total += size
        section = np.frombuffer(b, dtype=np.uint8, count=self.data_bytes, offset=self.data_offset)
        if section[~mask].any():
            raise ImageError("reserved: a padding byte of the data section is not zero")
        if total != self.tensor_bytes:
            raise ImageError(f"tensor_bytes: header says {self.tensor_bytes}, the op table's tensors sum to {total}")
        for mode in (FUSED, SPIKING):
            self._check_arena(mode)
        macs = sum(_op_macs(op) for op in self.ops)
        if macs != self.macs:
            raise ImageError(f"macs: header says {self.macs}, recomputed {macs}")

    def _check_op(self, op: Op) -> None:
        i = op.index
        where = f"op {i} ({op.name})"
        N, D = self.tokens, self.width
        if op.kind not in KIND_NAMES:
            raise ImageError(f"op {i}: kind {op.kind} is unknown")
        allowed = _ALLOWED_FLAGS.get(op.kind, 0)
        if op.channel_major and op.kind != LINEAR:
            raise ImageError(f"{where}: flags 0x{op.flags:02x}: CHANNEL_MAJOR is allowed only on a LINEAR")
        if op.flags & ~allowed:
            raise ImageError(f"{where}: flags 0x{op.flags:02x} has bits not allowed for this kind")
        if op.channel_major and op.stream_out:
            raise ImageError(f"{where}: flags 0x{op.flags:02x}: a LINEAR carries STREAM_OUT or CHANNEL_MAJOR, "
                             f"not both")
        if (op.flags & (OPF_STREAM_SET | OPF_TOKEN_BIAS)) and not op.stream_out:
            raise ImageError(f"{where}: flags STREAM_SET/TOKEN_BIAS need STREAM_OUT")
        if op.input_pixels != (i == 0):
            raise ImageError(f"{where}: flags: the first op, and only it, reads the pixels (INPUT_PIXELS)")
        # a neuron op's shift is its k, a stream writer's the stream shift s (both 0..24)
        if op.shift > MAX_SHIFT or (op.kind in (MAXPOOL, CLASSIFIER) and op.shift != 0):
            raise ImageError(f"{where}: shift {op.shift} out of range")
        if op.pool not in ((2, 3) if op.kind == MAXPOOL else (0,)):
            raise ImageError(f"{where}: pool {op.pool} invalid for this kind")
        if (op.kind == CLASSIFIER) != (i == self.op_count - 1):
            raise ImageError(f"{where}: the last op, and only it, must be the CLASSIFIER")
        self._check_pair(op)
        # dims
        ind, outd = op.in_dims, op.out_dims
        if min(ind) < 1 or min(outd) < 1:
            raise ImageError(f"{where}: dims: a dimension is 0")
        self._check_band(op)

        def bad(msg):
            raise ImageError(f"{where}: dims: {msg} (in {list(ind)}, out {list(outd)})")

        if op.kind in (ATTN_SCORES, ATTN_VALUES):
            if op.heads < 1 or D % op.heads:
                raise ImageError(f"{where}: heads {op.heads} does not divide D = {D}")
        elif op.kind == LINEAR and self.unit_start(i) is not None:
            pass  # the v, k and q linears of an attention unit: the pair's heads (``_check_attention_unit``)
        elif op.heads != 0:
            only = " (only the linears of an attention unit have heads)" if op.kind == LINEAR else ""
            raise ImageError(f"{where}: heads {op.heads}, expected 0{only}")
        if op.kind == CONV3X3:
            if (ind[1], ind[2]) != (outd[1], outd[2]):
                bad("conv3x3 keeps H and W")
            if op.input_pixels and ind != self.input_shape:
                bad(f"the pixel input is {list(self.input_shape)}")
            if op.stream_out and (outd[1] * outd[2] != N or outd[0] != D):
                bad(f"a stream-writing conv must produce N = {N} tokens of width D = {D}")
            if ind[0] * 9 > 65535:
                bad("a conv's fan-in Cin * 9 must not exceed 65535")
        elif op.kind == LINEAR:
            if ind[0] != outd[0] or ind[2] != 1 or outd[2] != 1:
                bad("linear maps [N, Din, 1] to [N, Dout, 1]")
            if op.stream_out and (outd[0] != N or outd[1] != D):
                bad(f"a stream writer produces [N, D] = [{N}, {D}]")
        elif op.kind == MAXPOOL:
            want = (ind[0],) + _pool_hw(ind[1], ind[2], op.pool)
            if outd != want or min(want) < 1:
                bad(f"max-pool {op.pool} of {list(ind)} is {list(want)}")
        elif op.kind == STREAM_NEURON:
            if ind != (N, D, 1) or outd != (N, D, 1):
                bad(f"stream neurons are [N, D, 1] = [{N}, {D}, 1]")
        elif op.kind == ATTN_SCORES:
            if ind[2] != 1 or ind[1] % op.heads or outd != (op.heads, ind[0], ind[0]):
                bad("scores map q [N, D, 1] to [heads, N, N]")
        elif op.kind == ATTN_VALUES:
            if ind[0] != op.heads or ind[1] != ind[2] or outd[0] != ind[1] or outd[2] != 1 or outd[1] % op.heads:
                bad("values map a [heads, N, N] to [N, D, 1]")
        elif op.kind == CLASSIFIER:
            if ind[2] != 1 or outd != (self.classes, 1, 1):
                bad(f"classifier maps [N, D, 1] to [classes, 1, 1] = [{self.classes}, 1, 1]")

    def _check_pair(self, op: Op) -> None:
        """FORMAT.md "The attention pair": every ATTN_SCORES is immediately followed by an ATTN_VALUES
        and every ATTN_VALUES immediately follows an ATTN_SCORES, with the same heads, the values'
        in_dims the scores' out_dims and the values' out_dims the scores' in_dims."""
        i = op.index
        where = f"op {i} ({op.name})"
        if op.kind == ATTN_SCORES:
            nxt = self.ops[i + 1] if i + 1 < len(self.ops) else None
            if nxt is None or nxt.kind != ATTN_VALUES:
                then = f"op {i + 1} ({nxt.name})" if nxt is not None else "nothing"
                raise ImageError(f"{where}: attention pair: followed by {then}, expected an ATTN_VALUES")
        elif op.kind == ATTN_VALUES:
            prev = self.ops[i - 1] if i > 0 else None
            if prev is None or prev.kind != ATTN_SCORES:
                before = f"op {i - 1} ({prev.name})" if prev is not None else "nothing"
                raise ImageError(f"{where}: attention pair: follows {before}, expected an ATTN_SCORES")
            if op.heads != prev.heads:
                raise ImageError(f"{where}: attention pair: heads {op.heads}, the scores (op {i - 1}) have "
                                 f"{prev.heads}")
            if op.in_dims != prev.out_dims or op.out_dims != prev.in_dims:
                raise ImageError(f"{where}: attention pair: in {list(op.in_dims)}, out {list(op.out_dims)}; "
                                 f"the scores (op {i - 1}) map {list(prev.in_dims)} to {list(prev.out_dims)}")

    def _check_band(self, op: Op) -> None:
        """FORMAT.md "Bands": an op with band nonzero (the producer) runs as one unit with the op right after
        it (the consumer), a band of ``band`` rows at a time in the fused plan. A CONV3X3 without STREAM_OUT
        before a MAXPOOL with pool 2 (an even band of its output rows, 2..H), or a LINEAR without STREAM_OUT
        or CHANNEL_MAJOR before a LINEAR (a band of its tokens, 1..N). The consumer has band 0, and so has the
        op before the producer (a unit is two ops); any other band is refused (CSD_E_OP_FIELDS), but those of an
        attention unit (``_check_attention_unit``, called here at the unit's first op). The consumer reads the
        producer's output: its in_dims are the producer's out_dims (a dims error, CSD_E_SHAPE)."""
        i = op.index
        where = f"op {i} ({op.name})"
        unit = self.unit_start(i)
        if unit is not None:  # the attention unit's rules cover the bands (and heads) of its six ops
            if unit == i:
                self._check_attention_unit(op)
            return
        prev = self.ops[i - 1] if i > 0 else None
        if prev is not None and prev.band:
            if op.band:
                raise ImageError(f"{where}: band {op.band}: the consumer of op {i - 1}'s band has band 0 "
                                 f"(a unit is two ops)")
            if op.in_dims != prev.out_dims:
                raise ImageError(f"{where}: dims: the consumer of op {i - 1}'s band reads its output "
                                 f"{list(prev.out_dims)} (in {list(op.in_dims)}, out {list(op.out_dims)})")
        if not op.band:
            return
        nxt = self.ops[i + 1] if i + 1 < len(self.ops) else None
        if nxt is None:
            then = "nothing"
        else:
            then = f"op {i + 1} ({nxt.name}" + (f" with pool {nxt.pool})" if nxt.kind == MAXPOOL else ")")
        if op.kind == CONV3X3 and not op.stream_out:
            if nxt is None or nxt.kind != MAXPOOL or nxt.pool != 2:
                raise ImageError(f"{where}: band {op.band}: followed by {then}, expected a MAXPOOL with pool 2")
            rows = op.out_dims[1]
            if op.band % 2 or op.band > rows:
                raise ImageError(f"{where}: band {op.band}: expected an even number of rows in 2..H = 2..{rows}")
        elif op.kind == LINEAR and not op.stream_out and not op.channel_major:
            if nxt is None or nxt.kind != LINEAR:
                raise ImageError(f"{where}: band {op.band}: followed by {then}, expected a LINEAR")
            rows = op.out_dims[0]
            if op.band > rows:
                raise ImageError(f"{where}: band {op.band}: expected a number of tokens in 1..N = 1..{rows}")
        else:
            raise ImageError(f"{where}: band {op.band}: only a CONV3X3 without STREAM_OUT (before a MAXPOOL with "
                             f"pool 2) or a LINEAR without STREAM_OUT or CHANNEL_MAJOR (before a LINEAR) has a band")

    def unit_start(self, index: int) -> int | None:
        """FORMAT.md "Attention units": the index a of the STREAM_NEURON with band nonzero whose attention unit
        (ops a .. a + 5) holds op ``index``, or None. Every STREAM_NEURON with band nonzero starts a unit, and
        the five ops after it are LINEARs and the attention pair (``_check_attention_unit``), so the nearest
        STREAM_NEURON at or before ``index``, at most five ops back, decides."""
        if not 0 <= index < len(self.ops):
            return None
        for a in range(index, max(index - 6, -1), -1):
            if self.ops[a].kind == STREAM_NEURON:
                return a if self.ops[a].band else None
        return None

    def band_producer(self, op: Op) -> bool:
        """FORMAT.md "Bands": ``op`` produces a band for the op after it (band nonzero, outside an attention
        unit, whose STREAM_NEURON and q linear have a band of their own)."""
        return bool(op.band) and self.unit_start(op.index) is None

    def _check_attention_unit(self, op: Op) -> None:
        """FORMAT.md "Attention units", at the unit's STREAM_NEURON ``op`` (band b nonzero): b is a number of
        tokens, 1..N; then come a LINEAR with CHANNEL_MAJOR (v), a LINEAR without flags (k), a LINEAR without
        flags (q), an ATTN_SCORES and an ATTN_VALUES; the three linears have the pair's heads, q has band b and
        every other op of the unit band 0 (all CSD_E_OP_FIELDS); the linears are [N, D, 1] -> [N, D, 1] and the
        scores read q [N, D, 1] (dims, CSD_E_SHAPE)."""
        a, b = op.index, op.band
        where = f"op {a} ({op.name})"
        N, D = self.tokens, self.width
        if b > N:
            raise ImageError(f"{where}: band {b}: an attention unit's band is a number of tokens in 1..N = 1..{N}")
        want = [(LINEAR, OPF_CHANNEL_MAJOR, "a LINEAR with CHANNEL_MAJOR (v)"), (LINEAR, 0, "a LINEAR without flags (k)"),
                (LINEAR, 0, "a LINEAR without flags (q)"), (ATTN_SCORES, 0, "an ATTN_SCORES"),
                (ATTN_VALUES, 0, "an ATTN_VALUES")]
        for j, (kind, flags, what) in enumerate(want, 1):
            nxt = self.ops[a + j] if a + j < len(self.ops) else None
            if nxt is None or nxt.kind != kind or nxt.flags != flags:
                got = "nothing" if nxt is None else f"op {a + j} ({nxt.name} with flags 0x{nxt.flags:02x})"
                raise ImageError(f"{where}: band {b}: starts an attention unit, but is followed by {got} where "
                                 f"the unit has {what}")
        ops = self.ops[a:a + 6]
        heads = ops[4].heads
        for j in (1, 2, 3):
            if ops[j].heads != heads:
                raise ImageError(f"op {a + j} ({ops[j].name}): heads {ops[j].heads}: the linears of the attention "
                                 f"unit of op {a} have the pair's heads, {heads} (op {a + 4})")
        for j in range(1, 6):
            band = b if j == 3 else 0
            if ops[j].band != band:
                role = f"its q linear has the unit's band, {b}" if j == 3 else "only its STREAM_NEURON and q linear have a band"
                raise ImageError(f"op {a + j} ({ops[j].name}): band {ops[j].band}: expected {band} in the attention "
                                 f"unit of op {a} ({role})")
        whole = (N, D, 1)
        for j in (1, 2, 3):
            if ops[j].in_dims != whole or ops[j].out_dims != whole:
                raise ImageError(f"op {a + j} ({ops[j].name}): dims: the linears of the attention unit of op {a} map "
                                 f"[N, D, 1] to [N, D, 1] = {list(whole)} (in {list(ops[j].in_dims)}, out "
                                 f"{list(ops[j].out_dims)})")
        if ops[4].in_dims != whole:
            raise ImageError(f"op {a + 4} ({ops[4].name}): dims: the scores of the attention unit of op {a} read q "
                             f"[N, D, 1] = {list(whole)} (in {list(ops[4].in_dims)}, out {list(ops[4].out_dims)})")

    def _tensor_specs(self, op: Op) -> list:
        """(field, dtype, shape) of the tensors this op carries."""
        ind, outd = op.in_dims, op.out_dims
        wdt = np.int16 if op.stream_out else np.int8
        if op.kind == CONV3X3:
            cout, cin = outd[0], ind[0]
            bias = (outd[1] * outd[2], cout) if op.token_bias else (cout,)
            specs = [("weights", wdt, (cout, cin, 3, 3))]
            if not op.stream_out:
                specs.append(("thresholds", np.int32, (cout,)))
            return specs + [("biases", np.int32, bias)]
        if op.kind == LINEAR:
            dout, din = outd[1], ind[1]
            bias = (outd[0], dout) if op.token_bias else (dout,)
            specs = [("weights", wdt, (dout, din))]
            if not op.stream_out:
                specs.append(("thresholds", np.int32, (dout,)))
            return specs + [("biases", np.int32, bias)]
        if op.kind == STREAM_NEURON:
            return [("thresholds", np.int32, (ind[1],)), ("biases", np.int32, (ind[1],))]
        if op.kind == ATTN_SCORES:
            return [("thresholds", np.int32, (op.heads,)), ("biases", np.int32, (op.heads,))]
        if op.kind == ATTN_VALUES:
            return [("thresholds", np.int32, (outd[1],)), ("biases", np.int32, (outd[1],))]
        if op.kind == CLASSIFIER:
            return [("weights", np.int8, (outd[0], ind[1])), ("biases", np.int32, (outd[0],))]
        return []

    def _load_tensors(self, op: Op) -> list:
        where = f"op {op.index} ({op.name})"
        specs = self._tensor_specs(op)
        present = {name for name, _, _ in specs}
        covered = []
        for name in ("weights", "thresholds", "biases"):
            off = getattr(op, name + "_offset")
            if name not in present and off != 0:
                raise ImageError(f"{where}: tensor offsets: {name} offset {off} given, but this op has no {name}")
        for name, dt, shape in specs:
            off = getattr(op, name + "_offset")
            size = int(np.prod(shape)) * np.dtype(dt).itemsize
            if off % 16:
                raise ImageError(f"{where}: tensor offsets: {name} at {off} is not 16-aligned")
            if off + size > self.data_bytes:
                raise ImageError(f"{where}: tensor offsets: {name} [{off}, {off + size}) leaves the "
                                 f"{self.data_bytes}-byte data section")
            arr = np.frombuffer(self.data, dtype=np.dtype(dt).newbyteorder("<"), count=int(np.prod(shape)),
                                offset=self.data_offset + off).reshape(shape).astype(dt)
            setattr(op, name, arr)
            covered.append((off, size))
        if op.thresholds is not None and op.thresholds.min() < 1:
            raise ImageError(f"{where}: thresholds: a threshold is {int(op.thresholds.min())} < 1")
        if op.kind == CLASSIFIER and (op.output[0] or op.output[1]):
            raise ImageError(f"{where}: arena offsets: the classifier's output must be 0 (the caller's logits)")
        return covered

    # -- arena ---------------------------------------------------------------------------------

    def buffer_bytes(self, kind: str, shape: tuple, mode: int) -> int:
        """Bytes of a buffer holding a value of ``kind`` ("counts", "channel-major", "band", an attention unit's
        "unit u", "unit v", "unit k" or "unit q", or "stream") and ``shape`` in ``mode`` (FORMAT.md "Arena
        plan"): counts, also channel-major, a band of counts (whose shape is the band's, ``band_shape``) and
        an attention unit's buffers (``unit_value``), one byte per element fused and per spike train (two at
        T > 8) spiking; the stream int16 [N][D], spiking [N][D][T]."""
        n = int(np.prod(shape))
        if kind == "stream":  # int16 [N][D], spiking [N][D][T]
            return n * 2 * (self.time_steps if mode == SPIKING else 1)
        return n * (1 if mode == FUSED else (1 if self.time_steps <= 8 else 2))

    @staticmethod
    def band_shape(op: Op) -> tuple | None:
        """FORMAT.md "Bands": the shape of a producer's fused band buffer, ``band`` rows in place of its
        output's rows: [C, band, W] for a CONV3X3 (channel c's band rows at c * band * W), [band, D, 1] for a
        LINEAR (a band of tokens); None for an op without a band."""
        if not op.band:
            return None
        o = op.out_dims
        return (o[0], op.band, o[2]) if op.kind == CONV3X3 else (op.band, o[1], o[2])

    def unit_value(self, op: Op) -> tuple | None:
        """FORMAT.md "Attention units": (kind, shape) of the fused-plan buffer ``op`` writes in its attention
        unit, with b the unit's band and hd = D / heads: the STREAM_NEURON's u ("unit u", (b, D): a band of
        tokens), the v linear's ("unit v", (hd, N): one head's channels, channel-major), the k linear's
        ("unit k", (N, hd): one head's channels of every token) and the q linear's ("unit q", (b, hd): one
        head's channels of a band of tokens), all counts; None for an op outside a unit and for the pair (the
        scores hold no buffer, the values' o is whole)."""
        a = self.unit_start(op.index)
        if a is None or op.index - a > 3:
            return None
        N, D, b = self.tokens, self.width, self.ops[a].band
        heads = self.ops[a + 4].heads if a + 4 < len(self.ops) else 0
        hd = D // heads if heads else D
        return {0: ("unit u", (b, D)), 1: ("unit v", (hd, N)), 2: ("unit k", (N, hd)),
                3: ("unit q", (b, hd))}[op.index - a]

    def output_value(self, op: Op, mode: int) -> tuple | None:
        """(kind, shape) of the value ``op`` writes into the arena of ``mode`` (FORMAT.md "Arena plan"):
        ("stream", (N, D)) for a stream writer, ("channel-major", out_dims) for a LINEAR with CHANNEL_MAJOR,
        in the fused plan ("band", ``band_shape``) for a band's producer (FORMAT.md "Bands in the fused
        plan"; the spiking plan ignores bands) and ``unit_value`` for the u, v, k and q of an attention unit
        (FORMAT.md "Attention units in the fused plan"; the spiking plan ignores units), else ("counts",
        out_dims). None for the classifier (the caller's logits) and ATTN_SCORES (its scores stay in the
        kernel scratch)."""
        if op.kind in (CLASSIFIER, ATTN_SCORES):
            return None
        if mode == FUSED:
            held = self.unit_value(op)
            if held is not None:
                return held
        if op.stream_out:
            return "stream", (self.tokens, self.width)
        if op.channel_major:
            return "channel-major", op.out_dims
        if self.band_producer(op) and mode == FUSED:
            return "band", self.band_shape(op)
        return "counts", op.out_dims

    def op_scratch_bytes(self, op: Op, mode: int) -> int:
        """FORMAT.md "Kernel scratch": the bytes of kernel scratch ``op`` needs in ``mode``, a pure function
        of its shape and T, with G = ceil(K / 4). CONV3X3 (K = Cin * 9) and LINEAR (K = Din): fused 32 G
        (four rows of K inputs expanded into 16-bit lanes); spiking the larger of that (the count path at
        D >= T runs the fused kernels) and 16 G + align16(4 T outputs) (a list of active inputs and the
        per-step int32 currents of every output channel). The attention pair: ``attention_scratch_bytes``,
        the same for both records. STREAM_NEURON: none fused, spiking align16(4 T D) (one token's [D][T]
        int16 steps widened to int32). MAXPOOL and CLASSIFIER: none."""
        if op.kind in (ATTN_SCORES, ATTN_VALUES):
            return self.attention_scratch_bytes(op, mode)
        if op.kind == STREAM_NEURON:
            return _align16(4 * self.time_steps * op.in_dims[1]) if mode == SPIKING else 0
        if op.kind == CONV3X3:
            k, outputs = op.in_dims[0] * 9, op.out_dims[0]
        elif op.kind == LINEAR:
            k, outputs = op.in_dims[1], op.out_dims[1]
        else:
            return 0
        groups = (k + 3) // 4
        need = groups * 32  # fused, and the spiking count path (D >= T)
        if mode == SPIKING:
            need = max(need, groups * 16 + _align16(self.time_steps * outputs * 4))
        return need

    def scratch_bytes(self, mode: int) -> int:
        """The largest kernel scratch need of any op in ``mode`` (``op_scratch_bytes``; csdpack inspect's
        "largest_scratch_bytes"). Since format 3 each op's scratch is placed on its own (``Op.scratch``), so
        this is no longer a region of the arena, only a summary."""
        return max((self.op_scratch_bytes(op, mode) for op in self.ops), default=0)

    def attention_scratch_bytes(self, op: Op, mode: int) -> int:
        """The attention pair's kernel scratch (either record of the pair): with hd = D / heads,
        Gq = ceil(hd / 4), Gn = ceil(N / 4) and b the bytes of a spike train, fused
        align16(4 N) + 32 max(Gq, Gn) (the scores rows of a block of four queries, and one block region
        holding the four queries' head channels of q while the scores are computed, then their scores
        rows while the values are); spiking the larger of that and 64 + 16 max(Gq, Gn) + align16(N b)."""
        n, d = (op.in_dims[0], op.in_dims[1]) if op.kind == ATTN_SCORES else (op.out_dims[0], op.out_dims[1])
        gq, gn = (d // op.heads + 3) // 4, (n + 3) // 4
        fused = _align16(4 * n) + 32 * max(gq, gn)
        if mode == FUSED:
            return fused
        train = 1 if self.time_steps <= 8 else 2
        return max(fused, 64 + 16 * max(gq, gn) + _align16(n * train))

    @staticmethod
    def _value_name(kind: str, shape: tuple) -> str:
        return {"counts": "counts", "channel-major": "channel-major counts", "band": "band of counts",
                "unit u": "u of an attention unit (counts [band][D])",
                "unit v": "v of an attention unit (channel-major counts [hd][N])",
                "unit k": "k of an attention unit (counts [N][hd])",
                "unit q": "q of an attention unit (counts [band][hd])",
                "stream": "stream"}.get(kind, kind) + f" {list(shape)}"

    def _check_arena(self, mode: int) -> None:
        """Replays the plan of ``mode`` (FORMAT.md "Arena plan"): offsets aligned and inside the arena,
        every input the live output of an earlier op of the same value kind (counts, channel-major counts
        or the stream) and shape, not overwritten since by another op's output or kernel scratch, no
        output overlapping its inputs except in place (FORMAT.md "In place": at the same offset, for a
        stream add, a square LINEAR without CHANNEL_MAJOR and ATTN_VALUES over q). The attention pair's
        scores occupy no buffer: the scores' output and the values' input are 0. Each op's kernel
        scratch (FORMAT.md "Kernel scratch"): offset 0 without a need, else 16-aligned, inside the arena,
        apart from the buffers the op reads and writes (the pair: q, k, v and the output, one offset for
        both records). Bands (FORMAT.md "Bands"): a band's consumer reads the producer's output at its
        offset in both plans; in the fused plan the producer's output buffer holds its band (``band_shape``),
        which only its consumer reads (a reader expecting the whole value there fails the shape chaining),
        the consumer never writes over it, and the producer's input and scratch stay live while the
        consumer runs (``_check_unit``); the spiking plan ignores bands. Attention units (FORMAT.md
        "Attention units"): the linears read u, the scores q and k, the values v at those ops' output
        offsets in both plans; in the fused plan u, v, k and q hold one band or head (``unit_value``), which
        only the unit's ops read, no op of the unit writes in place, and the stream, u, v, k, q, o and the
        unit's scratch stay live through its six ops (``_check_attention_unit_plan``); the spiking plan ignores
        units. arena_bytes is the end of the furthest buffer or scratch, rounded up to 16."""
        mname = "fused" if mode == FUSED else "spiking"
        arena = self.arena_bytes[mode]
        if arena % 16:
            raise ImageError(f"arena_bytes: {mname} arena {arena} is not a multiple of 16")
        live = []  # (offset, size, kind, shape, producer) of the values still readable
        gone = {}  # offset -> (kind, shape, producer, what overwrote it) of the last value lost there
        end = 0
        N, D = self.tokens, self.width
        pair = []  # the pending scores' inputs: [(offset, size, name)] of q and k

        def lookup(op, off, kind, shape, what):
            where = f"op {op.index} ({op.name})"
            for (o, s, k, sh, p) in live:
                if o == off and k == kind and sh == shape:
                    return (o, s, what)
            want = self._value_name(kind, shape)
            for (o, s, k, sh, p) in live:
                if o == off:  # shape chaining: an earlier op wrote there, but another kind or shape
                    note = {"channel-major": " (a channel-major value: only ATTN_VALUES reads it, as v)",
                            "band": f" (a band of the fused plan: only op {p + 1}, its consumer, reads it)"
                            }.get(k, "")
                    if k.startswith("unit "):
                        a = self.unit_start(p)
                        note = (f" (a buffer of the attention unit of ops {a}..{a + 5} in the fused plan: only the "
                                f"unit's ops read it)")
                    raise ImageError(f"{where}: chaining ({mname}): {what} at {off} is the "
                                     f"{self._value_name(k, sh)} written by op {p}{note}, expected the {want}")
            if off in gone and gone[off][:2] == (kind, shape):
                _, _, p, by = gone[off]
                raise ImageError(f"{where}: chaining ({mname}): {what} at {off}, the {want} written by op {p}, "
                                 f"was overwritten by {by} before this op reads it")
            raise ImageError(f"{where}: chaining ({mname}): {what} at {off} is not the live {want} "
                             f"written by an earlier op")

        def overwrite(off, size, by):
            """Bytes [off, off + size) are written: the values there are lost."""
            nonlocal live
            keep = []
            for bf in live:
                if bf[0] < off + size and off < bf[0] + bf[1]:
                    gone[bf[0]] = (bf[2], bf[3], bf[4], by)
                else:
                    keep.append(bf)
            live = keep

        def unit_read(op, slot, source, what):
            """FORMAT.md "Attention units": op's ``slot`` ("input" or "input2") is the output of the unit's op
            ``source`` at its offset, in both plans (CSD_E_ARENA_PLAN); returns the (kind, shape) read there."""
            got, want = getattr(op, slot)[mode], self.ops[source].output[mode]
            if got != want:
                raise ImageError(f"op {op.index} ({op.name}): arena offsets ({mname}): {slot} {got}, expected "
                                 f"{want} ({what}, the output of op {source}, in the attention unit of ops "
                                 f"{unit}..{unit + 5})")
            return self.output_value(self.ops[source], mode)

        for op in self.ops:
            where = f"op {op.index} ({op.name})"
            inputs = []
            # the producer whose band this op consumes (FORMAT.md "Bands"), or None
            producer = self.ops[op.index - 1] if op.index > 0 and self.band_producer(self.ops[op.index - 1]) else None
            # the attention unit (FORMAT.md "Attention units") that holds this op: its first op, and this op's step
            unit = self.unit_start(op.index)
            step = op.index - unit if unit is not None else None
            for off in (op.input[mode], op.input2[mode], op.output[mode]):
                if off % 16:
                    raise ImageError(f"{where}: arena offsets ({mname}): {off} is not 16-aligned")
            if op.input_pixels:
                if op.input != (0, 0):
                    raise ImageError(f"{where}: arena offsets: a pixel input must be 0")
            elif op.kind == ATTN_VALUES:
                if op.input[mode] != 0:
                    raise ImageError(f"{where}: arena offsets ({mname}): input {op.input[mode]}, expected 0 "
                                     f"(the values read the scores of op {op.index - 1} from the kernel scratch)")
                inputs += pair  # the pair reads q and k as a whole: the scores' q and k are inputs here too
            elif producer is not None:
                # the consumer reads the producer's output at its offset in both plans: fused its band
                if op.input[mode] != producer.output[mode]:
                    raise ImageError(f"{where}: arena offsets ({mname}): input {op.input[mode]}, expected "
                                     f"{producer.output[mode]} (the output of op {producer.index}, whose band "
                                     f"this op consumes)")
                kind, shape = self.output_value(producer, mode)
                inputs.append(lookup(op, op.input[mode], kind, shape, "input"))
            elif step is not None and 1 <= step <= 3:  # the v, k and q linears read u
                kind, shape = unit_read(op, "input", unit, "u")
                inputs.append(lookup(op, op.input[mode], kind, shape, "input"))
            elif step == 4:  # the scores read q
                kind, shape = unit_read(op, "input", unit + 3, "q")
                inputs.append(lookup(op, op.input[mode], kind, shape, "input"))
            elif op.kind == STREAM_NEURON:
                inputs.append(lookup(op, op.input[mode], "stream", (N, D), "input"))
            else:
                inputs.append(lookup(op, op.input[mode], "counts", op.in_dims, "input"))
            if op.kind == ATTN_SCORES:
                inputs[0] = inputs[0][:2] + ("input (q)",)
                kind, shape = unit_read(op, "input2", unit + 2, "k") if step == 4 else ("counts", op.in_dims)
                inputs.append(lookup(op, op.input2[mode], kind, shape, "input2 (k)"))
            elif op.kind == ATTN_VALUES:
                # v: the output of a LINEAR with CHANNEL_MAJOR (FORMAT.md "Channel-major values")
                kind, shape = unit_read(op, "input2", unit + 1, "v") if step == 5 else ("channel-major", op.out_dims)
                inputs.append(lookup(op, op.input2[mode], kind, shape, "input2 (v)"))
            elif op.input2 != (0, 0):
                raise ImageError(f"{where}: arena offsets: input2 must be 0")
            written = []  # (offset, size, name) of the buffer the op writes
            if op.kind == ATTN_SCORES:
                if op.output[mode] != 0:
                    raise ImageError(f"{where}: arena offsets ({mname}): output {op.output[mode]}, expected 0 "
                                     f"(the scores stay in the kernel scratch)")
                pair = inputs  # no buffer written: q and k stay live for the values
            elif op.kind != CLASSIFIER:
                kind, shape = self.output_value(op, mode)  # fused, a producer's band
                off = op.output[mode]
                size = self.buffer_bytes(kind, shape, mode)
                if off + size > arena:
                    raise ImageError(f"{where}: arena offsets ({mname}): output [{off}, {off + size}) "
                                     f"leaves the {arena}-byte arena")
                if op.stream_out and not op.stream_set:
                    lookup(op, off, "stream", shape, "the stream it adds into")
                in_place = self._in_place_input(op)
                over_band = producer is not None and mode == FUSED
                if over_band:
                    in_place = None  # the consumer never writes over the band (FORMAT.md "Bands in the fused plan")
                in_unit = unit is not None and mode == FUSED
                if in_unit:
                    in_place = None  # no op of an attention unit writes in place in the fused plan
                for (o, s, name) in inputs:
                    if o == off and name == in_place:
                        continue
                    if o < off + size and off < o + s:
                        if over_band and name == "input":
                            allowed = f" (the band of op {producer.index}: its consumer never writes over it)"
                        elif in_unit and self._in_place_input(op) == name and o == off:
                            allowed = (f" (no op of the attention unit of ops {unit}..{unit + 5} writes in place in "
                                       f"the fused plan)")
                        else:
                            allowed = f" (only at its offset {o}: in place)" if name == in_place else ""
                        raise ImageError(f"{where}: arena offsets ({mname}): output [{off}, {off + size}) "
                                         f"overlaps {name} [{o}, {o + s}){allowed}")
                overwrite(off, size, f"op {op.index}'s output [{off}, {off + size})")
                live.append((off, size, kind, shape, op.index))
                end = max(end, off + size)
                written.append((off, size, "its stream" if op.stream_out and not op.stream_set else "output"))
                pair = []
            end = max(end, self._check_scratch(op, mode, arena, inputs + written, overwrite))
            if producer is not None and mode == FUSED:
                self._check_unit(producer, op, written)
            if unit is not None and mode == FUSED:
                self._check_attention_unit_plan(unit, op, written)
        need = _align16(end)
        if mode == SPIKING and self.arena_bytes[FUSED] > need:
            # FORMAT.md "Arena plan": spiking at least the fused need (a spiking session at D >= T runs in the
            # fused plan)
            if arena != self.arena_bytes[FUSED]:
                raise ImageError(f"arena_bytes: {mname} arena is {arena}, expected the fused arena "
                                 f"{self.arena_bytes[FUSED]} (the spiking plan ends at {end}, before it)")
            return
        if need != arena:
            raise ImageError(f"arena_bytes: {mname} arena is {arena}, the plan needs {need} (the end of the "
                             f"furthest buffer or kernel scratch, {end}, rounded up to 16)")

    def _check_scratch(self, op: Op, mode: int, arena: int, buffers: list, overwrite) -> int:
        """FORMAT.md "Kernel scratch": op's region in ``mode`` (``op.scratch[mode]``, ``op_scratch_bytes``
        bytes). Offset 0 when the op needs none; else 16-aligned, starting and ending inside the arena,
        the pair's values at the scores' offset, and apart from ``buffers`` ((offset, size, name) of what
        the op reads and writes; the pair's values: q, k, v and the output). The scratch overwrites any
        other value there (``overwrite``): a later reader of one is refused by the chaining. Returns the
        scratch's end (0 without one)."""
        mname = "fused" if mode == FUSED else "spiking"
        where = f"op {op.index} ({op.name})"
        need, off = self.op_scratch_bytes(op, mode), op.scratch[mode]
        if need == 0:
            if off != 0:
                raise ImageError(f"{where}: kernel scratch ({mname}): offset {off}, expected 0 (this op needs "
                                 f"no kernel scratch)")
            return 0
        if off % 16:
            raise ImageError(f"{where}: kernel scratch ({mname}): offset {off} is not 16-aligned")
        if off >= arena:
            raise ImageError(f"{where}: kernel scratch ({mname}): offset {off} is not inside the {arena}-byte arena")
        if off + need > arena:
            raise ImageError(f"{where}: kernel scratch ({mname}): [{off}, {off + need}) ({need} bytes) leaves "
                             f"the {arena}-byte arena")
        if op.kind == ATTN_VALUES:
            scores = self.ops[op.index - 1]
            if off != scores.scratch[mode]:
                raise ImageError(f"{where}: kernel scratch ({mname}): offset {off}, but the scores (op "
                                 f"{scores.index}) have {scores.scratch[mode]}: the attention pair shares one "
                                 f"kernel scratch")
        for (o, s, name) in buffers:
            if o < off + need and off < o + s:
                raise ImageError(f"{where}: kernel scratch ({mname}): [{off}, {off + need}) overlaps {name} "
                                 f"[{o}, {o + s})")
        overwrite(off, need, f"op {op.index}'s kernel scratch [{off}, {off + need})")
        return off + need

    def _check_unit(self, producer: Op, op: Op, written: list) -> None:
        """FORMAT.md "Bands in the fused plan": while a band's producer and its consumer ``op`` run as one
        unit, band by band, both ops' buffers and kernel scratch are live, so the producer's input and its
        kernel scratch must not overlap the consumer's output (``written``: (offset, size, name)) or the
        consumer's kernel scratch. (The band itself is kept apart from the consumer's output and scratch by
        the consumer's own checks, and from the producer's input and scratch by the producer's.)"""
        where = f"op {op.index} ({op.name})"
        unit = f"both are live while the band unit of ops {producer.index} and {op.index} runs"
        held = []  # (offset, size, name) of what the producer holds for the whole unit
        if not producer.input_pixels:
            held.append((producer.input[FUSED], self.buffer_bytes("counts", producer.in_dims, FUSED), "input"))
        need = self.op_scratch_bytes(producer, FUSED)
        if need:
            held.append((producer.scratch[FUSED], need, "kernel scratch"))
        mine = [(o, s, "arena offsets (fused): output") for (o, s, _) in written]
        need = self.op_scratch_bytes(op, FUSED)
        if need:
            mine.append((op.scratch[FUSED], need, "kernel scratch (fused):"))
        for (o, s, what) in mine:
            for (po, ps, name) in held:
                if o < po + ps and po < o + s:
                    raise ImageError(f"{where}: {what} [{o}, {o + s}) overlaps op {producer.index}'s {name} "
                                     f"[{po}, {po + ps}): {unit}")

    def _attention_unit_buffers(self, a: int, upto: int) -> list:
        """(offset, size, name) in the fused plan of the buffers of the attention unit of op ``a`` written by
        ops a .. ``upto``: the stream the STREAM_NEURON reads, then u, v, k, q and o (FORMAT.md "Attention
        units in the fused plan")."""
        N, D = self.tokens, self.width
        held = [(self.ops[a].input[FUSED], self.buffer_bytes("stream", (N, D), FUSED), f"the stream (op {a}'s input)")]
        for j, name in ((0, "u"), (1, "v"), (2, "k"), (3, "q"), (5, "o")):
            if a + j <= upto:
                op = self.ops[a + j]
                held.append((op.output[FUSED], self.buffer_bytes(*self.output_value(op, FUSED), FUSED),
                             f"{name} (op {a + j}'s output)"))
        return held

    def _attention_unit_scratch(self, a: int, upto: int) -> list:
        """(offset, size, name) of the fused kernel scratch of the attention unit's ops a .. ``upto`` that
        have one."""
        out = []
        for j in range(a, upto + 1):
            need = self.op_scratch_bytes(self.ops[j], FUSED)
            if need:
                out.append((self.ops[j].scratch[FUSED], need, f"op {j}'s kernel scratch"))
        return out

    def _check_attention_unit_plan(self, a: int, op: Op, written: list) -> None:
        """FORMAT.md "Attention units": while the attention unit of ops a .. a + 5 runs in the fused plan, head
        by head, its six buffers (the stream its STREAM_NEURON reads, u, v, k, q and o) and every one of its
        ops' kernel scratch are live from op a to op a + 5: the six buffers are pairwise apart, and every
        scratch region is apart from all six (the scratch regions may share bytes with one another), else
        CSD_E_ARENA_PLAN. Checked at each op of the unit: its output (``written``) against the stream and the
        earlier ops' outputs and scratch, its scratch against the stream and the outputs so far (its own
        output included); so every pair is checked once, when its later member is placed."""
        where = f"op {op.index} ({op.name})"
        unit = f"the attention unit of ops {a}..{a + 5} holds both while it runs"
        before = self._attention_unit_buffers(a, op.index - 1) + self._attention_unit_scratch(a, op.index - 1)
        for (o, s, _) in written:
            for (po, ps, name) in before:
                if o < po + ps and po < o + s:
                    raise ImageError(f"{where}: arena offsets (fused): output [{o}, {o + s}) overlaps {name} "
                                     f"[{po}, {po + ps}): {unit}")
        need = self.op_scratch_bytes(op, FUSED)
        if need:
            o, s = op.scratch[FUSED], need
            for (po, ps, name) in self._attention_unit_buffers(a, op.index):
                if o < po + ps and po < o + s:
                    raise ImageError(f"{where}: kernel scratch (fused): [{o}, {o + s}) overlaps {name} "
                                     f"[{po}, {po + ps}): {unit}")

    @staticmethod
    def _in_place_input(op: Op) -> str | None:
        """The input whose buffer op's output may replace (the same offset), FORMAT.md "In place":
        a LINEAR without STREAM_OUT or CHANNEL_MAJOR whose Din == Dout its input, ATTN_VALUES the
        pair's q. (A stream add's output is the stream it reads, which is not among its inputs.)"""
        if (op.kind == LINEAR and not op.stream_out and not op.channel_major
                and op.in_dims[1] == op.out_dims[1]):
            return "input"
        if op.kind == ATTN_VALUES:
            return "input (q)"
        return None


def _pool_hw(h: int, w: int, pool: int) -> tuple:
    if pool == 2:
        return (h // 2, w // 2)
    return ((h - 1) // 2 + 1, (w - 1) // 2 + 1)


def _op_macs(op: Op) -> int:
    """Multiply-accumulates of one fused inference of op (FORMAT.md does not define the count;
    this reading matches the images csdpack writes)."""
    i, o = op.in_dims, op.out_dims
    if op.kind == CONV3X3:
        # taps that fall inside the input (zero padding costs nothing): 3H - 2 rows, 3W - 2 columns
        return o[0] * i[0] * (3 * o[1] - 2) * (3 * o[2] - 2)
    if op.kind == LINEAR:
        return o[0] * i[1] * o[1]
    if op.kind == ATTN_SCORES:
        return i[0] * i[0] * i[1]
    if op.kind == ATTN_VALUES:
        return o[0] * o[0] * o[1]
    if op.kind == CLASSIFIER:
        return o[0] * i[1]
    return 0


# ----------------------------------------------------------------------------------------------
# integer kernels (batched, int64 in, int64 out)


def _matmul(a: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    """Exact integer a @ b through float64 BLAS (checked: sum of |products| < 2**53)."""
    k = a.shape[-1]
    amax = int(np.abs(a).max()) if a.size else 0
    bmax = int(np.abs(b).max()) if b.size else 0
    if amax * bmax * k >= _EXACT:
        raise Int32Overflow(f"{what}: operands too large for an exact float64 product")
    return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)


def _conv3x3(x: np.ndarray, w: np.ndarray, what: str) -> np.ndarray:
    """x int [B, Cin, H, W], w [Cout, Cin, 3, 3] -> int64 [B, Cout, H, W]; zero padding 1."""
    B, C, H, W = x.shape
    xp = np.zeros((B, C, H + 2, W + 2), dtype=np.float64)
    xp[:, :, 1:H + 1, 1:W + 1] = x
    cols = np.empty((B, C, 9, H, W), dtype=np.float64)
    for dy in range(3):
        for dx in range(3):
            cols[:, :, dy * 3 + dx] = xp[:, :, dy:dy + H, dx:dx + W]
    cols = cols.reshape(B, C * 9, H * W)
    wm = w.reshape(w.shape[0], C * 9)
    acc = _matmul(wm[None], cols, what)  # [B, Cout, H*W]
    return acc.reshape(B, w.shape[0], H, W)


def _maxpool(x: np.ndarray, pool: int) -> np.ndarray:
    """x [B, C, H, W] (>= 0) -> [B, C, H', W']."""
    B, C, H, W = x.shape
    Ho, Wo = _pool_hw(H, W, pool)
    if pool == 2:
        return x[:, :, :2 * Ho, :2 * Wo].reshape(B, C, Ho, 2, Wo, 2).max(axis=(3, 5))
    xp = np.zeros((B, C, 2 * Ho + 1, 2 * Wo + 1), dtype=x.dtype)  # zero padding, counts >= 0
    xp[:, :, 1:H + 1, 1:W + 1] = x
    out = np.zeros((B, C, Ho, Wo), dtype=x.dtype)
    for dy in range(3):
        for dx in range(3):
            np.maximum(out, xp[:, :, dy:dy + 2 * Ho:2, dx:dx + 2 * Wo:2], out=out)
    return out


def _shifted(acc: np.ndarray, k: int, what: str) -> np.ndarray:
    _check32(acc, f"{what}: accumulation")
    a = acc * (1 << k)
    _check32(a, f"{what}: acc << k")
    return a


def _fire_fused(acc: np.ndarray, op: Op, theta: np.ndarray, beta: np.ndarray, L: int, what: str) -> np.ndarray:
    """count = clip(floor(((acc << k) + beta + floor(theta/2)) / theta), 0, L) -> uint8."""
    a = _shifted(acc, op.shift, what)
    v = a + beta + theta // 2
    _check32(v, f"{what}: membrane")
    return np.clip(v // theta, 0, L).astype(np.uint8)


def _fire_dif(cur: np.ndarray, op: Op, theta: np.ndarray, beta: np.ndarray, L: int, T: int, D: int,
              what: str) -> np.ndarray:
    """cur int64 [B, T, ...] = per-step accumulation (before << k and beta) -> spike trains uint8 [B, T, ...].

    DIF neuron: v = floor(theta/2); for tau in 0..T+D-1: add I[tau] (tau < T); from tau = D fire
    at most L times whenever v >= theta, the spike landing at step tau - D."""
    I = _shifted(cur, op.shift, what)
    I[:, 0] += beta
    _check32(I, f"{what}: current")
    v = np.broadcast_to(theta // 2, I.shape[:1] + I.shape[2:]).astype(np.int64).copy()
    emitted = np.zeros(v.shape, dtype=np.int64)
    out = np.zeros(I.shape, dtype=np.uint8)
    for tau in range(T + D):
        if tau < T:
            v += I[:, tau]
            _check32(v, f"{what}: membrane at step {tau}")
        if tau >= D:
            fire = (v >= theta) & (emitted < L)
            out[:, tau - D] = fire
            v -= np.where(fire, theta, 0)
            emitted += fire
    return out


def attn_scores_acc(q: np.ndarray, k: np.ndarray, heads: int) -> np.ndarray:
    """Fused scores: q, k counts [B, N, D] -> acc[b, h, i, j] = sum_{d in head h} q[i, d] k[j, d]."""
    B, N, Dm = q.shape
    qh = q.astype(np.int64).reshape(B, N, heads, Dm // heads).transpose(0, 2, 1, 3)
    kh = k.astype(np.int64).reshape(B, N, heads, Dm // heads).transpose(0, 2, 3, 1)
    return _matmul(qh, kh, "attention scores")


def attn_scores_steps(q: np.ndarray, k: np.ndarray, heads: int) -> np.ndarray:
    """Spiking scores: q, k trains [B, T, N, D] (0/1) -> per-step acc [B, T, heads, N, N],
    I[t] = q_t K_t + Q_{t-1} k_t (capitals: running counts, inclusive)."""
    B, T, N, Dm = q.shape
    qh = q.astype(np.int64).reshape(B, T, N, heads, Dm // heads).transpose(0, 1, 3, 2, 4)  # [B,T,h,N,d]
    kh = k.astype(np.int64).reshape(B, T, N, heads, Dm // heads).transpose(0, 1, 3, 4, 2)  # [B,T,h,d,N]
    K = np.cumsum(kh, axis=1)
    Qprev = np.cumsum(qh, axis=1) - qh
    return _matmul(qh, K, "attention scores") + _matmul(Qprev, kh, "attention scores")


def attn_values_acc(a: np.ndarray, v: np.ndarray, heads: int) -> np.ndarray:
    """Fused values: a counts [B, heads, N, N], v counts [B, N, D] -> acc[b, i, c] = sum_j a[h(c), i, j] v[j, c]."""
    B, N, Dm = v.shape
    vh = v.astype(np.int64).reshape(B, N, heads, Dm // heads).transpose(0, 2, 1, 3)  # [B,h,N,d]
    return _matmul(a.astype(np.int64), vh, "attention values").transpose(0, 2, 1, 3).reshape(B, N, Dm)


def attn_values_steps(a: np.ndarray, v: np.ndarray, heads: int) -> np.ndarray:
    """Spiking values: a trains [B, T, heads, N, N], v trains [B, T, N, D] -> per-step acc [B, T, N, D],
    I[t] = a_t V_t + A_{t-1} v_t."""
    B, T, N, Dm = v.shape
    a = a.astype(np.int64)
    vh = v.astype(np.int64).reshape(B, T, N, heads, Dm // heads).transpose(0, 1, 3, 2, 4)  # [B,T,h,N,d]
    V = np.cumsum(vh, axis=1)
    Aprev = np.cumsum(a, axis=1) - a
    cur = _matmul(a, V, "attention values") + _matmul(Aprev, vh, "attention values")
    return cur.transpose(0, 1, 3, 2, 4).reshape(B, T, N, Dm)


def maxpool_steps(trains: np.ndarray, pool: int) -> np.ndarray:
    """Max-pool of spike trains [B, T, C, H, W]: m_t = max_i C_i(t) - max_i C_i(t-1), C the running counts."""
    B, T = trains.shape[:2]
    C = np.cumsum(trains, axis=1, dtype=np.int64)
    M = _maxpool(C.reshape((B * T,) + C.shape[2:]), pool)
    M = M.reshape((B, T) + M.shape[1:])
    m = np.diff(M, axis=1, prepend=0)
    assert m.size == 0 or (m.min() >= 0 and m.max() <= 1), "max of running counts steps by 0 or 1"
    return m.astype(np.uint8)


def fire_fused(acc, shift: int, theta, beta, levels: int) -> np.ndarray:
    """Public form of the fused neuron (broadcasting theta/beta against acc)."""
    op = Op(0, 0, 0, shift, 0, (), (), 0, (0, 0), (0, 0), (0, 0), 0, 0, 0)
    return _fire_fused(np.asarray(acc, dtype=np.int64), op, np.asarray(theta, dtype=np.int64),
                       np.asarray(beta, dtype=np.int64), levels, "neuron")


def fire_dif(cur, shift: int, theta, beta, levels: int, time_steps: int, delay: int) -> np.ndarray:
    """Public form of the DIF neuron: cur [B, T, ...] per-step accumulations -> trains [B, T, ...]."""
    op = Op(0, 0, 0, shift, 0, (), (), 0, (0, 0), (0, 0), (0, 0), 0, 0, 0)
    return _fire_dif(np.asarray(cur, dtype=np.int64), op, np.asarray(theta, dtype=np.int64),
                     np.asarray(beta, dtype=np.int64), levels, time_steps, delay, "neuron")


def stream_write_fused(acc, bias, stream_shift: int) -> np.ndarray:
    """Public form of a fused stream writer's value (SEMANTICS.md "Stream sinks"): the exact int32 sum
    y = acc + bias brought to the stream's unit, v = floor(y / 2^s) (an arithmetic shift right), int64.
    bias broadcasts against acc's trailing axes."""
    return _stream_value(np.asarray(acc, dtype=np.int64), np.asarray(bias, dtype=np.int64), stream_shift,
                         "stream writer")


def stream_write_steps(cur, bias, stream_shift: int) -> np.ndarray:
    """Public form of a spiking stream writer's steps: cur [B, T, ...] the per-step currents I[t] (not
    shifted, without the bias), bias broadcasting against one step [...] -> int64 [B, T, ...]
    floor(P[t] / 2^s) - floor(P[t-1] / 2^s) with P[t] = bias + sum_{tau <= t} I[tau] and
    floor(P[-1] / 2^s) = 0; the steps sum to the fused value of sum_t I[t]."""
    return _stream_steps(np.asarray(cur, dtype=np.int64), np.asarray(bias, dtype=np.int64), stream_shift,
                         "stream writer")


# ----------------------------------------------------------------------------------------------
# execution


def _stream_bias(op: Op) -> np.ndarray:
    """The writer's bias as int64 broadcasting against [..., N, D]."""
    return op.biases.astype(np.int64)  # [D] or [N, D] both broadcast on the last axes


def _stream_value(acc: np.ndarray, bias: np.ndarray, s: int, what: str) -> np.ndarray:
    """Fused writer: v = floor((acc + bias) / 2^s), the sum exact int32."""
    _check32(acc, f"{what}: accumulation")
    y = acc + bias
    _check32(y, f"{what}: acc + bias")
    return y >> s  # int64 arithmetic shift: the floor


def _stream_steps(cur: np.ndarray, bias: np.ndarray, s: int, what: str) -> np.ndarray:
    """Spiking writer: cur [B, T, ...] -> the rounded running sums' steps [B, T, ...] (int64)."""
    _check32(cur, f"{what}: current")
    P = np.cumsum(cur, axis=1) + bias  # the bias broadcasts on the trailing axes: it is in every P[t]
    _check32(P, f"{what}: running sum")
    return np.diff(P >> s, axis=1, prepend=0)


def _classifier(counts: np.ndarray, op: Op, beta: np.ndarray, what: str) -> np.ndarray:
    """logits[b, j] = beta[j] + sum_c w[j, c] * counts[b, c] (int32, checked)."""
    logits = beta[None] + _matmul(counts, op.weights.astype(np.int64).T, what)
    _check32(logits, f"{what}: logits")
    return logits.astype(np.int32)


def _run_fused(image: Image, pixels: np.ndarray, trace: bool):
    B = pixels.shape[0]
    L = image.levels
    # arena offset -> the buffer's value (an in-place output replaces its input); values are logical
    # arrays, token-major even where the arena stores them channel-major (CHANNEL_MAJOR: the pair's v),
    # and the kernel scratch is not modelled (a validated plan never reads a value a scratch overwrote)
    bufs = {}
    scores = None  # the pending ATTN_SCORES output, read by the ATTN_VALUES after it (no buffer)
    tr = []
    logits = None
    for op in image.ops:
        what = f"op {op.index} ({op.name})"
        theta = op.thresholds.astype(np.int64) if op.thresholds is not None else None
        beta = op.biases.astype(np.int64) if op.biases is not None else None
        src = _source(bufs, op, FUSED, scores, pixels.astype(np.int64) if op.input_pixels else None)
        if op.kind == CONV3X3:
            acc = _conv3x3(src, op.weights.astype(np.int64), what)  # [B, Cout, H, W]
            if op.stream_out:
                acc = acc.reshape(B, acc.shape[1], -1).transpose(0, 2, 1)  # tokens n = y*W + x
                out = _write_stream(bufs, op, FUSED, acc, what)
            else:
                out = _fire_fused(acc, op, theta[:, None, None], beta[:, None, None], L, what)
        elif op.kind == LINEAR:
            acc = _matmul(src.astype(np.int64), op.weights.astype(np.int64).T[None], what)  # [B, N, Dout]
            if op.stream_out:
                out = _write_stream(bufs, op, FUSED, acc, what)
            else:
                out = _fire_fused(acc, op, theta, beta, L, what)
        elif op.kind == MAXPOOL:
            out = _maxpool(src, op.pool)
        elif op.kind == STREAM_NEURON:
            out = _fire_fused(src.astype(np.int64), op, theta, beta, L, what)
        elif op.kind == ATTN_SCORES:
            acc = attn_scores_acc(src, bufs[op.input2[FUSED]], op.heads)  # [B, h, N, N]
            out = _fire_fused(acc, op, theta[:, None, None], beta[:, None, None], L, what)
        elif op.kind == ATTN_VALUES:
            acc = attn_values_acc(src, bufs[op.input2[FUSED]], op.heads)  # [B, N, D]
            out = _fire_fused(acc, op, theta, beta, L, what)
        elif op.kind == CLASSIFIER:
            logits = _classifier(src.astype(np.int64).sum(axis=1), op, beta, what)  # counts summed over tokens: [B, D]
            if trace:
                tr.append(logits)
            continue
        scores = _store(bufs, op, FUSED, out)
        if trace:
            tr.append(out.astype(np.int16) if op.stream_out else out)
    return logits, tr


def _source(bufs: dict, op: Op, mode: int, scores, pixels):
    """An op's first input: the pixels, the pending scores (ATTN_VALUES: the scores op before it holds
    no buffer, FORMAT.md "The attention pair") or the buffer at its input offset."""
    if op.input_pixels:
        return pixels
    if op.kind == ATTN_VALUES:
        return scores
    return bufs.get(op.input[mode])


def _store(bufs: dict, op: Op, mode: int, out: np.ndarray):
    """Writes op's output into its buffer, replacing whatever sat at that offset (an in-place output
    replaces its input). The scores stay out of the arena: returns them for the values op after."""
    if op.kind == ATTN_SCORES:
        return out
    bufs[op.output[mode]] = out
    return None


def _write_stream(bufs: dict, op: Op, mode: int, acc: np.ndarray, what: str) -> np.ndarray:
    """SEMANTICS.md "Stream sinks", the op's shift the stream shift s. Fused: acc int64 [B, N, D],
    v = floor((acc + bias) / 2^s). Spiking: acc int64 [B, T, N, D] the per-step currents, v the steps
    of the rounded running sum floor(P[t] / 2^s) (P[t] = bias + the currents up to t). The stream is
    set to v or has v added, and every value must fit int16 (Int16Overflow otherwise)."""
    bias = _stream_bias(op)
    if mode == FUSED:
        v = _stream_value(acc, bias, op.shift, what)
    else:
        v = _stream_steps(acc, bias, op.shift, what)
    X = v if op.stream_set else bufs[op.output[mode]] + v
    _check16(X, f"{what}: stream")
    return X


def _run_spiking(image: Image, pixels: np.ndarray, delay: int, trace: bool):
    B = pixels.shape[0]
    T, L, Dl = image.time_steps, image.levels, delay
    bufs = {}  # arena offset -> the buffer's value (an in-place output replaces its input)
    scores = None  # the pending ATTN_SCORES output, read by the ATTN_VALUES after it (no buffer)
    tr = []
    logits = None
    for op in image.ops:
        what = f"op {op.index} ({op.name})"
        theta = op.thresholds.astype(np.int64) if op.thresholds is not None else None
        beta = op.biases.astype(np.int64) if op.biases is not None else None
        src = _source(bufs, op, SPIKING, scores, None)
        if op.kind == CONV3X3:
            if op.input_pixels:
                acc0 = _conv3x3(pixels.astype(np.int64), op.weights.astype(np.int64), what)
                cur = np.zeros((B, T) + acc0.shape[1:], dtype=np.int64)
                cur[:, 0] = acc0  # the encoding layer injects its whole current at t = 0
            else:
                s = src.reshape((B * T,) + src.shape[2:])
                cur = _conv3x3(s, op.weights.astype(np.int64), what)
                cur = cur.reshape((B, T) + cur.shape[1:])
            if op.stream_out:
                cur = cur.reshape(B, T, cur.shape[2], -1).transpose(0, 1, 3, 2)  # [B, T, N, D]
                out = _write_stream(bufs, op, SPIKING, cur, what)
            else:
                out = _fire_dif(cur, op, theta[:, None, None], beta[:, None, None], L, T, Dl, what)
        elif op.kind == LINEAR:
            cur = _matmul(src.astype(np.int64), op.weights.astype(np.int64).T[None, None], what)
            if op.stream_out:
                out = _write_stream(bufs, op, SPIKING, cur, what)
            else:
                out = _fire_dif(cur, op, theta, beta, L, T, Dl, what)
        elif op.kind == MAXPOOL:
            out = maxpool_steps(src, op.pool)
        elif op.kind == STREAM_NEURON:
            out = _fire_dif(src.astype(np.int64), op, theta, beta, L, T, Dl, what)
        elif op.kind == ATTN_SCORES:
            cur = attn_scores_steps(src, bufs[op.input2[SPIKING]], op.heads)  # [B, T, h, N, N]
            out = _fire_dif(cur, op, theta[:, None, None], beta[:, None, None], L, T, Dl, what)
        elif op.kind == ATTN_VALUES:
            cur = attn_values_steps(src, bufs[op.input2[SPIKING]], op.heads)  # [B, T, N, D]
            out = _fire_dif(cur, op, theta, beta, L, T, Dl, what)
        elif op.kind == CLASSIFIER:
            # every spike (n, c, t) adds w[:, c]: the spikes summed over tokens and steps
            logits = _classifier(src.astype(np.int64).sum(axis=(1, 2)), op, beta, what)
            if trace:
                tr.append(logits)
            continue
        scores = _store(bufs, op, SPIKING, out)
        if trace:
            tr.append(np.moveaxis(out, 1, -1).astype(np.int16 if op.stream_out else np.uint8))
    return logits, tr


def _as_batch(image: Image, images: np.ndarray) -> np.ndarray:
    x = np.asarray(images)
    if x.dtype != np.uint8:
        if x.size and (x.min() < 0 or x.max() > 255 or not np.issubdtype(x.dtype, np.integer)):
            raise ValueError("pixels must be uint8 values")
        x = x.astype(np.uint8)
    return x.reshape((-1,) + image.input_shape)


def _delay(image: Image, delay) -> int:
    d = image.delay if delay is None else int(delay)
    if not 0 <= d <= image.time_steps:
        raise ValueError(f"delay {d} outside 0..T = 0..{image.time_steps}")
    return d


def load(path: str) -> Image:
    """Read, parse and validate the .csd image at ``path`` (``Image.load``); raises ImageError naming the
    failed check, OSError when the file cannot be read."""
    return Image.load(path)


def run(image: Image, pixels, mode: str = "fused", delay: int | None = None, trace: bool = False):
    """One inference. pixels: uint8 [C, H, W] (or flat). Returns int32 logits [classes], and with
    trace=True also a list with each op's output for this image:

    fused: counts uint8 in the spec's layouts ([C, H, W], [N, D], [heads, N, N]) or the stream
    int16 [N, D]; spiking: spike trains uint8 0/1 of shape [..., T], the stream int16 [N, D, T] (its
    steps; the sum over the steps is what the count path holds).
    An ATTN_SCORES entry is its scores [heads, N, N], though they hold no arena buffer (the runtime
    streams them through its kernel scratch). A LINEAR with CHANNEL_MAJOR (the attention's v) is given
    token-major like any other LINEAR, [N, Dout] (spiking [N, Dout, T]); the runtime's arena holds it
    transposed, [Dout][N] (``csdformer.validate.op_bytes`` gives those bytes). The classifier's entry is
    the logits."""
    x = np.asarray(pixels)
    if x.size != int(np.prod(image.input_shape)):
        raise ValueError(f"pixels: {x.size} values, the image wants {list(image.input_shape)}")
    logits, tr = _execute(image, _as_batch(image, x), mode, delay, trace)
    if trace:
        return logits[0], [t[0] for t in tr]
    return logits[0]


def _execute(image: Image, batch: np.ndarray, mode: str, delay, trace: bool):
    if mode not in MODES:
        raise ValueError(f"mode must be 'fused' or 'spiking', not {mode!r}")
    if mode == "fused":
        return _run_fused(image, batch, trace)
    return _run_spiking(image, batch, _delay(image, delay), trace)


def run_batch(image: Image, images, mode: str = "fused", delay: int | None = None,
              chunk: int | None = None) -> np.ndarray:
    """Logits int32 [B, classes] for uint8 images [B, C, H, W], vectorized over the batch
    (in chunks to bound memory)."""
    x = _as_batch(image, images)
    if chunk is None:
        chunk = 500 if mode == "fused" else 32
    out = np.empty((x.shape[0], image.classes), dtype=np.int32)
    for i in range(0, x.shape[0], chunk):
        out[i:i + chunk] = _execute(image, x[i:i + chunk], mode, delay, False)[0]
    return out


def predict(logits: np.ndarray) -> np.ndarray:
    """The first index of the largest logit."""
    return np.argmax(logits, axis=-1)


# ----------------------------------------------------------------------------------------------
# command line


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m csdformer.reference",
                                description="NumPy reference executor for .csd images")
    p.add_argument("model", help="the .csd image")
    p.add_argument("--data", default="fashion-mnist", help="data set id (csdformer.data)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--limit", type=int, default=None, help="first N test images")
    p.add_argument("--mode", choices=("fused", "spiking", "both"), default="fused")
    p.add_argument("--delay", type=int, default=None, help="DIF delay for spiking mode (default: the header's)")
    p.add_argument("--reference", default=None, help="predictions .npy to compare with (e.g. test_pred.npy)")
    args = p.parse_args(argv)

    try:
        image = Image.load(args.model)
    except (OSError, ImageError) as e:
        print(f"error: {args.model}: {e}", file=sys.stderr)
        return 2
    from csdformer import data as datasets  # imports torch; only the command line needs it

    split = datasets.load(args.data, "test", args.data_dir)
    images = split.images.numpy()
    labels = split.labels.numpy()
    if args.limit is not None:
        images, labels = images[:args.limit], labels[:args.limit]
    ref = None
    if args.reference:
        ref = np.load(args.reference)
        if len(ref) < len(labels):
            print(f"note: {args.reference} holds {len(ref)} predictions; agreement covers the first {len(ref)}")
        ref = ref[:len(labels)]
    print(f"{args.model}: {len(image.ops)} ops, T={image.time_steps} L={image.levels} "
          f"D={image.delay}, {len(labels)} {args.data} test images")
    modes = ["fused", "spiking"] if args.mode == "both" else [args.mode]
    results = {}
    for mode in modes:
        t0 = time.perf_counter()
        logits = run_batch(image, images, mode, args.delay)
        dt = time.perf_counter() - t0
        pred = predict(logits)
        results[mode] = logits
        extra = f" delay={_delay(image, args.delay)}" if mode == "spiking" else ""
        line = f"{mode}{extra}: accuracy {100 * np.mean(pred == labels):.2f}% ({dt:.1f} s)"
        if ref is not None:
            agree = pred[:len(ref)] == ref
            line += f", agreement with {args.reference}: {100 * np.mean(agree):.2f}% ({int((~agree).sum())} differ)"
        print(line)
    if len(results) == 2:
        differ = int(np.any(results["fused"] != results["spiking"], axis=1).sum())
        pdiff = int(np.sum(predict(results["fused"]) != predict(results["spiking"])))
        print(f"fused vs spiking: logits differ on {differ} of {len(labels)} images, predictions on {pdiff}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
