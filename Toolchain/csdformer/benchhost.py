"""Host timings as ratios against peers, measured in one run (make bench-host).

    python -m csdformer.benchhost MODEL.csd --export DIR --csdpack PATH [--limit N]

Times, on the same N Fashion-MNIST test images and in the same process run:
the Swift runtime's host build (csdpack verify, fused, all cores), the NumPy
reference (fused, vectorized), and the PyTorch fake-quant model (CPU). Prints
seconds and images per second, and each peer's time as a multiple of the
Swift runtime's. Wall-clock numbers vary with the machine and its load; the
ratios from one run are what to compare. Not part of make test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Callable, TypeVar

import numpy as np
import torch

from . import data as datasets
from . import reference
from .evaluate import predict
from .export import load_export

R = TypeVar("R")


def timed(run: Callable[[], R]) -> tuple[R, float]:
    """run() and its wall-clock seconds (time.perf_counter)."""
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def verify_command(csdpack: str, image: str, count: int, mode: str, delay: int | None = None,
                   dump: str | None = None, threads: int | None = None) -> list[str]:
    """`csdpack verify` of the first `count` test images in one mode (--json: no progress lines) on
    `threads` threads (default: verify's, one per core)."""
    cmd = [csdpack, "verify", image, "--limit", str(count), "--mode", mode, "--json"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if delay is not None:
        cmd += ["--delay", str(delay)]
    if dump is not None:
        cmd += ["--dump", dump]
    return cmd


def time_verify(cmd: list[str]) -> float:
    """Seconds of one `csdpack verify` run (process start and reading the data set included);
    raises RuntimeError with its messages if it fails."""
    proc, seconds = timed(lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}: {proc.stderr.strip()}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m csdformer.benchhost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image")
    ap.add_argument("--export", required=True)
    ap.add_argument("--csdpack", required=True)
    ap.add_argument("--limit", type=int, default=2000)
    args = ap.parse_args(argv)
    test = datasets.load("fashion-mnist", "test").subset(args.limit)
    n = len(test)
    timings = []

    seconds = time_verify(verify_command(args.csdpack, args.image, n, "fused"))
    timings.append(("Swift runtime, host build (csdpack verify, fused)", seconds))

    image = reference.Image.load(args.image)
    images = test.images.numpy().astype(np.uint8)
    timings.append(("NumPy reference (fused, vectorized)",
                    timed(lambda: reference.run_batch(image, images, mode="fused"))[1]))

    model = load_export(args.export)
    timings.append((f"PyTorch fake-quant model (CPU, {torch.get_num_threads()} threads)",
                    timed(lambda: predict(model, test.images))[1]))

    base = timings[0][1]
    print(f"bench-host: {n} images, one run")
    for name, seconds in timings:
        print(f"  {name:<55} {seconds:7.2f} s  {n / seconds:8.0f} images/s  x{seconds / base:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
