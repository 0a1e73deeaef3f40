"""csdformer.validate against traces printed by the host runtime (csdpack trace)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import CSDPACK, REPO, needs_csdpack, needs_fashion_mnist

MODEL = os.path.join(REPO, "Tests", "TestData", "fmnist_tiny", "model.csd")
pytestmark = [needs_fashion_mnist, needs_csdpack]  # skipped by hand, failed when CI is set


def trace(*args: str) -> str:
    return subprocess.run([CSDPACK, "trace", MODEL, *args], check=True, capture_output=True, text=True).stdout


def validate(tmp_path, text: str) -> subprocess.CompletedProcess:
    log = tmp_path / "device.log"
    log.write_text(text)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "Toolchain"), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "csdformer.validate", MODEL, str(log)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_host_runtime_traces_match_the_reference_op_by_op(tmp_path):
    text = ("boot banner and other device output\n" + trace("--index", "1")
            + trace("--index", "2", "--mode", "spiking", "--delay", "0")
            + trace("--index", "4", "--mode", "spiking", "--delay", "7", "--with-data"))
    r = validate(tmp_path, text)
    assert r.returncode == 0, r.stdout + r.stderr
    # 24 ops a block: the two ATTN_SCORES ops have no output (their scores stay in the kernel scratch)
    assert "validate: blocks=3 ops_checked=72 divergent_blocks=0" in r.stdout


def test_channel_major_output_is_the_transposed_arena_bytes():
    """docs/FORMAT.md "Channel-major values": a LINEAR with CHANNEL_MAJOR (the attention's v) holds token t,
    channel c at element c * N + t, fused a count, spiking a spike train (one byte at T <= 8, two above);
    the reference's trace is token-major, op_bytes gives the arena's layout. Without the flag: token-major."""
    import numpy as np

    from csdformer import reference as ref
    from csdformer.validate import op_bytes

    N, D = 5, 3
    rng = np.random.default_rng(0)
    for flags in (ref.OPF_CHANNEL_MAJOR, 0):
        op = ref.Op(6, ref.LINEAR, flags, 4, 0, (N, D, 1), (N, D, 1), 0, (0, 0), (0, 0), (16, 16), 0, 0, 0)
        counts = rng.integers(0, 8, size=(1, N, D)).astype(np.uint8)
        data, shape, width = op_bytes(ref.Image(data=b"", time_steps=7), op, counts, "fused")
        assert width == 1 and shape == ((D, N) if flags else (N, D))
        for t in range(N):
            for c in range(D):
                assert data[c * N + t if flags else t * D + c] == counts[0, t, c]
        for T in (7, 10):
            trains = (rng.random((1, N, D, T)) < 0.5).astype(np.uint8)
            data, shape, width = op_bytes(ref.Image(data=b"", time_steps=T), op, trains, "spiking")
            assert width == (1 if T <= 8 else 2) and shape == ((D, N) if flags else (N, D))
            for t in range(N):
                for c in range(D):
                    i = (c * N + t if flags else t * D + c) * width
                    assert int.from_bytes(data[i:i + width], "little") == sum(int(trains[0, t, c, s]) << s
                                                                             for s in range(T))


def test_a_band_producer_holds_its_last_band():
    """docs/FORMAT.md "Bands": where a unit runs band by band (fused, and the count path), the producer's
    buffer holds only a band: after the unit, the last band in its first rows and, where the last band is
    shorter, the band before it in the others. A device buffer of the whole output's size is compared whole."""
    import numpy as np

    from csdformer import reference as ref
    from csdformer.validate import last_band, op_bytes

    # a LINEAR producer, 5 tokens of 3 counts in bands of 2: [0, 2), [2, 4), [4, 5)
    op = ref.Op(13, ref.LINEAR, 0, 4, 0, (5, 2, 1), (5, 3, 1), 0, (0, 0), (0, 0), (16, 16), 0, 0, 0, band=2)
    counts = (np.arange(15, dtype=np.uint8) % 8).reshape(1, 5, 3)  # 0..L = 0..7
    np.testing.assert_array_equal(last_band(op, counts[0]), counts[0, [4, 3]])
    image = ref.Image(data=b"", time_steps=7)
    data, shape, width = op_bytes(image, op, counts, "fused", 6)
    assert (data, shape, width) == (counts[0, [4, 3]].tobytes(), (2, 3), 1)
    data, shape, _ = op_bytes(image, op, counts, "fused", 15)
    assert (data, shape) == (counts[0].tobytes(), (5, 3))
    # the count path (spiking, T <= 8): one byte per neuron, bit t = a spike at step t
    trains = (np.arange(7)[None, None, None] < counts[..., None]).astype(np.uint8)  # [1, 5, 3, T]
    data, shape, width = op_bytes(image, op, trains, "spiking", 6)
    assert shape == (2, 3) and width == 1
    assert list(data) == [(1 << int(c)) - 1 for c in counts[0, [4, 3]].reshape(-1)]
    # a CONV3X3 producer [C, H, W] = [2, 4, 3] in bands of 2 map rows: rows 2 and 3 of each channel
    conv = ref.Op(0, ref.CONV3X3, 1, 0, 0, (1, 4, 3), (2, 4, 3), 0, (0, 0), (0, 0), (0, 0), 0, 0, 0, band=2)
    maps = np.arange(24, dtype=np.uint8).reshape(1, 2, 4, 3)
    data, shape, _ = op_bytes(image, conv, maps, "fused", 12)
    assert shape == (2, 2, 3) and data == maps[0, :, 2:4].tobytes()


def test_an_attention_unit_holds_its_last_head():
    """docs/FORMAT.md "Attention units": where a unit runs head by head (fused, and the count path), its u, v, k
    and q buffers hold one band or head: after the unit, the last head's (SEMANTICS.md "Attention units": the
    heads in order, each band by band). Here N = 5 tokens of D = 4 channels, 2 heads (hd = 2: the last head is
    channels 2 and 3), bands of 2 tokens ([0, 2), [2, 4), [4, 5): the last band's token 4 in the first row, the
    band before it's token 3 in the second). A device buffer of the whole value's size is compared whole."""
    import numpy as np

    from csdformer import reference as ref
    from csdformer.validate import op_bytes, unit_buffer

    N, D, H, band = 5, 4, 2, 2

    def op(index, kind, flags=0, heads=H, op_band=0, in_dims=(N, D, 1), out_dims=(N, D, 1)):
        return ref.Op(index, kind, flags, 4, 0, in_dims, out_dims, heads, (0, 0), (0, 0), (16, 16), 0, 0, 0,
                      band=op_band)

    image = ref.Image(data=b"", time_steps=7, tokens=N, width=D)
    image.ops = [op(0, ref.STREAM_NEURON, heads=0, op_band=band), op(1, ref.LINEAR, ref.OPF_CHANNEL_MAJOR),
                 op(2, ref.LINEAR), op(3, ref.LINEAR, op_band=band), op(4, ref.ATTN_SCORES, out_dims=(H, N, N)),
                 op(5, ref.ATTN_VALUES, in_dims=(H, N, N))]
    u, v, k, q, scores, values = image.ops
    counts = (np.arange(N * D, dtype=np.uint8) % 8).reshape(1, N, D)  # token-major, as the reference traces
    last = counts[0][:, 2:4]  # the last head's channels of every token
    held = [(u, counts[0, [4, 3]], 8), (v, last.T, 10), (k, last, 10), (q, last[[4, 3]], 4)]
    for o, want, size in held:
        data, shape, width = op_bytes(image, o, counts, "fused", size)
        assert (data, shape, width) == (np.ascontiguousarray(want).tobytes(), want.shape, 1), f"op {o.index}"
        # a device buffer of the whole value: compared whole (v channel-major)
        data, shape, _ = op_bytes(image, o, counts, "fused", N * D)
        whole = counts[0].T if o is v else counts[0]
        assert (data, shape) == (np.ascontiguousarray(whole).tobytes(), whole.shape), f"op {o.index}"
    assert unit_buffer(image, scores, counts[0]) is None and unit_buffer(image, values, counts[0]) is None
    data, shape, _ = op_bytes(image, values, counts, "fused", N * D)  # o is whole
    assert (data, shape) == (counts[0].tobytes(), (N, D))
    # the count path (spiking, T <= 8): one byte per neuron, bit t = a spike at step t
    trains = (np.arange(7)[None, None, None] < counts[..., None]).astype(np.uint8)  # [1, N, D, T]
    data, shape, width = op_bytes(image, q, trains, "spiking", 4)
    assert shape == (2, 2) and width == 1 and list(data) == [(1 << int(c)) - 1 for c in last[[4, 3]].reshape(-1)]


def test_names_the_first_diverging_op_and_element(tmp_path):
    lines = trace("--index", "5", "--mode", "spiking", "--delay", "3", "--with-data").splitlines()
    out, flipped = [], False
    for line in lines:
        if line.startswith("op 13 kind="):  # fc1's output (a linear into neurons): break its CRC ...
            line = line[:-8] + "00000000"
        if line.startswith("op 13 data@128 ") and not flipped:  # ... and one byte of its data
            head, hexdata = line.rsplit(" ", 1)
            b = bytearray.fromhex(hexdata)
            b[3] ^= 0x02
            line, flipped = f"{head} {b.hex()}", True
        out.append(line)
    r = validate(tmp_path, "\n".join(out) + "\n")
    assert r.returncode == 1
    # element 128 + 3 = 131 of fc1's [49][128] output: token 1, channel 3
    assert "first divergence at op 13 (LINEAR, kind 2), first difference at element (1, 3)" in r.stdout


def test_names_a_channel_major_element_by_channel_and_token(tmp_path):
    """The v projection (op 6, CHANNEL_MAJOR) stores [64][49]: byte 64 + 3 = 67 is channel 1, token 18."""
    lines = trace("--index", "5", "--with-data").splitlines()
    out = []
    for line in lines:
        if line.startswith("op 6 kind="):
            line = line[:-8] + "00000000"
        if line.startswith("op 6 data@64 "):
            head, hexdata = line.rsplit(" ", 1)
            b = bytearray.fromhex(hexdata)
            b[3] ^= 0x04
            line = f"{head} {b.hex()}"
        out.append(line)
    r = validate(tmp_path, "\n".join(out) + "\n")
    assert r.returncode == 1
    assert ("first divergence at op 6 (LINEAR, kind 2), first difference at element (1, 18) [channel, token]"
            in r.stdout), r.stdout


def test_logits_only_logs_are_compared(tmp_path):
    lines = [l for l in trace("--index", "7").splitlines() if not l.startswith("op ")]
    assert validate(tmp_path, "\n".join(lines) + "\n").returncode == 0
    bad = [("logits 1 2 3 4 5 6 7 8 9 10" if l.startswith("logits") else l) for l in lines]
    r = validate(tmp_path, "\n".join(bad) + "\n")
    assert r.returncode == 1 and "logits differ" in r.stdout


def test_a_log_without_traces_is_an_error(tmp_path):
    r = validate(tmp_path, "hello\n")
    assert r.returncode == 2 and "no csd-trace block" in r.stderr
