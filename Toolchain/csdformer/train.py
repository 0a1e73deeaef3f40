"""Train a CSDformer: float pre-training, then QAT fine-tuning; export for csdpack.

    python -m csdformer.train --config Toolchain/configs/fmnist-tiny.json --out runs/fmnist-tiny

Runs single-process, or unchanged under ``torchrun --nproc_per_node N``
(DDP: gloo on CPU, nccl on GPU). A checkpoint is written after every epoch
and a rerun of the same command resumes from it (``--restart`` starts over).

Ctrl-C stops a run with one line (``stop_on_interrupt``), exit status 130,
and the last epoch's checkpoint kept; progress is a tqdm bar on a terminal and
whole lines (ten per epoch) otherwise.

The argument parsing, data loading, distributed setup, epoch loop,
checkpointing, interruption and evaluation below are shared with the
direct-training baseline (``csdformer.train_direct``): a ``Route`` says what
differs (its phases, what happens when one begins).

Library use: ``train_model(config, out, ...)`` (also ``csdformer.train_model``)
runs the same training as the command line and returns its metrics.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from . import data as datasets
from .export import export_model
from .model import CSDformer, ModelConfig, count_params
from .quant import QCFS

CHECKPOINT = "checkpoint.pt"


# ----------------------------------------------------------------------------- config

DEFAULT_TRAIN = {
    "float_epochs": 10,
    "qat_epochs": 5,
    "batch_size": 128,
    "lr": 2e-3,
    "qat_lr": 5e-4,
    "weight_decay": 0.05,
    "warmup_epochs": 1,
    "label_smoothing": 0.1,
    "augment_pad": 2,
    "augment_flip": True,
    "calibration_batches": 4,
    "seed": 0,
}


class ConfigError(ValueError):
    """A training configuration cannot be read or has unknown keys; the message names the file."""


def load_config(path: str) -> dict:
    """The JSON training configuration at ``path``: ``{"dataset", "model", "train"}``, the train section's
    defaults (``DEFAULT_TRAIN``) filled in. Raises ConfigError (the command line exits with its message)."""
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read config {path}: {e}") from None
    unknown = set(cfg) - {"dataset", "model", "train"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}")
    train = dict(DEFAULT_TRAIN)
    bad = set(cfg.get("train", {})) - set(DEFAULT_TRAIN)
    if bad:
        raise ConfigError(f"{path}: unknown train keys {sorted(bad)}")
    train.update(cfg.get("train", {}))
    return {"dataset": cfg.get("dataset", "fashion-mnist"), "model": cfg.get("model", {}), "train": train}


# ----------------------------------------------------------------------------- distributed

class Dist:
    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        if self.world > 1:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


# ----------------------------------------------------------------------------- pieces

def param_groups(model: torch.nn.Module, weight_decay: float, lr: float) -> list[dict]:
    """Weight decay on conv/linear weights only (not BN, biases, clips, positions).

    Each quantizer clip gets its own group with a learning rate proportional to
    its magnitude: Adam's steps are about ``lr`` in absolute size, and the
    attention clips are 1e-3 or smaller, so a shared rate would move them by
    half their value per step (and could flip their sign).
    """
    clips = {id(q.clip) for q in model.modules() if isinstance(q, QCFS)}
    decay, no_decay, groups = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in clips:
            groups.append({"params": [p], "weight_decay": 0.0, "lr": lr * max(float(p.detach().abs()), 1e-6)})
            continue
        (decay if name.endswith("weight") and ".bn." not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay, "lr": lr},
            {"params": no_decay, "weight_decay": 0.0, "lr": lr}] + groups


def cosine_lambda(total_steps: int, warmup_steps: int):
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f


@torch.no_grad()
def calibrate(model: CSDformer, images: torch.Tensor, run: Dist, batches: int, batch_size: int) -> None:
    """Initialise every quantizer's clip (lambda) before QAT.

    Runs the float model, samples each quantizer's positive inputs and picks the
    lambda (from a grid of percentiles) with the least squared quantization
    error against ReLU. Ranks average their choices.
    """
    samples: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for name, q in model.quantizers():
        def hook(mod, args, name=name):
            x = args[0].detach().flatten()
            x = x[x > 0]
            if x.numel() > 50_000:
                x = x[torch.randint(0, x.numel(), (50_000,), device=x.device)]
            samples.setdefault(name, []).append(x.float())
        hooks.append(q.register_forward_pre_hook(hook))
    model.eval()
    for i in range(batches):
        chunk = images[i * batch_size:(i + 1) * batch_size]
        if chunk.numel() == 0:
            break
        model(datasets.to_model_input(chunk.to(run.device)))
    for h in hooks:
        h.remove()
    chosen = []
    for name, q in model.quantizers():
        x = torch.cat(samples.get(name, [torch.ones(1, device=run.device)]))
        if x.numel() == 0:
            x = torch.ones(1, device=run.device)
        grid = torch.quantile(x, torch.linspace(0.90, 1.0, 41, device=x.device))
        best, best_err = float(grid[-1]), float("inf")
        for lam in grid.tolist():
            if lam <= 0:
                continue
            s = lam / q.levels
            err = float(((torch.clamp(torch.floor(x / s + 0.5), 0, q.levels) * s - x) ** 2).mean())
            if err < best_err:
                best, best_err = lam, err
        chosen.append(best)
    chosen = run.sum(chosen)
    for (name, q), total in zip(model.quantizers(), chosen):
        q.clip.fill_(total / run.world)


def shard(n: int, run: Dist, generator: torch.Generator) -> torch.Tensor:
    """A shuffled permutation, identical on every rank, cut into this rank's share."""
    perm = torch.randperm(n, generator=generator)
    per_rank = n // run.world
    return perm[run.rank * per_rank:(run.rank + 1) * per_rank]


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: datasets.Split, run: Dist, batch_size: int = 1000,
             collect: bool = False) -> tuple[float, torch.Tensor | None]:
    """Top-1 accuracy on ``split`` (sharded across ranks); optionally every prediction (rank-local, unsharded)."""
    model.eval()
    if collect:  # predictions for every image: each rank runs all (only rank 0 uses them)
        idx = torch.arange(len(split))
    else:
        idx = torch.arange(run.rank, len(split), run.world)
    correct, preds = 0, []
    for start in range(0, idx.numel(), batch_size):
        sel = idx[start:start + batch_size]
        x = datasets.to_model_input(split.images[sel].to(run.device))
        p = model(x).argmax(dim=1).cpu()
        correct += int((p == split.labels[sel]).sum())
        preds.append(p)
    if collect:
        return correct / len(split), torch.cat(preds)
    c, n = run.sum([correct, idx.numel()])
    return c / n, None


# ----------------------------------------------------------------------------- shared by both routes

def parse_args(argv: list[str] | None, module: str, doc: str | None) -> tuple[argparse.Namespace, str]:
    """The command line both training routes accept, and the command as it was typed (for metrics)."""
    ap = argparse.ArgumentParser(prog=f"python -m {module}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="JSON: dataset, model, train (see docs/TRAINING.md)")
    ap.add_argument("--out", required=True, help="output folder: checkpoint and export")
    ap.add_argument("--data-dir", default=None, help="data set folder (default for fashion-mnist: %s)" % datasets.FASHION_MNIST_DIR)
    ap.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--limit-test", type=int, default=None, help="use only the first N test images")
    ap.add_argument("--float-epochs", type=int, default=None, help="override train.float_epochs")
    ap.add_argument("--qat-epochs", type=int, default=None, help="override train.qat_epochs")
    ap.add_argument("--max-steps", type=int, default=None, help="stop each epoch after N steps (smoke tests)")
    ap.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    command = f"python -m {module} " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    return args, command


@dataclass
class Setup:
    cfg: dict
    tcfg: dict
    mcfg: ModelConfig
    train_set: datasets.Split
    test_set: datasets.Split


def setup(args: argparse.Namespace) -> Setup:
    """Read the config (with the command line's epoch overrides) and the data set; exit with a message on errors."""
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        raise SystemExit(f"error: {e}")
    tcfg = cfg["train"]
    if args.float_epochs is not None:
        tcfg["float_epochs"] = args.float_epochs
    if args.qat_epochs is not None:
        tcfg["qat_epochs"] = args.qat_epochs
    try:
        mcfg = ModelConfig.from_dict(cfg["model"])
    except (TypeError, ValueError) as e:
        raise SystemExit(f"error: {args.config}: {e}")
    try:
        train_set = datasets.load(cfg["dataset"], "train", args.data_dir).subset(args.limit_train)
        test_set = datasets.load(cfg["dataset"], "test", args.data_dir).subset(args.limit_test)
    except datasets.DatasetError as e:
        raise SystemExit(f"error: {e}")
    if tuple(train_set.images.shape[1:]) != (mcfg.in_channels, *mcfg.image_size):
        raise SystemExit(f"error: data set images are {tuple(train_set.images.shape[1:])}, model expects "
                         f"{(mcfg.in_channels, *mcfg.image_size)}")
    return Setup(cfg, tcfg, mcfg, train_set, test_set)


@dataclass
class Position:
    """Where a run is, for the line printed when Ctrl-C stops it (``stop_on_interrupt``); ``fit`` keeps it."""

    checkpoint: str
    stage: str = "starting"  # starting, training (epoch and batch in progress), finishing (evaluation, export)
    epoch: int = 0  # 1-based, the epoch in progress
    epochs: int = 0
    batch: int = 0  # batches finished in that epoch
    batches: int = 0
    kept: int | None = None  # the epoch of the checkpoint this run wrote or resumed from

    def interrupted(self, name: str) -> str:
        if self.stage == "starting":  # config, data, model, resume: nothing written
            return f"{name}: interrupted before training began (rerun the same command)"
        if self.kept is None:
            kept = "no checkpoint written yet (rerun the same command to start over)"
        else:
            kept = f"checkpoint kept at {self.checkpoint} (epoch {self.kept}; rerun the same command to " \
                   f"{'resume' if self.stage == 'training' else 'finish'})"
        if self.stage == "training":
            return f"{name}: interrupted at epoch {self.epoch}/{self.epochs} batch {self.batch}/{self.batches}; {kept}"
        return f"{name}: interrupted after the last epoch, before the export was written; {kept}"


def stop_on_interrupt(name: str, where: Position, body: Callable[[], object]) -> int:
    """Run ``body`` (the command line's work); on Ctrl-C (KeyboardInterrupt) print one line and return 130.

    The checkpoint is replaced atomically (``fit``), so the file on disk is the last finished epoch's;
    a half-written temporary is removed. Only rank 0 prints (under torchrun every rank gets the
    signal); a further Ctrl-C is ignored (the command is about to exit: SIGINT stays ignored).
    """
    try:
        body()
        return 0
    except KeyboardInterrupt:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if int(os.environ.get("RANK", "0")) == 0:
            try:
                os.remove(where.checkpoint + ".tmp")
            except OSError:
                pass
            # on a terminal, start at the line's beginning and clear it (a progress bar may be there)
            lead = "\r\033[K" if sys.stderr.isatty() else ""
            print(lead + where.interrupted(name), file=sys.stderr, flush=True)
        return 130


@dataclass
class Phase:
    """A stretch of epochs with one optimizer and one schedule: a linear warm-up, then a cosine to 0."""

    name: str
    epochs: int
    lr: float
    warmup_epochs: int = 0


@dataclass
class Route:
    """What differs between the training routes around the shared epoch loop (``fit``).

    ``restore(phase)``: a checkpoint of ``phase`` is about to be loaded into the model.
    ``begin(phase, entering)``: ``phase`` starts (``entering``) or resumes; called before its optimizer is made.
    """

    name: str
    phases: list[Phase]
    restore: Callable[[str], None]
    begin: Callable[[str, bool], None]


def fit(model: torch.nn.Module, route: Route, run: Dist, args: argparse.Namespace, s: Setup,
        where: Position | None = None) -> dict:
    """Train ``model`` through the route's phases: AdamW, per-step schedule, DDP when the world is larger than 1,
    test accuracy and a checkpoint after every epoch; resumes from ``args.out``'s checkpoint. Keeps ``where``
    (epoch, batch, the checkpoint's epoch) up to date. Returns the state (epoch, history, seconds)."""
    tcfg, train_set, test_set = s.tcfg, s.train_set, s.test_set
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, CHECKPOINT)
    where = where if where is not None else Position(ckpt_path)
    phases = route.phases
    total_epochs = sum(p.epochs for p in phases)
    state = {"epoch": 0, "history": [], "train_seconds": 0.0, "float_test_accuracy": None}
    resume = None
    if os.path.exists(ckpt_path) and not args.restart:
        resume = torch.load(ckpt_path, map_location=run.device, weights_only=False)
        if resume.get("route", "conversion") != route.name:
            raise SystemExit(f"error: {ckpt_path} is a checkpoint of the {resume.get('route', 'conversion')} route, "
                             f"not {route.name} (use another --out, or --restart)")
        state = resume["state"]
        route.restore(resume["phase"])
        model.load_state_dict(resume["model"])
        where.kept = state["epoch"]
        if run.main:
            print(f"resuming from {ckpt_path} after epoch {state['epoch']}/{total_epochs}", flush=True)

    steps_per_epoch = len(train_set) // run.world // tcfg["batch_size"]
    if args.max_steps:
        steps_per_epoch = min(steps_per_epoch, args.max_steps)
    if steps_per_epoch < 1:
        raise SystemExit("error: fewer training images than one batch per rank")
    # progress: a bar on a terminal; otherwise a whole line every tenth of an epoch (none after its last batch:
    # the epoch's own line follows)
    progress = run.main and not args.no_progress
    bar_on = progress and sys.stderr.isatty()
    line_every = math.ceil(steps_per_epoch / 10) if progress and not bar_on else 0
    where.epochs, where.batches = total_epochs, steps_per_epoch

    epoch_base = 0
    for phase_def in phases:
        phase, epochs, lr = phase_def.name, phase_def.epochs, phase_def.lr
        if state["epoch"] >= epoch_base + epochs:
            epoch_base += epochs
            continue
        entering = state["epoch"] == epoch_base
        where.stage, where.epoch, where.batch = "training", state["epoch"] + 1, 0
        route.begin(phase, entering)
        ddp = torch.nn.parallel.DistributedDataParallel(model) if run.world > 1 else model
        opt = torch.optim.AdamW(param_groups(model, tcfg["weight_decay"], lr), lr=lr)
        warmup = phase_def.warmup_epochs * steps_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(epochs * steps_per_epoch, warmup))
        if resume is not None and not entering and resume["phase"] == phase:
            opt.load_state_dict(resume["optimizer"])
            sched.load_state_dict(resume["scheduler"])
        resume = None

        while state["epoch"] < epoch_base + epochs:
            epoch = state["epoch"]
            where.epoch, where.batch = epoch + 1, 0
            gen = torch.Generator().manual_seed(tcfg["seed"] * 100_003 + epoch)
            idx = shard(len(train_set), run, gen)
            ddp.train()
            started = time.time()
            loss_sum, correct, seen = 0.0, 0, 0
            desc = f"epoch {epoch + 1}/{total_epochs} [{phase}]"
            bar = tqdm(range(steps_per_epoch), desc=desc, disable=not bar_on, leave=False, dynamic_ncols=True)
            try:
                for step in bar:
                    sel = idx[step * tcfg["batch_size"]:(step + 1) * tcfg["batch_size"]]
                    x = datasets.augment(train_set.images[sel], tcfg["augment_pad"], tcfg["augment_flip"], gen)
                    x, y = datasets.to_model_input(x).to(run.device), train_set.labels[sel].to(run.device)
                    logits = ddp(x)
                    loss = F.cross_entropy(logits, y, label_smoothing=tcfg["label_smoothing"])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    loss_sum += loss.item() * y.numel()
                    correct += int((logits.argmax(1) == y).sum())
                    seen += y.numel()
                    where.batch = step + 1
                    if step % 20 == 0:
                        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
                    if line_every and (step + 1) % line_every == 0 and step + 1 < steps_per_epoch:
                        print(f"{desc} batch {step + 1}/{steps_per_epoch}: loss {loss_sum / seen:.4f} "
                              f"train {correct / seen:.4f} ({time.time() - started:.0f} s)", flush=True)
            finally:
                bar.close()  # before any message: a terminal's bar line is cleared
            loss_sum, correct, seen = run.sum([loss_sum, correct, seen])
            trained = time.time()
            test_acc, _ = evaluate(ddp, test_set, run)
            seconds = time.time() - started
            state["train_seconds"] += seconds
            state["epoch"] = epoch + 1
            # seconds: the whole epoch; step_seconds: its training steps only (eval_seconds: the test pass after them)
            state["history"].append({"epoch": epoch + 1, "phase": phase, "lr": sched.get_last_lr()[0],
                                     "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
                                     "test_accuracy": test_acc, "seconds": seconds,
                                     "step_seconds": trained - started, "eval_seconds": seconds - (trained - started)})
            if phase == "float" and state["epoch"] == epoch_base + epochs:
                state["float_test_accuracy"] = test_acc
            if run.main:
                print(f"epoch {epoch + 1}/{total_epochs} [{phase}] loss {loss_sum / seen:.4f} "
                      f"train {correct / seen:.4f} test {test_acc:.4f} ({seconds:.0f} s)", flush=True)
                tmp = ckpt_path + ".tmp"
                torch.save({"state": state, "route": route.name, "phase": phase, "model": model.state_dict(),
                            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                            "config": s.cfg}, tmp)
                os.replace(tmp, ckpt_path)
            where.kept = epoch + 1
            run.barrier()
        epoch_base += epochs
    where.stage = "finishing"
    return state


# ----------------------------------------------------------------------------- main

def train_conversion(args: argparse.Namespace, command: str, where: Position | None = None) -> dict | None:
    """The conversion route (float, then QAT) and its export, as the command line runs it (``main``).
    Returns the metrics written to ``args.out`` (None on ranks other than 0)."""
    s = setup(args)
    tcfg, mcfg, test_set = s.tcfg, s.mcfg, s.test_set

    run = Dist()
    torch.manual_seed(tcfg["seed"])
    model = CSDformer(mcfg).to(run.device)
    if run.main:
        print(f"model: {count_params(model)} parameters, {mcfg.tokens} tokens x width {mcfg.embed_dim}, "
              f"T={mcfg.time_steps} L={mcfg.levels}; world size {run.world} on {run.device}", flush=True)

    def begin(phase: str, entering: bool) -> None:
        if phase == "qat" and entering:
            model.set_phase("float")
            calibrate(model, s.train_set.images, run, tcfg["calibration_batches"], tcfg["batch_size"])
        model.set_phase(phase)
        for _, q in model.quantizers():
            q.clip.requires_grad_(phase == "qat")

    route = Route("conversion",
                  [Phase("float", tcfg["float_epochs"], tcfg["lr"], tcfg["warmup_epochs"]),
                   Phase("qat", tcfg["qat_epochs"], tcfg["qat_lr"], 0)],
                  restore=model.set_phase, begin=begin)
    state = fit(model, route, run, args, s, where)

    metrics = None
    if run.main:
        accuracy, preds = evaluate(model, test_set, run, collect=True)
        metrics = {
            "params": count_params(model),
            "float_test_accuracy": state["float_test_accuracy"],
            "fake_quant_test_accuracy": accuracy if model.phase == "qat" else None,
            "test_images": len(test_set),
            "time_steps": mcfg.time_steps,
            "levels": mcfg.levels,
            "tokens": mcfg.tokens,
            "width": mcfg.embed_dim,
            "epochs": {"float": tcfg["float_epochs"], "qat": tcfg["qat_epochs"]},
            "train_seconds": round(state["train_seconds"], 1),
            "world_size": run.world,
            "command": command,
            "history": state["history"],
        }
        export_model(model, s.cfg, args.out, metrics, preds)
        print(f"exported to {args.out}: params {metrics['params']}, float {metrics['float_test_accuracy']}, "
              f"fake-quant {metrics['fake_quant_test_accuracy']}", flush=True)
    run.barrier()
    run.close()
    return metrics


def train_model(config: str, out: str, *, data_dir: str | None = None, float_epochs: int | None = None,
                qat_epochs: int | None = None, limit_train: int | None = None, limit_test: int | None = None,
                max_steps: int | None = None, restart: bool = False, progress: bool = True) -> dict | None:
    """Train a CSDformer from the JSON ``config`` (float, then QAT) and export it into ``out``, as
    ``python -m csdformer.train --config CONFIG --out OUT`` does with the same options.

    Resumes from ``out``'s checkpoint unless ``restart``; the keyword arguments are the command line's
    options (``float_epochs=N`` is ``--float-epochs N``; ``progress=False`` is ``--no-progress``).
    Returns the metrics written to ``out/metrics.json`` (None on ranks other than 0 under torchrun).
    Raises ValueError for a bad config or data set (the command line's error message); Ctrl-C raises
    KeyboardInterrupt as usual, with the last finished epoch's checkpoint on disk.
    """
    argv = ["--config", str(config), "--out", str(out)]
    for flag, value in (("--data-dir", data_dir), ("--float-epochs", float_epochs), ("--qat-epochs", qat_epochs),
                        ("--limit-train", limit_train), ("--limit-test", limit_test), ("--max-steps", max_steps)):
        if value is not None:
            argv += [flag, str(value)]
    if restart:
        argv.append("--restart")
    if not progress:
        argv.append("--no-progress")
    args, command = parse_args(argv, "csdformer.train", __doc__)
    try:
        return train_conversion(args, command)
    except SystemExit as e:  # the command line's errors: "error: ..."
        if isinstance(e.code, str):
            raise ValueError(e.code.removeprefix("error: ")) from None
        raise


def main(argv: list[str] | None = None) -> int:
    args, command = parse_args(argv, "csdformer.train", __doc__)
    where = Position(os.path.join(args.out, CHECKPOINT))
    return stop_on_interrupt("train", where, lambda: train_conversion(args, command, where))


if __name__ == "__main__":
    sys.exit(main())
