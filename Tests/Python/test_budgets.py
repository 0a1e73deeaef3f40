"""Self-test of the budget check (Tests/Budgets/check.py, run by ``make check-budgets``).

Runs the checker on a fake size report and inspect JSON: it must pass at and
below each budget, fail (exit 1) naming the budget, the measured value and the
budget file above it or when a measurement is missing, and refuse malformed input (exit 2).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHECK = os.path.join(REPO, "Tests", "Budgets", "check.py")
BUDGETS = os.path.join(REPO, "Tests", "Budgets", "budgets.txt")

FAKE_BUDGETS = """# comment
arena fused 1000
arena spiking 3000   # trailing comment
text armv7em-soft 500
text riscv32 600
heap_symbols * 0
float_symbols * 0
"""


def _size(text_m4=500, text_rv=600, heap=0, floats=0):
    return (f"size: target=armv7em-soft text={text_m4} heap_symbols={heap} float_symbols=0\n"
            f"size: target=riscv32 text={text_rv} heap_symbols=0 float_symbols={floats}\n")


def _inspect(fused=1000, spiking=3000, valid=True):
    return json.dumps({"valid": valid, "status_message": "ok" if valid else "bad crc",
                       "arena_bytes": {"fused": fused, "spiking": spiking}})


def _run(tmp_path, budgets=FAKE_BUDGETS, size=None, inspect=None):
    files = {}
    for name, content in (("budgets.txt", budgets), ("size.txt", size if size is not None else _size()),
                          ("inspect.json", inspect if inspect is not None else _inspect())):
        files[name] = tmp_path / name
        files[name].write_text(content)
    p = subprocess.run([sys.executable, CHECK, str(files["budgets.txt"]), "--size-report", str(files["size.txt"]),
                        "--inspect", str(files["inspect.json"])], capture_output=True, text=True, timeout=60)
    return p, str(files["budgets.txt"])


def test_passes_at_the_budget(tmp_path):
    p, _ = _run(tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "budget: arena fused 1000 <= 1000 B" in p.stdout
    assert "budget: text riscv32 600 <= 600 B" in p.stdout
    # '*' expands to every target of the report
    assert "budget: heap_symbols armv7em-soft 0 <= 0" in p.stdout
    assert "budget: float_symbols riscv32 0 <= 0" in p.stdout
    assert "FAIL" not in p.stdout


def test_passes_below_the_budget(tmp_path):
    p, _ = _run(tmp_path, size=_size(text_m4=400), inspect=_inspect(fused=900))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "budget: arena fused 900 <= 1000 B (100 B under)" in p.stdout
    assert "budget: text armv7em-soft 400 <= 500 B (100 B under)" in p.stdout


@pytest.mark.parametrize("size,inspect,needle", [
    (_size(), _inspect(fused=1001), "arena fused 1001 > 1000 B"),
    (_size(), _inspect(spiking=3100), "arena spiking 3100 > 3000 B"),
    (_size(text_m4=501), _inspect(), "text armv7em-soft 501 > 500 B"),
    (_size(heap=1), _inspect(), "heap_symbols armv7em-soft 1 > 0"),
    (_size(floats=2), _inspect(), "float_symbols riscv32 2 > 0"),
])
def test_fails_above_the_budget(tmp_path, size, inspect, needle):
    p, budget_file = _run(tmp_path, size=size, inspect=inspect)
    assert p.returncode == 1, p.stdout + p.stderr
    fail = [line for line in p.stdout.splitlines() if line.startswith("budget: FAIL")]
    assert len(fail) == 1 and needle in fail[0], p.stdout
    assert budget_file in fail[0]  # names the file (and line) to edit
    assert budget_file in p.stderr


def test_fails_when_a_target_is_missing(tmp_path):
    p, _ = _run(tmp_path, size="size: target=armv7em-soft text=10 heap_symbols=0 float_symbols=0\n")
    assert p.returncode == 1
    assert "budget: FAIL text riscv32: not measured" in p.stdout


@pytest.mark.parametrize("budgets,size,inspect", [
    ("text armv7em-soft\n", None, None),
    ("text armv7em-soft 16k\n", None, None),
    ("stack armv7em-soft 100\n", None, None),
    ("arena hybrid 100\n", None, None),
    (FAKE_BUDGETS, "size: target=armv7em-soft text=abc\n", None),
    (FAKE_BUDGETS, None, "not json"),
    (FAKE_BUDGETS, None, _inspect(valid=False)),
])
def test_refuses_malformed_input(tmp_path, budgets, size, inspect):
    p, _ = _run(tmp_path, budgets=budgets, size=size, inspect=inspect)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "budget: ERROR" in p.stderr


def test_project_budgets():
    """The pinned budgets of the issue: .text ceilings, no heap or float symbols, arena pins."""
    spec = importlib.util.spec_from_file_location("budget_check", CHECK)
    budget_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(budget_check)
    with open(BUDGETS) as f:
        budgets = {(m, s): limit for _, m, s, limit in budget_check.parse_budgets(f.read())}
    # 16,384 B with the C kernels; 17,000 B since the kernels are Swift; 17,152 B since the size probe links
    # every export (csd_session_set_observer had been left out; csd_session_set_path is new; docs/BENCHMARKS.md);
    # 17,280 B since sessions check their settings against the arena (the count path's fused-size arena);
    # 18,816 B (22,016 B on Cortex-M0+ and RISC-V) since format 2 streams the attention pair through the
    # scratch and writes in place: 9,328 B less arena fused, 9,616 B less spiking, for about 1.5 KB of code;
    # 21,248 B (24,832 B) since format 4 runs band units: their ops' fused live bytes fall by up to 11.5 KB,
    # for about 2.4 KB of code; 24,064 B (28,416 B) since format 5's attention units (csdpack convert --low-ram)
    # bring the reference model's fused arena from 16,304 to 12,240 B, onto a 16 KB micro:bit, for about 3.2 KB
    # of code; 24,832 B (29,312 B) since the event path's attention runs every step of a pair at once (9.93 ->
    # 7.78 instructions per synaptic operation at D = 3 on the Cortex-M4, for about 0.75 KB)
    assert budgets[("text", "armv7em-soft")] <= 24832
    assert budgets[("text", "armv7em-hard")] <= 24832
    assert budgets[("text", "armv6m")] <= 29312
    assert budgets[("text", "riscv32")] <= 29312
    assert budgets[("heap_symbols", "*")] == 0
    assert budgets[("float_symbols", "*")] == 0
    # arena fused: 18,272 B in format 2 (the kernel scratch after every buffer); 16,304 B since format 3 places
    # each op's scratch where its live buffers leave room (docs/FORMAT.md "Kernel scratch")
    assert budgets[("arena", "fused")] <= 16304
    assert budgets[("arena", "spiking")] <= 57152
