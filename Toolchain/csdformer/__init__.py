"""CSDformer toolchain: train and export a spiking transformer for csdpack, run packed images in NumPy.

The top-level API (docs/PYTHON_API.md)::

    import csdformer
    metrics = csdformer.train_model("config.json", "runs/x")   # float, then QAT; exports into runs/x; resumes
    model = csdformer.load_export("runs/x")                     # the PyTorch model (fake-quant), eval mode
    csdformer.export_model(model, csdformer.load_config("config.json"), "runs/y")

    from csdformer import reference                              # NumPy only: no torch import
    image = reference.load("model.csd")                          # parsed and validated (ImageError)
    logits = reference.run(image, pixels)                        # int32 [classes]; mode="spiking", delay=D
    logits = reference.run_batch(image, images)                  # int32 [B, classes]

The names are resolved on first use, so ``import csdformer`` and ``csdformer.reference`` do not import
torch. The command lines are ``csdformer-train``, ``csdformer-train-direct``, ``csdformer-evaluate``,
``csdformer-report``, ``csdformer-crosscheck`` and ``csdformer-reference`` once the package is installed
(``pip install ./Toolchain``), or ``python -m csdformer.<module>`` from the source tree.
"""

from __future__ import annotations

import importlib

__version__ = "0.6.0"

# name -> the module that defines it
_API = {
    "train_model": "train",       # train.train_model(config, out, ...) -> metrics
    "load_config": "train",       # train.load_config(path) -> {"dataset", "model", "train"}
    "export_model": "export",     # export.export_model(model, config, out, metrics, predictions)
    "load_export": "export",      # export.load_export(directory) -> CSDformer
}
_MODULES = ("reference", "train", "train_direct", "export", "evaluate", "report", "crosscheck", "data", "model")

__all__ = sorted(_API) + ["reference"]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API) | set(_MODULES))
