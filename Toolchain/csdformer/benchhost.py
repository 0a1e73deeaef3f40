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

import numpy as np
import torch

from . import data as datasets
from . import reference
from .evaluate import predict
from .export import load_export


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

    start = time.perf_counter()
    subprocess.run([args.csdpack, "verify", args.image, "--limit", str(n), "--mode", "fused", "--json"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    timings.append(("Swift runtime, host build (csdpack verify, fused)", time.perf_counter() - start))

    image = reference.Image.load(args.image)
    images = test.images.numpy().astype(np.uint8)
    start = time.perf_counter()
    reference.run_batch(image, images, mode="fused")
    timings.append(("NumPy reference (fused, vectorized)", time.perf_counter() - start))

    model = load_export(args.export)
    start = time.perf_counter()
    with torch.no_grad():
        predict(model, test.images)
    timings.append((f"PyTorch fake-quant model (CPU, {torch.get_num_threads()} threads)", time.perf_counter() - start))

    base = timings[0][1]
    print(f"bench-host: {n} images, one run")
    for name, seconds in timings:
        print(f"  {name:<55} {seconds:7.2f} s  {n / seconds:8.0f} images/s  x{seconds / base:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
