"""The toolchain as a package: `pip install ./Toolchain` into a fresh virtualenv gives the console scripts
and the documented API (docs/PYTHON_API.md), importable from outside the source tree.

Offline and quick: the virtualenv has no pip and no packages of its own; a .pth file puts the running
interpreter's site-packages (the project virtualenv: torch, numpy, pip, setuptools) on its path, and pip
installs with --no-deps --no-build-isolation --no-index. (`venv --system-site-packages` made from the
project virtualenv would see the base interpreter's packages, not the project virtualenv's.) The package
is built from a copy of Toolchain/pyproject.toml and Toolchain/csdformer, so the checkout gets no build/
or egg-info folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest

from conftest import REPO, TOOLCHAIN, missing

SCRIPTS = ("csdformer-train", "csdformer-train-direct", "csdformer-evaluate", "csdformer-report",
           "csdformer-crosscheck", "csdformer-reference")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(cmd: list[str], cwd, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=str(cwd), env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    for module in ("pip", "setuptools"):  # the build backend runs in this interpreter's packages
        if importlib.util.find_spec(module) is None:
            missing(f"{module} is not installed in {sys.prefix} (the test builds the package offline with it)")
    root = tmp_path_factory.mktemp("package")
    source = root / "source"
    source.mkdir()
    shutil.copy(os.path.join(TOOLCHAIN, "pyproject.toml"), source)
    shutil.copytree(os.path.join(TOOLCHAIN, "csdformer"), source / "csdformer",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = str(venv / "bin" / "python")
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root).stdout.strip()
    with open(os.path.join(purelib, "project-venv.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    pip = _run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(source)],
               root, timeout=180)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    work = root / "elsewhere"  # the working folder of every check: not the checkout, not the copy
    work.mkdir()
    return {"venv": venv, "python": python, "purelib": purelib, "work": work}


@pytest.mark.parametrize("script", SCRIPTS)
def test_console_script_help(installed, script):
    path = installed["venv"] / "bin" / script
    assert path.is_file()
    proc = _run([str(path), "--help"], installed["work"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.startswith("usage:") and "--" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_api_imports_from_the_installed_package(installed):
    model_csd = os.path.join(REPO, "Tests", "TestData", "fmnist_tiny", "model.csd")
    export = os.path.join(REPO, "Toolchain", "models", "fmnist-tiny")
    check = textwrap.dedent(f"""
        import os, sys
        import csdformer
        assert os.path.dirname(csdformer.__file__) == os.path.join({installed['purelib']!r}, "csdformer"), csdformer.__file__
        assert {REPO!r} not in os.environ.get("PYTHONPATH", "") and {TOOLCHAIN!r} not in sys.path
        assert set(csdformer.__all__) == {{"train_model", "load_config", "export_model", "load_export", "reference"}}

        import numpy as np
        image = csdformer.reference.load({model_csd!r})
        assert "torch" not in sys.modules  # the reference needs NumPy only
        logits = csdformer.reference.run(image, np.zeros(image.input_shape, dtype=np.uint8))
        assert logits.dtype == np.int32 and logits.shape == (image.classes,)
        batch = csdformer.reference.run_batch(image, np.zeros((2,) + image.input_shape, dtype=np.uint8))
        assert (batch == logits).all()

        model = csdformer.load_export({export!r})
        assert model.phase == "qat" and callable(csdformer.train_model) and callable(csdformer.export_model)
        print("api ok", image.classes, sum(p.numel() for p in model.parameters()))
    """)
    proc = _run([installed["python"], "-c", check], installed["work"])
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert proc.stdout.strip() == "api ok 10 94541"
