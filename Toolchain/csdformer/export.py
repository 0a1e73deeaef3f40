"""Export a trained CSDformer for csdpack: model.safetensors + model.json (+ predictions).

The schema is documented in docs/MODEL_EXPORT.md; it is the packer's input
contract. ``load_export`` rebuilds the PyTorch model from an export.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .model import CSDformer, ModelConfig

EXPORT_FORMAT = "csdformer-export"
EXPORT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"
PREDICTIONS_FILE = "test_pred.npy"
METRICS_FILE = "metrics.json"


def _bn(name: str) -> dict:
    return {f: f"{name}.bn.{f}" for f in ("weight", "bias", "running_mean", "running_var")}


def _linear(name: str, cin: int, cout: int) -> dict:
    return {"name": name, "weight": f"{name}.weight", "bn": _bn(name), "in_features": cin, "out_features": cout}


def _quant(name: str) -> dict:
    return {"name": name, "clip": f"{name}.clip"}


def graph(cfg: ModelConfig) -> list[dict]:
    """The layers in execution order, with the tensor names of each role."""
    layers = []
    c, (h, w) = cfg.in_channels, cfg.image_size
    from .model import pooled_size
    for i, s in enumerate(cfg.stages):
        ph, pw = pooled_size(h, s.pool), pooled_size(w, s.pool)
        layers.append({
            "kind": "conv3x3_bn",
            "name": f"tokenizer.{i}.conv",
            "input": "pixels" if i == 0 else "counts",
            "quant": None if i == 0 else _quant(f"tokenizer.{i}.quant"),
            "pool": s.pool,
            "in_shape": [c, h, w],
            "out_shape": [s.channels, ph, pw],
            "weight": f"tokenizer.{i}.conv.weight",
            "bn": _bn(f"tokenizer.{i}.conv"),
        })
        c, h, w = s.channels, ph, pw
    layers.append({"kind": "tokens", "name": "pos_embed", "pos_embed": "pos_embed",
                   "tokens": cfg.tokens, "width": cfg.embed_dim, "order": "row-major over (H, W)"})
    d = cfg.embed_dim
    for b in range(cfg.depth):
        p = f"blocks.{b}.attn"
        layers.append({
            "kind": "attention", "name": p, "heads": cfg.heads, "head_dim": cfg.head_dim, "tokens": cfg.tokens,
            "quant": _quant(f"{p}.quant"),
            "q": _linear(f"{p}.q", d, d), "k": _linear(f"{p}.k", d, d), "v": _linear(f"{p}.v", d, d),
            "q_quant": _quant(f"{p}.q_quant"), "k_quant": _quant(f"{p}.k_quant"), "v_quant": _quant(f"{p}.v_quant"),
            "a_quant": _quant(f"{p}.a_quant"), "o_quant": _quant(f"{p}.o_quant"),
            "proj": _linear(f"{p}.proj", d, d),
        })
        p = f"blocks.{b}.mlp"
        layers.append({
            "kind": "mlp", "name": p, "quant": _quant(f"{p}.quant"),
            "fc1": _linear(f"{p}.fc1", d, cfg.hidden_dim), "hidden_quant": _quant(f"{p}.hidden_quant"),
            "fc2": _linear(f"{p}.fc2", cfg.hidden_dim, d),
        })
    layers.append({"kind": "head", "name": "head", "quant": _quant("head.quant"), "weight": "head.weight",
                   "bias": "head.bias", "in_features": d, "classes": cfg.num_classes})
    return layers


def export_tensors(model: CSDformer) -> dict[str, torch.Tensor]:
    tensors = {k: v.detach().to(torch.float32).cpu().contiguous()
               for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    for name, q in model.quantizers():  # the forward pass uses |clip| (at least 1e-8 * L): export that
        tensors[f"{name}.clip"] = q.clip.detach().abs().clamp_min(1e-8 * q.levels).float().cpu().contiguous()
    return tensors


def export_model(model: CSDformer, cfg: dict, out: str, metrics: dict | None = None,
                 predictions: torch.Tensor | None = None) -> None:
    """Write model.safetensors, model.json, metrics.json and (if given) test_pred.npy into ``out``.

    ``cfg``: the training configuration (``train.load_config``; only its ``dataset`` is used);
    ``metrics``: recorded in metrics.json and, without ``history``, in model.json; ``predictions``:
    the test split's predicted classes, int [N] (csdpack verify --reference compares against them).
    """
    metrics = {} if metrics is None else metrics
    os.makedirs(out, exist_ok=True)
    mcfg = model.cfg
    tensors = export_tensors(model)
    summary = {k: v for k, v in metrics.items() if k != "history"}
    doc = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "phase": model.phase,
        "dataset": {"id": cfg["dataset"], "classes": mcfg.num_classes,
                    "input_shape": [mcfg.in_channels, *mcfg.image_size], "input_dtype": "uint8"},
        "input_normalization": {"scale": 1.0 / 255.0, "mean": [0.0] * mcfg.in_channels,
                                "std": [1.0] * mcfg.in_channels,
                                "formula": "x = (pixel * scale - mean[c]) / std[c]; conv zero padding is pixel 0"},
        "time_steps": mcfg.time_steps,
        "levels": mcfg.levels,
        "bn_eps": mcfg.bn_eps,
        "activation_quantizer": {"kind": "qcfs", "step": "clip / levels",
                                 "count": "clip(floor(x / step + 1/2), 0, levels)"},
        "weight_quantizer": {"bits": 8, "min": -127, "max": 127, "rounding": "half-to-even",
                             "scale": "max|W'| / 127 of the BN-folded weight W', per output channel",
                             "head_scale": "max|W| / 127 over the whole head.weight (per tensor)",
                             "bn_fold": "W' = W * gamma / sqrt(running_var + eps); b' = beta - running_mean * gamma / sqrt(running_var + eps)"},
        "model": mcfg.to_dict(),
        "graph": graph(mcfg),
        "tensors": {k: {"dtype": "F32", "shape": list(v.shape)} for k, v in sorted(tensors.items())},
        "predictions": PREDICTIONS_FILE if predictions is not None else None,
        "metrics": summary,
    }
    _atomic(os.path.join(out, WEIGHTS_FILE), lambda p: save_file(tensors, p, metadata={"format": EXPORT_FORMAT}))
    _atomic(os.path.join(out, CONFIG_FILE), lambda p: _write_json(p, doc))
    _atomic(os.path.join(out, METRICS_FILE), lambda p: _write_json(p, metrics))
    if predictions is not None:
        _atomic(os.path.join(out, PREDICTIONS_FILE),
                lambda p: np.save(p, predictions.cpu().numpy().astype("<i4"), allow_pickle=False))


def _write_json(path: str, obj: dict) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def _atomic(path: str, write) -> None:
    tmp = path + ".tmp"
    if path.endswith(".npy"):
        tmp = path[:-4] + ".tmp.npy"  # np.save appends .npy to other names
    write(tmp)
    os.replace(tmp, path)


def load_export(directory: str) -> CSDformer:
    """Rebuild the model from an export folder, in the phase it was exported in, in eval mode."""
    with open(os.path.join(directory, CONFIG_FILE)) as f:
        doc = json.load(f)
    if doc.get("format") != EXPORT_FORMAT or doc.get("version") != EXPORT_VERSION:
        raise ValueError(f"{directory}: not a {EXPORT_FORMAT} v{EXPORT_VERSION} export")
    model = CSDformer(ModelConfig.from_dict(doc["model"]))
    model.set_phase(doc["phase"])
    tensors = load_file(os.path.join(directory, WEIGHTS_FILE))
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{directory}: tensors missing {missing}, unexpected {unexpected}")
    return model.eval()
