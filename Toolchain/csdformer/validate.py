"""Compare a device's output with the NumPy reference and name the first divergence.

    python -m csdformer.validate MODEL.csd LOG [--data fashion-mnist] [--data-dir DIR]

LOG is any text containing csd-trace blocks (docs/VALIDATION.md): from
`csdpack trace` (the host runtime), from the QEMU firmware's output, or from a
real board's serial console. Other lines are ignored. For each block the
reference runs the same input in the same mode and delay; every `op` line's
CRC-32 is compared with the reference's bytes for that op (same layout as the
runtime's arena buffer), and where the log carries the bytes (`data@` lines),
the first differing element is named with its index. Logits are compared last.
Exit status 0 when everything present in the log matches.
"""

from __future__ import annotations

import argparse
import re
import sys
import zlib

import numpy as np

from . import reference

HEADER = re.compile(r"csd-trace 1 mode=(fused|spiking) delay=(\d+) input=(\d+)")
OP = re.compile(r"op (\d+) kind=(\d+) bytes=(\d+) crc32=([0-9a-f]{8})")
DATA = re.compile(r"op (\d+) data@(\d+) ([0-9a-f]+)")


def parse_log(text: str) -> list[dict]:
    blocks, cur = [], None
    for raw in text.splitlines():
        line = raw.strip()
        m = HEADER.search(line)
        if m:
            cur = {"mode": m.group(1), "delay": int(m.group(2)), "input": int(m.group(3)), "ops": {}, "data": {},
                   "logits": None}
            blocks.append(cur)
            continue
        if cur is None:
            continue
        if (m := OP.search(line)):
            cur["ops"][int(m.group(1))] = (int(m.group(2)), int(m.group(3)), int(m.group(4), 16))
        elif (m := DATA.search(line)):
            cur["data"].setdefault(int(m.group(1)), {})[int(m.group(2))] = bytes.fromhex(m.group(3))
        elif line.startswith("logits "):
            cur["logits"] = [int(v) for v in line.split()[1:]]
        elif line == "end":
            cur = None
    return blocks


def op_bytes(image: reference.Image, op: reference.Op, out: np.ndarray, mode: str,
             device_bytes: int | None = None) -> tuple[bytes, tuple, int]:
    """The reference output of one op as the runtime's arena bytes: (bytes, element shape, element size).
    A spiking stream is [N][D][T] per step, or, where the device's buffer holds one int16 per (token,
    channel) (the count path, docs/SEMANTICS.md "Prefix trains"), each value's sum over the steps.
    A LINEAR with CHANNEL_MAJOR (the attention's v, docs/FORMAT.md "Channel-major values") stores token t,
    channel c at element c * N + t: its bytes and element shape are [Dout][N] (the reference's trace
    gives it token-major, [N, Dout]). A band's producer (docs/FORMAT.md "Bands") holds only its band where
    the unit runs band by band (fused, and the count path): where the device's buffer has the band's
    size, the bytes are the band buffer after the last band (``last_band``). Likewise the u, v, k and q of
    an attention unit (docs/FORMAT.md "Attention units") hold one band or head there: where the device's
    buffer has that size, the bytes are the buffer after the unit's last head (``unit_buffer``)."""
    arr = np.asarray(out)[0]
    if op.channel_major:
        arr = np.swapaxes(arr, 0, 1)  # [N, Dout(, T)] -> [Dout, N(, T)]: channel-major
    held = unit_buffer(image, op, arr) if device_bytes is not None else None
    if held is None and device_bytes is not None and op.band and image.band_producer(op):
        held = last_band(op, arr)
    if held is not None:
        if device_bytes != _whole_bytes(image, arr, mode) and device_bytes == _whole_bytes(image, held, mode):
            arr = held
    if op.stream_out:
        if mode == "spiking" and device_bytes == 2 * arr[..., 0].size:
            total = arr.astype(np.int64).sum(axis=-1)
            arr = ((total + 2**15) % 2**16 - 2**15)
        arr = arr.astype("<i2")
        return arr.tobytes(), arr.shape, 2
    if mode == "fused":
        arr = arr.astype(np.uint8)
        return arr.tobytes(), arr.shape, 1
    t = image.time_steps
    weights = (1 << np.arange(t)).astype(np.int64)
    packed = (arr.astype(np.int64) * weights).sum(axis=-1)
    dtype = np.uint8 if t <= 8 else np.dtype("<u2")
    packed = packed.astype(dtype)
    return packed.tobytes(), packed.shape, packed.dtype.itemsize


def _whole_bytes(image: reference.Image, arr: np.ndarray, mode: str) -> int:
    """The bytes op_bytes gives for a (counts or trains) output ``arr`` of one image."""
    if mode == "fused":
        return arr.size
    return arr[..., 0].size * (1 if image.time_steps <= 8 else 2)


def last_band(op: reference.Op, arr: np.ndarray) -> np.ndarray:
    """docs/FORMAT.md "Bands": the band buffer of a producer after its unit ran, from its whole output ``arr``
    (a CONV3X3's [C, H, W], a LINEAR's [N, D], with a trailing step axis in spiking mode). The bands are
    the rows [r, min(r + band, rows)) for r = 0, band, 2 band, ... (the map rows y of a conv, the tokens of
    a linear), each written over the first rows of the buffer ([C][band][W], [band][D]): after the last
    band the buffer holds it, and where the last band is shorter, the band before it in the other rows."""
    axis = 1 if op.kind == reference.CONV3X3 else 0
    rows = arr.shape[axis]
    shape = list(arr.shape)
    shape[axis] = min(op.band, rows)
    buf = np.zeros(shape, dtype=arr.dtype)
    for r in range(0, rows, op.band):
        h = min(op.band, rows - r)
        dst = [slice(None)] * arr.ndim
        src = [slice(None)] * arr.ndim
        dst[axis], src[axis] = slice(0, h), slice(r, r + h)
        buf[tuple(dst)] = arr[tuple(src)]
    return buf


def unit_buffer(image: reference.Image, op: reference.Op, arr: np.ndarray) -> np.ndarray | None:
    """docs/FORMAT.md "Attention units": the fused-plan buffer of an attention unit's u, v, k or q after the unit
    ran, from the op's whole output ``arr`` (u, k and q [N, D], v channel-major [D, N], with a trailing step axis
    in spiking mode); None for an op outside a unit and for the pair (the scores hold no buffer, o is whole).
    The unit runs head by head, the last head h = H - 1 (channels c0 = h hd ..< c0 + hd, hd = D / H) last, and
    within a head band by band (SEMANTICS.md "Attention units"): u holds the last band of tokens, v the last
    head's channels [hd][N], k the last head's channels of every token [N][hd], q the last head's channels of
    the last band [band][hd] (where the last band is shorter, the band before it in the other rows, as
    ``last_band``)."""
    a = image.unit_start(op.index)
    if a is None or op.index - a > 3:
        return None
    heads = image.ops[a + 4].heads
    hd = op.out_dims[1] // heads
    c0 = (heads - 1) * hd
    step = op.index - a
    if step == 0:
        return last_band(op, arr)
    if step == 1:
        return arr[c0:c0 + hd]
    if step == 2:
        return arr[:, c0:c0 + hd]
    return last_band(op, arr[:, c0:c0 + hd])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m csdformer.validate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image")
    ap.add_argument("log")
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    from . import data as datasets

    image = reference.Image.load(args.image)
    with open(args.log, errors="replace") as f:
        blocks = parse_log(f.read())
    if not blocks:
        print(f"validate: no csd-trace block in {args.log}", file=sys.stderr)
        return 2
    test = datasets.load(args.data, "test", args.data_dir)
    failures = checked_ops = 0
    for b in blocks:
        pixels = test.images[b["input"]].numpy().astype(np.uint8)[None]
        logits, trace = reference._execute(image, reference._as_batch(image, pixels), b["mode"],
                                           b["delay"] if b["mode"] == "spiking" else None, True)
        where = f"input {b['input']} {b['mode']} D={b['delay']}"
        diverged = False
        for k, (kind, size, crc) in sorted(b["ops"].items()):
            op = image.ops[k]
            data, shape, width = op_bytes(image, op, trace[k], b["mode"], size)
            checked_ops += 1
            if kind != op.kind or size != len(data):
                print(f"{where}: op {k} ({op.name}): log says kind {kind}, {size} bytes; the image has kind {op.kind}, {len(data)} bytes")
                diverged = True
                break
            if zlib.crc32(data) != crc:
                detail = ""
                got = b["data"].get(k)
                if got:
                    device = b"".join(got[o] for o in sorted(got))
                    first = next((i for i in range(min(len(device), len(data))) if device[i] != data[i]), None)
                    if first is not None:
                        element = first // width
                        index = np.unravel_index(element, shape)
                        dev = np.frombuffer(device[element * width:(element + 1) * width], dtype=f"<u{width}" if width > 1 else np.uint8)[0]
                        ref = np.frombuffer(data[element * width:(element + 1) * width], dtype=f"<u{width}" if width > 1 else np.uint8)[0]
                        if op.stream_out:
                            dev, ref = np.int16(np.uint16(dev)), np.int16(np.uint16(ref))
                        whole = op.out_dims if op.kind == reference.CONV3X3 else op.out_dims[:2]
                        in_unit = image.unit_start(k) is not None and tuple(shape) != tuple(whole)[::-1 if op.channel_major else 1]
                        if op.channel_major:
                            layout = " [channel of the unit's last head, token]" if in_unit else " [channel, token]"
                        elif in_unit:
                            layout = " [of the attention unit's buffer after its last head]"
                        elif op.band and tuple(shape) != tuple(whole):
                            layout = " [of the last band's buffer]"
                        else:
                            layout = ""
                        detail = (f", first difference at element {tuple(int(i) for i in index)}{layout}: "
                                  f"device {int(dev)}, reference {int(ref)}")
                print(f"{where}: first divergence at op {k} ({op.name}, kind {op.kind}){detail}")
                diverged = True
                break
        if not diverged and b["logits"] is not None and b["logits"] != logits[0].tolist():
            print(f"{where}: logits differ: device {b['logits']} reference {logits[0].tolist()}")
            diverged = True
        failures += diverged
    print(f"validate: blocks={len(blocks)} ops_checked={checked_ops} divergent_blocks={failures}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
