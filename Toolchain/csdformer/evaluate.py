"""Evaluate an exported model (fake-quant PyTorch semantics) on its data set's test split.

    python -m csdformer.evaluate --model Toolchain/models/fmnist-tiny

Prints accuracy, per-class accuracy, agreement with the export's stored
predictions (the file the integer runtime is compared against), and a few
example predictions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

from . import data as datasets
from .export import CONFIG_FILE, load_export

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    preds = []
    for start in range(0, images.shape[0], batch_size):
        preds.append(model(datasets.to_model_input(images[start:start + batch_size])).argmax(1))
    return torch.cat(preds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m csdformer.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="export folder (model.json, model.safetensors)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=None, help="first N test images only")
    args = ap.parse_args(argv)
    try:
        model = load_export(args.model)
        with open(os.path.join(args.model, CONFIG_FILE)) as f:
            doc = json.load(f)
        test = datasets.load(doc["dataset"]["id"], "test", args.data_dir).subset(args.limit)
    except (OSError, ValueError, datasets.DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    preds = predict(model, test.images)
    labels = test.labels
    correct = int((preds == labels).sum())
    n = len(test)
    print(f"model {args.model}: {sum(p.numel() for p in model.parameters())} parameters, "
          f"{model.cfg.tokens} tokens x width {model.cfg.embed_dim}, T={model.cfg.time_steps} L={model.cfg.levels}, "
          f"phase {model.phase}")
    names = FASHION_CLASSES if doc["dataset"]["id"] == "fashion-mnist" else [str(i) for i in range(model.cfg.num_classes)]
    for c in range(model.cfg.num_classes):
        mask = labels == c
        if int(mask.sum()):
            print(f"  class {c} {names[c]:<12} {float((preds[mask] == c).float().mean()):.4f}")
    for i in range(min(8, n)):
        print(f"  image {i}: predicted {names[int(preds[i])]}, label {names[int(labels[i])]}")
    stored = doc.get("predictions")
    agreement = ""
    if stored and os.path.exists(os.path.join(args.model, stored)):
        ref = torch.from_numpy(np.load(os.path.join(args.model, stored)).astype(np.int64))[:n]
        agree = int((ref == preds).sum())
        agreement = f" stored_prediction_agreement={agree}/{n}"
    print(f"evaluate: images={n} correct={correct} accuracy={correct / n:.4f}{agreement}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
