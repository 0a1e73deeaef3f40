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


# ---- hand-made attention units (format 5, docs/FORMAT.md "Attention units") --------------------

def _record(index: int, field: int) -> int:
    """Byte offset of a field of op record ``index`` (docs/FORMAT.md "Op table": 16 heads, 18 band, 20 input,
    28 input2, 36 output, 56 scratch; the arena offsets fused then spiking, 4 bytes each)."""
    return 128 + 64 * index + field


def recrc(m: bytearray) -> bytes:
    """The image with its CRC-32 recomputed (bytes 16..19 read as 0)."""
    import struct
    import zlib
    m[16:20] = b"\0\0\0\0"
    image_bytes = struct.unpack_from("<I", m, 12)[0]
    struct.pack_into("<I", m, 16, zlib.crc32(bytes(m[:image_bytes])) & 0xFFFFFFFF)
    return bytes(m)


def attention_unit_image(data: bytes, a: int, band: int, place: dict | None = None, scratch: dict | None = None,
                         arena: int | None = None) -> bytes:
    """A hand-made format-5 image with an attention unit (docs/FORMAT.md "Attention units"), made from an image
    that csdpack convert wrote without one (until `csdpack convert --low-ram` writes units, no packer image has
    one): op ``a`` (a STREAM_NEURON) gets band ``band``, the v, k and q linears after it the pair's heads, the q
    linear the band, and the fused plan of the six ops is rewritten so that the unit's buffers hold what the
    table says (u [b][D], v [hd][N], k [N][hd], q [b][hd], o [N][D]) at offsets apart from one another and from
    the stream: o where the packer put the pair's output (the op after the unit, the stream add, reads it
    there), then u, v, k and q after it, then one scratch region that the v, k and q linears and the pair
    share (scratch regions may overlap one another). ``place`` overrides the fused offset of "u", "v", "k",
    "q", "o" or "scratch"; ``scratch`` the fused scratch offset of op a + step ({step: offset}). The spiking
    plan is the packer's (it ignores units). arena_bytes[0] stays the packer's unless the unit ends after it
    or ``arena`` is given; arena_bytes[1] is at least arena_bytes[0]. The header's format version becomes 5
    and the CRC is recomputed."""
    import struct
    m = bytearray(data)
    struct.pack_into("<H", m, 4, 5)
    N, D = struct.unpack_from("<HH", m, 44)
    heads = struct.unpack_from("<H", m, _record(a + 4, 16))[0]
    hd = D // heads

    def align16(n):
        return (n + 15) // 16 * 16

    def fused(index, field):
        return struct.unpack_from("<I", m, _record(index, field))[0]

    def set_fused(index, field, value):
        struct.pack_into("<I", m, _record(index, field), value)

    old_o = fused(a + 5, 36)
    at = {"o": old_o}
    at["u"] = at["o"] + align16(N * D)
    at["v"] = at["u"] + align16(band * D)
    at["k"] = at["v"] + align16(hd * N)
    at["q"] = at["k"] + align16(N * hd)
    at["scratch"] = at["q"] + align16(band * hd)
    at.update(place or {})
    size = {"u": band * D, "v": hd * N, "k": N * hd, "q": band * hd, "o": N * D,
            "scratch": max(32 * ((D + 3) // 4), align16(4 * N) + 32 * max((hd + 3) // 4, (N + 3) // 4))}
    for step, name in ((0, "u"), (1, "v"), (2, "k"), (3, "q"), (5, "o")):
        set_fused(a + step, 36, at[name])
    for step in (1, 2, 3):
        set_fused(a + step, 20, at["u"])
        struct.pack_into("<H", m, _record(a + step, 16), heads)
    set_fused(a + 4, 20, at["q"])
    set_fused(a + 4, 28, at["k"])
    set_fused(a + 5, 28, at["v"])
    for step in (1, 2, 3, 4, 5):  # the stream neuron needs no fused scratch
        set_fused(a + step, 56, (scratch or {}).get(step, at["scratch"]))
    for step in (0, 3):
        struct.pack_into("<H", m, _record(a + step, 18), band)
    if fused(a + 6, 20) == old_o:
        set_fused(a + 6, 20, at["o"])  # the stream add after the unit reads o
    end = max(at[name] + size[name] for name in size)
    end = max([end] + [off + size["scratch"] for off in (scratch or {}).values()])
    a0, a1 = struct.unpack_from("<II", m, 52)
    a0 = arena if arena is not None else max(a0, align16(end))
    struct.pack_into("<II", m, 52, a0, max(a1, a0))
    return recrc(m)
