"""The fake-quant model as ONNX, run by ONNX Runtime (the fused runtime's peer in make bench-peers).

    python -m csdformer.onnxpeer --export Toolchain/models/fmnist-tiny -o model.onnx [--check N]

``export_onnx`` writes the model ``export.load_export`` rebuilds (the QAT phase: BN folded,
int8 fake-quantized weights, QCFS quantizers) with ``torch.onnx.export``'s TorchScript exporter
(``dynamo=False``; the autograd functions of quant.py are inlined, so the quantizers become
plain Div, Add, Floor, Clip, Mul and the weight rounding Round, ReduceMax, Where, Clip; ONNX
Runtime folds the weight part into constants when it loads the model). The graph takes uint8
pixels [B, C, H, W] like the integer runtime and divides by 255 as ``data.to_model_input`` does,
so ONNX Runtime and PyTorch see the same float inputs. ``--check N`` compares ONNX Runtime's
logits and predictions with PyTorch's on the first N test images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

import numpy as np
import torch
from torch import nn

from . import data as datasets
from .export import CONFIG_FILE, load_export

OPSET = 17


class PixelInput(nn.Module):
    """uint8 pixels -> the model (the division by 255 of data.to_model_input inside the graph)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(datasets.to_model_input(pixels))


def export_onnx(model: nn.Module, path: str, input_shape: tuple, opset: int = OPSET) -> None:
    """Write the fake-quant model as ONNX: input "pixels" uint8 [batch, C, H, W], output "logits"."""
    example = torch.zeros((1,) + tuple(input_shape), dtype=torch.uint8)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices, chosen knowingly
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(PixelInput(model).eval(), (example,), path, dynamo=False, opset_version=opset,
                          input_names=["pixels"], output_names=["logits"],
                          dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}})


def session(path: str, threads: int):
    """An ONNX Runtime CPU session with `threads` intra-op threads (0: ONNX Runtime's default, all
    physical cores), sequential execution."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_batches(sess, images: np.ndarray, batch: int) -> np.ndarray:
    """Logits float32 [N, classes] of uint8 images [N, C, H, W], `batch` images per call."""
    return np.concatenate([sess.run(None, {"pixels": images[i:i + batch]})[0]
                           for i in range(0, images.shape[0], batch)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m csdformer.onnxpeer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", required=True, help="export folder (model.json, model.safetensors)")
    ap.add_argument("-o", "--out", required=True, help="the .onnx file to write")
    ap.add_argument("--opset", type=int, default=OPSET)
    ap.add_argument("--check", type=int, default=0, metavar="N", help="compare with PyTorch on N test images")
    args = ap.parse_args(argv)
    model = load_export(args.export)
    cfg = model.cfg
    export_onnx(model, args.out, (cfg.in_channels, *cfg.image_size), args.opset)
    print(f"onnxpeer: wrote {args.out} (opset {args.opset})")
    if args.check:
        with open(os.path.join(args.export, CONFIG_FILE)) as f:
            dataset = json.load(f)["dataset"]["id"]
        images = datasets.load(dataset, "test").subset(args.check).images
        with torch.no_grad():
            expected = model(datasets.to_model_input(images)).numpy()
        got = run_batches(session(args.out, 0), images.numpy(), 256)
        differ = int((got.argmax(1) != expected.argmax(1)).sum())
        print(f"onnxpeer: images={len(images)} max_logit_difference={float(np.abs(got - expected).max()):.3g} "
              f"predictions_differ={differ}")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
