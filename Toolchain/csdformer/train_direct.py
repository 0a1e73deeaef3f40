"""Train the direct-training baseline (csdformer.direct) on the conversion route's pipeline.

    python -m csdformer.train_direct --config Toolchain/configs/fmnist-tiny.json --out runs/fmnist-tiny-direct

The same command line, data, augmentation, AdamW, weight decay, label
smoothing, batch size, distributed setup (torchrun / DDP), checkpoints and
resume, Ctrl-C handling and progress output as ``csdformer.train`` (it is
train.py's machinery). The epoch budget
and the learning-rate schedule are the conversion route's, step for step: the
first ``train.float_epochs`` epochs at ``train.lr`` (linear warm-up for
``train.warmup_epochs``, then a cosine to 0), then ``train.qat_epochs`` epochs
at ``train.qat_lr`` (a cosine to 0, with a fresh AdamW state, as the
conversion route starts QAT). Here both stretches train the same spiking
network; they are named ``direct`` and ``direct-low-lr``.

Writes OUT/checkpoint.pt, OUT/direct_model.safetensors (the trained weights)
and OUT/metrics.json (test accuracy of the spiking network at T steps,
per-epoch history). There is nothing to pack: csdpack reads only the
conversion route's export.
"""

from __future__ import annotations

import json
import os
import sys

import torch
from safetensors.torch import save_file

from . import train
try:
    from .direct import TAU, V_RESET, V_THRESHOLD, DirectCSDformer
except ModuleNotFoundError as e:  # SpikingJelly is installed apart, with --no-deps (Toolchain/pyproject.toml)
    if (e.name or "").split(".")[0] not in ("spikingjelly", "loguru"):
        raise
    raise ModuleNotFoundError(f"csdformer.train_direct needs SpikingJelly ({e.name} is missing): "
                              f"pip install --no-deps spikingjelly==2.0.0 && pip install loguru", name=e.name) from None
from .export import METRICS_FILE
from .model import count_params

WEIGHTS_FILE = "direct_model.safetensors"


def neuron_description() -> dict:
    return {"type": "LIF (spikingjelly.activation_based.neuron.LIFNode, step_mode m)",
            "tau": TAU, "v_threshold": V_THRESHOLD, "reset": f"hard, to {V_RESET}", "detach_reset": True,
            "surrogate": "ATan (alpha 2)", "encoding": "direct (the image at every step)",
            "output": "mean over T of the classifier's logits"}


def train_direct(args, command: str, where: train.Position | None = None) -> dict | None:
    """The direct route and its weights and metrics, as the command line runs it (``main``).
    Returns the metrics written to ``args.out`` (None on ranks other than 0)."""
    s = train.setup(args)
    tcfg, mcfg, test_set = s.tcfg, s.mcfg, s.test_set

    run = train.Dist()
    torch.manual_seed(tcfg["seed"])
    model = DirectCSDformer(mcfg).to(run.device)
    if run.main:
        print(f"direct model: {count_params(model)} parameters, {len(model.neurons())} LIF neuron layers, "
              f"{mcfg.tokens} tokens x width {mcfg.embed_dim}, T={mcfg.time_steps}; world size {run.world} "
              f"on {run.device}", flush=True)

    route = train.Route("direct",
                        [train.Phase("direct", tcfg["float_epochs"], tcfg["lr"], tcfg["warmup_epochs"]),
                         train.Phase("direct-low-lr", tcfg["qat_epochs"], tcfg["qat_lr"], 0)],
                        restore=lambda phase: None, begin=lambda phase, entering: None)
    state = train.fit(model, route, run, args, s, where)

    metrics = None
    if run.main:
        accuracy, _ = train.evaluate(model, test_set, run, collect=True)
        metrics = {
            "route": "direct",
            "params": count_params(model),
            "test_accuracy": accuracy,
            "test_images": len(test_set),
            "time_steps": mcfg.time_steps,
            "tokens": mcfg.tokens,
            "width": mcfg.embed_dim,
            "neuron": neuron_description(),
            "epochs": {"direct": tcfg["float_epochs"], "direct-low-lr": tcfg["qat_epochs"],
                       "total": tcfg["float_epochs"] + tcfg["qat_epochs"]},
            "train_seconds": round(state["train_seconds"], 1),
            "world_size": run.world,
            "command": command,
            "history": state["history"],
        }
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
                  os.path.join(args.out, WEIGHTS_FILE))
        tmp = os.path.join(args.out, METRICS_FILE + ".tmp")
        with open(tmp, "w") as f:
            json.dump(metrics, f, indent=1)
        os.replace(tmp, os.path.join(args.out, METRICS_FILE))
        print(f"direct: params {metrics['params']}, test accuracy {accuracy:.4f} "
              f"({len(test_set)} images, T={mcfg.time_steps})", flush=True)
    run.barrier()
    run.close()
    return metrics


def main(argv: list[str] | None = None) -> int:
    args, command = train.parse_args(argv, "csdformer.train_direct", __doc__)
    where = train.Position(os.path.join(args.out, train.CHECKPOINT))
    return train.stop_on_interrupt("train_direct", where, lambda: train_direct(args, command, where))


if __name__ == "__main__":
    sys.exit(main())
