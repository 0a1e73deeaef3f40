"""make deps' Swift toolchain check (Toolchain/scripts/check-swift.sh): the installed toolchain
passes; a missing, too old, or Embedded-less one is refused with a message saying what to install."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import REPO

SCRIPT = os.path.join(REPO, "Toolchain", "scripts", "check-swift.sh")
SYSTEM_PATH = "/usr/bin:/bin"


def check(path: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT], capture_output=True, text=True, env={"PATH": path}, timeout=60)


def fake_swiftc(tmp_path, version: str) -> str:
    """A folder with a `swiftc` that prints `version` (no Embedded stdlib next to it)."""
    bin_dir = tmp_path / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    tool = bin_dir / "swiftc"
    tool.write_text(f"#!/bin/sh\necho 'Swift version {version} (swift-{version}-RELEASE)'\n")
    tool.chmod(0o755)
    return f"{bin_dir}:{SYSTEM_PATH}"


def test_installed_toolchain_passes():
    swiftc = shutil.which("swiftc")
    assert swiftc, "make test needs swiftc on PATH"
    r = check(f"{os.path.dirname(swiftc)}:{SYSTEM_PATH}")
    assert r.returncode == 0, r.stderr


def test_missing_swiftc_is_named():
    r = check(SYSTEM_PATH)
    assert r.returncode == 1
    assert "no swiftc on PATH" in r.stderr and "Swift 6.3 or later with the Embedded Swift standard library" in r.stderr


@pytest.mark.parametrize("version", ["5.10.1", "6.2"])
def test_old_swift_is_refused(tmp_path, version):
    r = check(fake_swiftc(tmp_path, version))
    assert r.returncode == 1
    assert f"is Swift {'.'.join(version.split('.')[:2])}" in r.stderr and "6.3 or later" in r.stderr


def test_swift_without_embedded_stdlib_is_refused(tmp_path):
    r = check(fake_swiftc(tmp_path, "6.3.1"))
    assert r.returncode == 1
    assert "no Embedded standard library" in r.stderr
