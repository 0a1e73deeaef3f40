"""Shared setup for the csdformer tests.

Puts Toolchain/ on sys.path (the package is imported as ``csdformer``), keeps
torch to one thread (the tests are tiny; a long training may share the CPU)
and provides small model / training configurations.

A test whose prerequisite is missing (Fashion-MNIST, the csdpack binary, a
committed file) is skipped when run by hand, but fails when the environment
variable CI is set and non-empty: `make test` always provides them, so on CI a
missing one is a broken setup, not a reason to pass silently (``missing``,
``prerequisite``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLCHAIN = os.path.join(REPO, "Toolchain")
if TOOLCHAIN not in sys.path:
    sys.path.insert(0, TOOLCHAIN)

import torch  # noqa: E402

torch.set_num_threads(1)

from csdformer import data as datasets  # noqa: E402
from csdformer.export import METRICS_FILE  # noqa: E402
from csdformer.model import CSDformer, ModelConfig  # noqa: E402

# The tiny model used by every training test: 28x28 -> 28 -> 14 -> 7, i.e. 49 tokens of width 8.
TINY_MODEL = {
    "in_channels": 1,
    "image_size": [28, 28],
    "num_classes": 10,
    "stages": [{"channels": 4, "pool": 0}, {"channels": 8, "pool": 2}, {"channels": 8, "pool": 2}],
    "heads": 2,
    "depth": 1,
    "mlp_ratio": 2.0,
    "levels": 3,
    "time_steps": 4,
}

TINY_TRAIN = {"batch_size": 16, "seed": 0}


def tiny_config_dict() -> dict:
    return {"dataset": "fashion-mnist", "model": json.loads(json.dumps(TINY_MODEL)), "train": dict(TINY_TRAIN)}


def write_config(directory, cfg: dict | None = None) -> str:
    path = os.path.join(str(directory), "config.json")
    with open(path, "w") as f:
        json.dump(cfg if cfg is not None else tiny_config_dict(), f)
    return path


def randomize(model: CSDformer, seed: int = 0) -> None:
    """Give every BN non-trivial running statistics / affine parameters and every quantizer a random clip."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, f in model.foldables():
            bn = f.bn
            n = bn.num_features
            bn.weight.copy_(0.5 + torch.rand(n, generator=g))
            bn.bias.copy_(0.2 * torch.randn(n, generator=g))
            bn.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            bn.running_var.copy_(0.3 + torch.rand(n, generator=g))
        for _, q in model.quantizers():
            q.clip.fill_(0.5 + float(torch.rand(1, generator=g)) * 2.0)


def on_ci() -> bool:
    """True when the environment variable CI is set and non-empty (CI services set CI=true)."""
    return bool(os.environ.get("CI"))


def missing(reason: str) -> None:
    """A prerequisite of the running test is missing: skip the test, or fail it when CI is set."""
    if on_ci():
        pytest.fail(f"{reason} [CI is set: a missing prerequisite fails the test instead of skipping it]",
                    pytrace=False)
    pytest.skip(reason)


def prerequisite(present: bool, reason: str):
    """A mark: unless ``present``, the test is skipped, or fails when CI is set (``missing``)."""
    return pytest.mark.prerequisite(present=present, reason=reason)


def pytest_configure(config):
    config.addinivalue_line("markers", "prerequisite(present, reason): skip the test unless present "
                                       "(fail it instead when CI is set)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for mark in item.iter_markers("prerequisite"):
        if not mark.kwargs["present"]:
            missing(mark.kwargs["reason"])


def fashion_mnist_available() -> bool:
    return os.path.isdir(datasets.FASHION_MNIST_DIR)


def fashion_mnist_missing_reason() -> str:
    return (f"Fashion-MNIST is missing: {datasets.FASHION_MNIST_DIR} does not exist "
            f"(`make deps` installs the Debian package dataset-fashion-mnist)")


needs_fashion_mnist = prerequisite(fashion_mnist_available(), fashion_mnist_missing_reason())

# The csdpack binary: `make test` sets CSDPACK (a missing file at that path then fails the test that runs it).
CSDPACK = os.environ.get("CSDPACK", os.path.join(REPO, ".build", "debug", "csdpack"))


def csdpack_available() -> bool:
    return "CSDPACK" in os.environ or (os.path.isfile(CSDPACK) and os.access(CSDPACK, os.X_OK))


needs_csdpack = prerequisite(csdpack_available(),
                             f"csdpack binary not found at {CSDPACK} (set CSDPACK, or build it with `swift build`; "
                             f"`make test` sets CSDPACK)")


@pytest.fixture
def tiny_model_config() -> ModelConfig:
    return ModelConfig.from_dict(json.loads(json.dumps(TINY_MODEL)))


@pytest.fixture
def clean_dist_env(monkeypatch):
    """train.main must run single-process here, whatever the calling environment says."""
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)


@torch.no_grad()
def calibrate_clips(model: CSDformer, images: torch.Tensor, fraction: float = 0.8) -> None:
    """Set every quantizer's clip to ``fraction`` of the largest input it sees in the float phase,
    so that every quantizer (the tiny NReLU outputs included) produces a spread of counts."""
    phase, training = model.phase, model.training
    model.set_phase("float")
    model.eval()
    peaks = {}
    hooks = []
    for name, q in model.quantizers():
        def hook(mod, args, name=name):
            peaks[name] = max(peaks.get(name, 0.0), float(args[0].max()))
        hooks.append(q.register_forward_pre_hook(hook))
    model(images)
    for h in hooks:
        h.remove()
    for name, q in model.quantizers():
        q.clip.fill_(max(peaks[name], 1e-3) * fraction)
    model.set_phase(phase)
    model.train(training)


def torchrun(module: str, args: list[str], cwd) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` as 2 processes under torchrun (DDP, gloo on CPU), free of the calling
    environment's distributed settings; fails the test on a timeout (300 s) or a non-zero exit."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["PYTHONPATH"] = TOOLCHAIN + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""  # gloo on CPU, whatever the machine has
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", module, *args]
    try:
        proc = subprocess.run(cmd, env=env, cwd=str(cwd), capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"torchrun timed out after 300 s\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}")
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc


# ---- tiny training runs (test_train.py, test_direct.py) ----------------------------------------

TINY_LIMIT_TRAIN = 64
TINY_LIMIT_TEST = 64


def tiny_run_args(config: str, out: str, float_epochs=1, qat_epochs=1, extra=()) -> list[str]:
    """Command-line options of a tiny training run: 64 train and test images, one step per epoch, no progress."""
    return ["--config", config, "--out", out, "--limit-train", str(TINY_LIMIT_TRAIN), "--limit-test",
            str(TINY_LIMIT_TEST), "--max-steps", "1", "--float-epochs", str(float_epochs), "--qat-epochs",
            str(qat_epochs), "--no-progress", *extra]


def read_metrics(out: str) -> dict:
    with open(os.path.join(out, METRICS_FILE)) as f:
        return json.load(f)


def train_once(tmp_path_factory, name: str, main) -> dict:
    """One tiny run of a training route's `main` in a fresh folder, outside any distributed environment;
    returns its config, out folder and arguments. Needs Fashion-MNIST (a skip, or a failure under CI)."""
    if not os.path.isdir(datasets.FASHION_MNIST_DIR):
        missing(fashion_mnist_missing_reason())
    saved = {k: os.environ.pop(k) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK") if k in os.environ}
    try:
        root = tmp_path_factory.mktemp(name)
        config = write_config(root)
        out = str(root / "out")
        args = tiny_run_args(config, out)
        assert main(args) == 0
    finally:
        os.environ.update(saved)
    return {"config": config, "out": out, "args": args}


# ---- the reference model packed by csdpack (test_packcheck.py, test_peers.py) ------------------

REFERENCE_EXPORT = os.path.join(REPO, "Toolchain", "models", "fmnist-tiny")


def pack_reference(out: str) -> str:
    """`csdpack convert` of the committed reference export into `out`; returns `out`."""
    subprocess.run([CSDPACK, "convert", os.path.join(REFERENCE_EXPORT, "model.safetensors"),
                    "--config", os.path.join(REFERENCE_EXPORT, "model.json"), "-o", out],
                   check=True, capture_output=True, timeout=120)
    return out
