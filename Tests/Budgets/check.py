#!/usr/bin/env python3
"""Budgets as tests: code size, heap/float symbols and arena bytes against Tests/Budgets/budgets.txt.

Usage: check.py BUDGETS --size-report FILE --inspect FILE

  BUDGETS        the budget file (one ``METRIC SUBJECT MAX`` per line; see its header)
  --size-report  output of Toolchain/cross/size-report.sh (``make size``):
                 ``size: target=T text=BYTES heap_symbols=N float_symbols=N``
  --inspect      output of ``csdpack inspect --json`` on the packed reference model

Prints one line per budget (per target for ``*``) and exits 1 when any measured
value is above its budget or missing, 2 on a malformed input. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

SIZE_LINE = re.compile(r"^size: target=(\S+)((?: \w+=\d+)+)\s*$")
SIZE_METRICS = ("text", "heap_symbols", "float_symbols")
ARENA_SUBJECTS = ("fused", "spiking")
UNITS = {"text": " B", "arena": " B"}


class InputError(Exception):
    pass


def parse_budgets(text: str) -> list[tuple[int, str, str, int]]:
    """(line number, metric, subject, max) for every non-comment line."""
    budgets = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 3 or not fields[2].isdigit():
            raise InputError(f"line {n}: expected 'METRIC SUBJECT MAX', got {raw.strip()!r}")
        metric, subject, limit = fields[0], fields[1], int(fields[2])
        if metric == "arena":
            if subject not in ARENA_SUBJECTS:
                raise InputError(f"line {n}: arena subject must be one of {', '.join(ARENA_SUBJECTS)}, got {subject!r}")
        elif metric not in SIZE_METRICS:
            raise InputError(f"line {n}: unknown metric {metric!r} (known: arena, {', '.join(SIZE_METRICS)})")
        budgets.append((n, metric, subject, limit))
    return budgets


def parse_size_report(text: str) -> dict[str, dict[str, int]]:
    """target -> {text, heap_symbols, float_symbols}; lines that are not size lines are ignored."""
    sizes: dict[str, dict[str, int]] = {}
    for raw in text.splitlines():
        if not raw.startswith("size:"):
            continue
        m = SIZE_LINE.match(raw.strip())
        if not m:
            raise InputError(f"cannot parse {raw.strip()!r}")
        sizes[m.group(1)] = {k: int(v) for k, v in (kv.split("=") for kv in m.group(2).split())}
    return sizes


def parse_inspect(text: str) -> dict[str, int]:
    """{fused, spiking} arena bytes from `csdpack inspect --json`."""
    try:
        report = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"not JSON ({e})") from e
    if not report.get("valid", False):
        raise InputError(f"the packed image is not valid: {report.get('status_message', '?')}")
    arena = report.get("arena_bytes")
    if not isinstance(arena, dict):
        raise InputError("no arena_bytes in the JSON")
    return {k: int(v) for k, v in arena.items()}


def check(budgets, sizes, arena, budget_file: str) -> tuple[list[str], int]:
    """One line per budget (per target for '*') and the number of failures."""
    lines, failures = [], 0
    for n, metric, subject, limit in budgets:
        where = f"{budget_file}:{n}"
        if metric == "arena":
            items = [(subject, arena.get(subject))]
        elif subject == "*":
            items = [(t, s.get(metric)) for t, s in sizes.items()]
            if not items:
                items = [("*", None)]
        else:
            items = [(subject, sizes.get(subject, {}).get(metric))]
        unit = UNITS.get(metric, "")
        for name, measured in items:
            label = f"{metric} {name}"
            if measured is None:
                failures += 1
                lines.append(f"budget: FAIL {label}: not measured (budget {limit}{unit}, {where}; "
                             f"is the target in the size report / the model packed?)")
            elif measured > limit:
                failures += 1
                lines.append(f"budget: FAIL {label} {measured} > {limit}{unit}: {measured - limit}{unit} over the budget "
                             f"in {where} (shrink it back, or raise that line with a reason in the commit message)")
            elif measured < limit:
                lines.append(f"budget: {label} {measured} <= {limit}{unit} ({limit - measured}{unit} under)")
            else:
                lines.append(f"budget: {label} {measured} <= {limit}{unit}")
    return lines, failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("budgets", help="the budget file (Tests/Budgets/budgets.txt)")
    ap.add_argument("--size-report", required=True, help="output of Toolchain/cross/size-report.sh")
    ap.add_argument("--inspect", required=True, help="output of `csdpack inspect --json` on the packed model")
    args = ap.parse_args(argv)
    parsed = []
    for path, parse in ((args.budgets, parse_budgets), (args.size_report, parse_size_report), (args.inspect, parse_inspect)):
        try:
            with open(path) as f:
                parsed.append(parse(f.read()))
        except (OSError, InputError) as e:
            print(f"budget: ERROR {path}: {e}", file=sys.stderr)
            return 2
    budgets, sizes, arena = parsed
    lines, failures = check(budgets, sizes, arena, args.budgets)
    print("\n".join(lines))
    if failures:
        print(f"budget: {failures} budget(s) exceeded; the budgets are in {args.budgets}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
