"""Report plots for an exported model: training curves and spike-count histograms.

    python -m csdformer.report --model Toolchain/models/fmnist-tiny --out DIR

Writes DIR/training.png (loss and accuracy per epoch, float and QAT phases),
DIR/counts.png (the histogram of counts 0..L of every quantizer over the test
set: after conversion these are the neurons' spike counts) and
DIR/counts.json (the same histograms and the mean count per quantizer).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from . import data as datasets  # noqa: E402
from .export import CONFIG_FILE, METRICS_FILE, load_export  # noqa: E402


def plot_training(history: list[dict], path: str) -> None:
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(epochs, [h["train_loss"] for h in history], marker=".")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train loss (label-smoothed CE)")
    ax2.plot(epochs, [h["train_accuracy"] for h in history], marker=".", label="train (augmented)")
    ax2.plot(epochs, [h["test_accuracy"] for h in history], marker=".", label="test")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("top-1 accuracy")
    ax2.legend()
    qat = [h["epoch"] for h in history if h["phase"] == "qat"]
    for ax in (ax1, ax2):
        if qat:
            ax.axvspan(min(qat) - 0.5, max(qat) + 0.5, color="tab:orange", alpha=0.12, label="QAT")
        ax.grid(alpha=0.3)
    ax1.set_title("float pre-training, then QAT (shaded)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@torch.no_grad()
def count_histograms(model, images: torch.Tensor, batch_size: int = 500) -> dict[str, list[int]]:
    quantizers = model.quantizers()
    for _, q in quantizers:
        q.histogram = torch.zeros(q.levels + 1, dtype=torch.int64)
    for start in range(0, images.shape[0], batch_size):
        model(datasets.to_model_input(images[start:start + batch_size]))
    hist = {name: q.histogram.tolist() for name, q in quantizers}
    for _, q in quantizers:
        q.histogram = None
    return hist


def plot_histograms(hist: dict[str, list[int]], path: str) -> None:
    names = list(hist)
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        counts = hist[name]
        total = sum(counts)
        ax.bar(range(len(counts)), [c / total for c in counts], color="tab:blue")
        mean = sum(i * c for i, c in enumerate(counts)) / total
        ax.set_title(f"{name}\nmean {mean:.2f}", fontsize=8)
        ax.set_xticks(range(len(counts)))
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("spike counts per neuron (fraction of neurons x images), test set", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m csdformer.report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="export folder")
    ap.add_argument("--out", required=True, help="folder for the PNG files")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=None, help="first N test images for the histograms")
    args = ap.parse_args(argv)
    try:
        model = load_export(args.model)
        with open(os.path.join(args.model, CONFIG_FILE)) as f:
            doc = json.load(f)
        with open(os.path.join(args.model, METRICS_FILE)) as f:
            metrics = json.load(f)
        test = datasets.load(doc["dataset"]["id"], "test", args.data_dir).subset(args.limit)
    except (OSError, ValueError, KeyError, datasets.DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    written = []
    if metrics.get("history"):
        plot_training(metrics["history"], os.path.join(args.out, "training.png"))
        written.append("training.png")
    hist = count_histograms(model, test.images)
    plot_histograms(hist, os.path.join(args.out, "counts.png"))
    summary = {name: {"histogram": h, "mean_count": sum(i * c for i, c in enumerate(h)) / sum(h)}
               for name, h in hist.items()}
    with open(os.path.join(args.out, "counts.json"), "w") as f:
        json.dump({"images": len(test), "levels": model.cfg.levels, "quantizers": summary}, f, indent=1)
    written += ["counts.png", "counts.json"]
    print(f"report: wrote {', '.join(os.path.join(args.out, w) for w in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
