"""Ctrl-C during training (both routes) and progress output without a terminal.

Each route runs as a child process with pipes for stdout and stderr (no terminal), gets SIGINT in its
second epoch, and must end with exit status 130, one line naming the kept checkpoint and no traceback;
the same command then resumes from that checkpoint. Also a two-process torchrun run stopped by a SIGINT
to its whole process group, as a terminal's Ctrl-C does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import TOOLCHAIN, fashion_mnist_missing_reason, missing, needs_fashion_mnist, write_config
from csdformer import data as datasets
from csdformer import train
from csdformer.export import METRICS_FILE

DIST_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
FLOAT_EPOCHS, QAT_EPOCHS = 3, 1
EPOCHS = FLOAT_EPOCHS + QAT_EPOCHS
BATCHES = 4  # --limit-train 64 at the tiny config's batch 16: a progress line after batches 1, 2 and 3
ROUTES = {"csdformer.train": ("train", "float"), "csdformer.train_direct": ("train_direct", "direct")}
LINE = re.compile(r"^(?P<name>\w+): interrupted at epoch (?P<epoch>\d+)/(?P<epochs>\d+) batch (?P<batch>\d+)/(?P<batches>\d+); "
                  r"checkpoint kept at (?P<path>\S+) \(epoch (?P<kept>\d+); rerun the same command to resume\)$")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS}
    env["PYTHONPATH"] = TOOLCHAIN + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _interrupt(cmd: list[str], cwd, when: str, group: bool = False, timeout: float = 180):
    """Start ``cmd``; when a stdout line contains ``when``, send SIGINT (to its process group when ``group``).
    Returns (exit status, stdout, stderr)."""
    proc = subprocess.Popen(cmd, cwd=str(cwd), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=group)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if when in line:
                if group:
                    os.killpg(proc.pid, signal.SIGINT)
                else:
                    proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"no exit {timeout} s after SIGINT\nstdout:\n{''.join(seen) + out}\nstderr:\n{err}")
    return proc.returncode, "".join(seen) + out, err


def _interrupted_lines(err: str, name: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"{name}: interrupted")]


@pytest.fixture(scope="module", params=sorted(ROUTES))
def interrupted(request, tmp_path_factory):
    """A route's run stopped by SIGINT after the first progress line of its second epoch, then the same
    command rerun to its end."""
    if not os.path.isdir(datasets.FASHION_MNIST_DIR):
        missing(fashion_mnist_missing_reason())
    module = request.param
    name, phase = ROUTES[module]
    root = tmp_path_factory.mktemp(name)
    config = write_config(root)
    cmd = [sys.executable, "-m", module, "--config", config, "--out", "out", "--limit-train", "64",
           "--limit-test", "32", "--max-steps", str(BATCHES), "--float-epochs", str(FLOAT_EPOCHS),
           "--qat-epochs", str(QAT_EPOCHS)]
    status, out, err = _interrupt(cmd, root, f"epoch 2/{EPOCHS} [{phase}] batch 1/{BATCHES}:")
    checkpoint = torch.load(root / "out" / train.CHECKPOINT, weights_only=False)
    files = sorted(os.listdir(root / "out"))
    rerun = subprocess.run(cmd, cwd=str(root), env=_env(), capture_output=True, text=True, timeout=300)
    return {"name": name, "root": root, "status": status, "out": out, "err": err, "checkpoint": checkpoint,
            "files": files, "rerun": rerun}


@needs_fashion_mnist
def test_ctrl_c_ends_with_one_line_and_status_130(interrupted):
    r = interrupted
    assert r["status"] == 130, r["err"]
    assert "Traceback" not in r["out"] + r["err"]
    lines = _interrupted_lines(r["err"], r["name"])
    assert len(lines) == 1, r["err"]
    m = LINE.match(lines[0])
    assert m, lines[0]
    assert m["name"] == r["name"] and int(m["epochs"]) == EPOCHS and int(m["batches"]) == BATCHES
    assert m["path"] == os.path.join("out", train.CHECKPOINT)
    # the signal came during epoch 2 (after its first progress line), or later on a loaded machine: the
    # checkpoint kept is the last finished epoch's
    assert int(m["epoch"]) >= 2 and int(m["batch"]) >= 1
    assert int(m["kept"]) == int(m["epoch"]) - 1


@needs_fashion_mnist
def test_the_kept_checkpoint_is_the_last_finished_epoch(interrupted):
    r = interrupted
    state = r["checkpoint"]["state"]
    kept = int(LINE.match(_interrupted_lines(r["err"], r["name"])[0])["kept"])
    assert state["epoch"] == kept and [h["epoch"] for h in state["history"]] == list(range(1, kept + 1))
    assert r["files"] == [train.CHECKPOINT]  # no temporary left, nothing exported yet


@needs_fashion_mnist
def test_rerun_resumes_from_the_kept_checkpoint(interrupted):
    r, rerun = interrupted, interrupted["rerun"]
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    kept = r["checkpoint"]["state"]["epoch"]
    assert f"resuming from {os.path.join('out', train.CHECKPOINT)} after epoch {kept}/{EPOCHS}" in rerun.stdout
    assert f"epoch {kept}/{EPOCHS} [" not in rerun.stdout  # the kept epochs were not trained again
    with open(r["root"] / "out" / METRICS_FILE) as f:
        history = json.load(f)["history"]
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))
    assert history[0] == r["checkpoint"]["state"]["history"][0]


@needs_fashion_mnist
def test_progress_without_a_terminal_is_whole_lines(interrupted):
    r, rerun = interrupted, interrupted["rerun"]
    for text in (r["out"], r["err"], rerun.stdout, rerun.stderr):
        assert "\r" not in text
    # a line after each batch but the last (every ceil(4 / 10) = 1 batches), then the epoch's own line
    for epoch in range(r["checkpoint"]["state"]["epoch"] + 1, EPOCHS + 1):
        lines = [line for line in rerun.stdout.splitlines() if line.startswith(f"epoch {epoch}/{EPOCHS} [")]
        assert len(lines) == BATCHES, lines
        for b, line in enumerate(lines[:-1], start=1):
            assert re.match(rf"epoch {epoch}/{EPOCHS} \[[\w-]+\] batch {b}/{BATCHES}: loss [\d.]+ train [\d.]+ \(\d+ s\)$",
                            line), line
        assert re.match(rf"epoch {epoch}/{EPOCHS} \[[\w-]+\] loss [\d.]+ train [\d.]+ test [\d.]+", lines[-1])


def test_the_line_names_the_stage_and_what_a_rerun_does():
    where = train.Position("out/checkpoint.pt")
    assert where.interrupted("train") == "train: interrupted before training began (rerun the same command)"
    where.stage, where.epoch, where.epochs, where.batch, where.batches = "training", 1, 3, 2, 4
    assert where.interrupted("train") == ("train: interrupted at epoch 1/3 batch 2/4; no checkpoint written yet "
                                          "(rerun the same command to start over)")
    where.epoch, where.kept = 2, 1
    assert LINE.match(where.interrupted("train_direct"))
    where.stage, where.kept = "finishing", 3
    assert where.interrupted("train") == ("train: interrupted after the last epoch, before the export was written; "
                                          "checkpoint kept at out/checkpoint.pt (epoch 3; rerun the same command "
                                          "to finish)")


# ----------------------------------------------------------------------------- torchrun

@needs_fashion_mnist
def test_ctrl_c_under_torchrun_stops_every_rank_with_one_line(tmp_path):
    # SIGINT to the process group (a terminal's Ctrl-C): torchrun forwards it too. Every rank stops within
    # the timeout, rank 0 prints the line, no traceback passes through csdformer (torchrun prints its own).
    config = write_config(tmp_path)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "csdformer.train", "--config", config, "--out", "out", "--limit-train", "128", "--limit-test", "32",
           "--max-steps", str(BATCHES), "--float-epochs", str(FLOAT_EPOCHS), "--qat-epochs", str(QAT_EPOCHS)]
    started = time.monotonic()
    status, out, err = _interrupt(cmd, tmp_path, f"epoch 2/{EPOCHS} [float] batch 1/{BATCHES}:", group=True,
                                  timeout=120)
    assert status != 0
    lines = _interrupted_lines(err, "train")
    assert len(lines) == 1 and LINE.match(lines[0]), err[-4000:]
    kept = int(LINE.match(lines[0])["kept"])
    assert kept >= 1
    assert not re.search(r'File "[^"]*/csdformer/\w+\.py"', err), err[-4000:]
    assert torch.load(tmp_path / "out" / train.CHECKPOINT, weights_only=False)["state"]["epoch"] == kept
    assert time.monotonic() - started < 150
