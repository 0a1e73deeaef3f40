"""The CMake examples' logits against the NumPy reference (make cmake-example, make test-install).

    python Tests/Firmware/check_cmake_example.py MODEL.csd UART.txt [--label NAME]

The examples (Firmware/cmake-example/app.c, Tests/Install/app.c) classify one synthetic input, vertical bars
(pixel 200 where the column is 9..19, else 0), in fused mode and prints `logits v0 v1 ...`.
This recomputes that input, runs the reference on the same packed model and fails unless
every printed logit equals the reference's.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from csdformer import reference


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the packed image the example ran")
    parser.add_argument("uart", help="the example's output")
    parser.add_argument("--label", default="cmake-example", help="name in the messages")
    args = parser.parse_args(argv)
    model, uart, label = args.model, args.uart, args.label
    image = reference.Image.load(model)
    c, h, w = image.input_shape
    bars = np.zeros((1, c, h, w), dtype=np.uint8)
    bars[..., 9:20] = 200
    expected = [int(v) for v in reference.run_batch(image, bars, mode="fused")[0]]
    lines = [ln.split()[1:] for ln in open(uart, encoding="utf-8", errors="replace") if ln.startswith("logits ")]
    if len(lines) != 1:
        print(f"{label}: expected one 'logits' line in {uart}, found {len(lines)}", file=sys.stderr)
        return 1
    got = [int(v) for v in lines[0]]
    if got != expected:
        print(f"{label}: logits differ from the NumPy reference\n  got      {got}\n  expected {expected}",
              file=sys.stderr)
        return 1
    print(f"{label}: {len(got)} logits equal the NumPy reference's")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
