"""Cross-check the Swift runtime against the NumPy reference, logit by logit and op by op.

    python -m csdformer.crosscheck MODEL.csd --csdpack PATH [--limit N] [--delays 0,3,T]
                                   [--data fashion-mnist|mnist] [--data-dir DIR]

Runs `csdpack verify --dump` (the Swift runtime's host build) in fused mode and
in spiking mode at each delay, runs csdformer.reference on the same images, and
compares every logit and every op's spike total per image. Ends with one line:

    cross-check: images=N modes=fused,spiking-D0,... mismatches=M
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

from . import reference


def reference_run(image: reference.Image, images: np.ndarray, mode: str, delay: int | None,
                  chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference logits [N, classes] and per-op output spikes [N, ops] (0 for stream writers and the classifier)."""
    n, ops = images.shape[0], len(image.ops)
    logits = np.empty((n, image.classes), dtype=np.int32)
    spikes = np.zeros((n, ops), dtype=np.int64)
    for start in range(0, n, chunk):
        batch = images[start:start + chunk]
        out, trace = reference._execute(image, reference._as_batch(image, batch), mode, delay, True)
        logits[start:start + len(batch)] = out
        for k, op in enumerate(image.ops):
            if op.kind == reference.CLASSIFIER or op.stream_out:
                continue
            spikes[start:start + len(batch), k] = np.asarray(trace[k]).reshape(len(batch), -1).sum(axis=1)
    return logits, spikes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m csdformer.crosscheck", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image")
    ap.add_argument("--csdpack", required=True, help="csdpack binary (host runtime)")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--delays", default=None, help="spiking delays, comma-separated (default 0,3,T)")
    ap.add_argument("--data", default="fashion-mnist", help="data set of the test split (as csdpack verify)")
    ap.add_argument("--data-dir", default=None, help="its folder (default: the data set's installed folder)")
    args = ap.parse_args(argv)
    from . import data as datasets

    image = reference.Image.load(args.image)
    t = image.time_steps
    delays = [int(d) for d in args.delays.split(",")] if args.delays else sorted({0, min(3, t), t})
    test = datasets.load(args.data, "test", args.data_dir).subset(args.limit)
    images = test.images.numpy().astype(np.uint8)
    n, ops = images.shape[0], len(image.ops)
    modes, mismatches = [], 0
    with tempfile.TemporaryDirectory() as dump:
        runs = [("fused", None)] + [("spiking", d) for d in delays]
        for mode, delay in runs:
            cmd = [args.csdpack, "verify", args.image, "--data", args.data, "--limit", str(n),
                   "--mode", mode, "--dump", dump, "--json"]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            if delay is not None:
                cmd += ["--delay", str(delay)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            stem = os.path.join(dump, "fused" if mode == "fused" else f"spiking_D{delay}")
            swift_logits = np.fromfile(stem + ".logits.i32", dtype="<i4").reshape(n, image.classes)
            swift_spikes = np.fromfile(stem + ".spikes.u32", dtype="<u4").reshape(n, ops).astype(np.int64)
            ref_logits, ref_spikes = reference_run(image, images, mode, delay, 500 if mode == "fused" else 32)
            bad_logits = np.flatnonzero((swift_logits != ref_logits).any(axis=1))
            bad_ops = np.argwhere(swift_spikes != ref_spikes)
            name = "fused" if mode == "fused" else f"spiking-D{delay}"
            modes.append(name)
            mismatches += len(bad_logits) + len(bad_ops)
            print(f"{name}: {n} images, logit mismatches {len(bad_logits)}, per-op spike-count mismatches {len(bad_ops)}",
                  flush=True)
            if len(bad_logits):
                i = bad_logits[0]
                print(f"  first: image {i}: swift {swift_logits[i].tolist()} reference {ref_logits[i].tolist()}")
            if len(bad_ops):
                i, k = bad_ops[0]
                print(f"  first: image {i} op {k} ({image.ops[k].name}): swift {swift_spikes[i, k]} reference {ref_spikes[i, k]}")
    print(f"cross-check: images={n} modes={','.join(modes)} mismatches={mismatches}")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
