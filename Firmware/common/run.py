#!/usr/bin/env python3
"""Host side of the bare-metal demo (standard library only).

  run.py run   --name N --elf ELF --map MAP --nm NM --size SIZE --plugin SO --out DIR [--timeout S]
               [--plugin-args exact=on] [--no-kernel-check] [--plan all|fused]
               [--ram-report PART:FLASH:RAM] -- QEMU ARGV...
      Reads the marker addresses (csd_bench_begin / csd_bench_end) from the ELF,
      runs QEMU with the instruction-counting plugin, echoes the firmware's UART
      output, combines it with the plugin's per-pair counts and prints the
      per-inference instruction counts and the final `demo:` line. Writes
      DIR/uart.txt, DIR/counter.txt and DIR/summary.json. Exit status 0 only if
      QEMU exited 0, every logit equalled the golden value in every pass and
      every measured pair was counted. --no-kernel-check: the firmware runs no
      kernel-twin check and prints no 'result: kernels' line (the Swift-main example,
      Firmware/swift-main). --plan fused: the firmware was built fused-plan-only
      (FW_FUSED_PLAN_ONLY) and runs the passes of PLAN_PASSES["fused"]; its model line
      must say so. --ram-report: before the demo line, the RAM the run needed (static
      arena + measured stack high-water + the other .data/.bss) against PART's RAM,
      and the flash against PART's flash.
  run.py size  --name N --elf ELF --map MAP --nm NM --size SIZE --out DIR [--fit NAME:FLASH:RAM ...]
               [--ram-report PART:FLASH:RAM]
      Section sizes of a firmware ELF, the runtime's share, and whether it (or a
      fused-only build) fits parts with the given flash / RAM bytes; --ram-report
      the RAM table as above, with the stack as reserved (no run, no high-water mark).
  run.py bench SUMMARY.json...
      The benchmark table, one column per run.

Pair order (fixed by Firmware/common/main.c): pair 0 is an empty begin/end
(the call overhead, subtracted from every other pair), then per pass (PASSES:
fused; "spiking" at D = T, the count path; "event", spiking at a delay below
T, the per-spike event path; "spiking_event", spiking at D = T forced onto the
event path with CSD_PATH_EVENT) the runs of images 0..N-1. A fused-plan-only
build runs the first two (PLAN_PASSES["fused"]); its spiking pass is skipped,
with neither pairs nor marks, when the model has no count path at its delay
(T > 8 or a delay below T), which the runner checks from the model line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

PASSES = ("fused", "spiking", "event", "spiking_event")
# the passes each build plan runs (firmware.mk FIRMWARE_PLAN; main.c FW_FUSED_PLAN_ONLY)
PLAN_PASSES = {"all": PASSES, "fused": ("fused", "spiking")}
COUNT_PATH_MAX_T = 8  # the count path needs T <= 8 (Include/csd.h)
HEAP = re.compile(r"^(malloc|free|calloc|realloc|posix_memalign|aligned_alloc|memalign|swift_allocObject|swift_slowAlloc)$")


def symbols(nm: str, elf: str) -> dict[str, tuple[int, int]]:
    """name -> (value, size) for every symbol nm -S prints."""
    out = subprocess.run([nm, "-S", elf], check=True, capture_output=True, text=True).stdout
    syms: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4:
            syms[f[3]] = (int(f[0], 16), int(f[1], 16))
        elif len(f) == 3 and f[1] not in ("U", "w", "v"):
            syms.setdefault(f[2], (int(f[0], 16), 0))
    return syms


def sections(size_tool: str, elf: str) -> dict[str, int]:
    out = subprocess.run([size_tool, "-A", elf], check=True, capture_output=True, text=True).stdout
    secs = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[0].startswith(".") and f[1].isdigit():
            secs[f[0]] = int(f[1])
    return secs


def map_contributions(map_path: str) -> dict[str, int]:
    """Bytes per (origin, kind) from a GNU ld or lld map: origin is 'runtime'
    (libcsd.a), 'libgcc' or 'firmware'; kind is 'text', 'rodata' or 'data'."""
    text = open(map_path, encoding="utf-8", errors="replace").read()
    entries: list[tuple[str, int, str]] = []  # (input section, size, file)
    if "Linker script and memory map" in text:  # GNU ld
        body = text.split("Linker script and memory map", 1)[1]
        for m in re.finditer(r"^ (\.[^\s]+)\s*\n?\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*)$", body, re.M):
            entries.append((m.group(1), int(m.group(3), 16), m.group(4).strip()))
    else:  # lld: VMA LMA Size Align Out In Symbol
        for m in re.finditer(r"^\s*[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+(\S.*):\((\S+)\)$", text, re.M):
            entries.append((m.group(3), int(m.group(1), 16), m.group(2).strip()))
    totals: dict[str, int] = {}
    for name, size, origin_file in entries:
        if name.startswith(".text"):
            kind = "text"
        elif name.startswith((".rodata", ".srodata")):
            kind = "rodata"
        elif name.startswith((".data", ".sdata", ".bss", ".sbss")):
            kind = "data"
        else:
            continue
        origin = "runtime" if "libcsd.a(" in origin_file else "libgcc" if "libgcc" in origin_file else "firmware"
        totals[f"{origin}_{kind}"] = totals.get(f"{origin}_{kind}", 0) + size
    return totals


def size_info(args) -> dict:
    syms = symbols(args.nm, args.elf)
    heap = sorted(n for n in syms if HEAP.match(n))
    secs = sections(args.size, args.elf)
    info = {
        "text": secs.get(".vectors", 0) + secs.get(".text", 0),
        "rodata": secs.get(".rodata", 0) + secs.get(".ARM.exidx", 0) + secs.get(".ARM.extab", 0)
        + secs.get(".swift_modhash", 0),
        "data": secs.get(".data", 0),
        "bss": secs.get(".bss", 0),
        "stack_reserved": secs.get(".stack", 0),
        "flash_used": syms.get("__flash_used", (0, 0))[0],
        "ram_used": syms.get("__ram_used", (0, 0))[0],
        "arena_static": syms.get("arena", (0, 0))[1],
        "model_image": syms.get(args.model_symbol, (0, 0))[1],
        "heap_symbols": heap,
        # the RAM symbols with a size (.data, .bss), for the RAM report
        "ram_symbols": {n: size for n, (v, size) in syms.items()
                        if size and "__data_start" in syms and "__stack_bottom" in syms
                        and syms["__data_start"][0] <= v < syms["__stack_bottom"][0]},
    }
    info.update(map_contributions(args.map))
    return info


def print_sizes(name: str, s: dict) -> None:
    print(f"size: target={name} text={s['text']} rodata={s['rodata']} data={s['data']} bss={s['bss']} "
          f"stack={s['stack_reserved']} flash_used={s['flash_used']} ram_used={s['ram_used']} "
          f"runtime_text={s.get('runtime_text', 0)} runtime_rodata={s.get('runtime_rodata', 0)} "
          f"libgcc_text={s.get('libgcc_text', 0)} model_image={s['model_image']} arena_static={s['arena_static']}")


def parse_kv(line: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def cmd_size(args) -> int:
    s = size_info(args)
    print_sizes(args.name, s)
    if s["heap_symbols"]:
        print(f"size: error: allocator symbols linked: {' '.join(s['heap_symbols'])}", file=sys.stderr)
        return 1
    fits = []
    # RAM of a fused-only build: this build's RAM with the arena cut to the fused need
    # (the generated macro) and the stack kept as reserved here.
    fused_arena = args.arena_fused
    for spec in args.fit or []:
        part, flash, ram = spec.split(":")
        flash, ram = int(flash, 0), int(ram, 0)
        ram_fused_only = s["ram_used"] - s["arena_static"] + fused_arena if fused_arena else None
        # the same with the stack cut to the measured high-water mark, if a run left one
        stack_hw = None
        run_summary = os.path.join(args.out, "summary.json")
        if os.path.exists(run_summary):
            with open(run_summary) as f:
                stack_hw = json.load(f).get("stack_high_water")
        ram_fused_min = (ram_fused_only - s["stack_reserved"] + stack_hw) if fused_arena and stack_hw else None
        ok_flash = s["flash_used"] <= flash
        ok_ram = s["ram_used"] <= ram
        line = (f"fit: part={part} flash={flash} ram={ram}: flash needs {s['flash_used']} "
                f"({'fits' if ok_flash else 'does NOT fit'}); RAM needs {s['ram_used']} for both modes "
                f"({'fits' if ok_ram else 'does NOT fit'})")
        if ram_fused_only is not None:
            ok_fused = ram_fused_only <= ram
            line += (f"; a fused-plan-only build (FIRMWARE_PLAN=fused) needs {ram_fused_only} (arena {fused_arena} + "
                     f"{s['ram_used'] - s['arena_static']} other RAM incl. {s['stack_reserved']} stack) "
                     f"({'fits' if ok_fused else 'does NOT fit'})")
            if ram_fused_min is not None:
                line += (f"; even with the stack cut to its measured high-water mark ({stack_hw}) a fused-plan-only "
                         f"build needs {ram_fused_min} ({'fits' if ram_fused_min <= ram else 'does NOT fit'})")
        print(line)
        fits.append({"part": part, "flash": flash, "ram": ram, "flash_ok": ok_flash, "ram_ok": ok_ram,
                     "ram_fused_only": ram_fused_only, "ram_fused_only_min": ram_fused_min})
    report = None
    if args.ram_report:
        lines, report = ram_report(args.ram_report, s, None)
        for line in lines:
            print(line)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "size.json"), "w") as f:
        json.dump({"name": args.name, "sizes": s, "fit": fits, "ram_report": report}, f, indent=1)
    return 0


def cmd_run(args) -> int:
    os.makedirs(args.out, exist_ok=True)
    syms = symbols(args.nm, args.elf)
    try:
        begin, end = syms["csd_bench_begin"][0] & ~1, syms["csd_bench_end"][0] & ~1
        mark = syms["csd_bench_mark"][0] & ~1
    except KeyError:
        print("run: the ELF has no csd_bench_begin / csd_bench_end / csd_bench_mark", file=sys.stderr)
        return 1
    sizes = size_info(args)
    if sizes["heap_symbols"]:
        print(f"run: error: allocator symbols linked: {' '.join(sizes['heap_symbols'])}", file=sys.stderr)
        return 1
    counter_path = os.path.join(args.out, "counter.txt")
    if os.path.exists(counter_path):
        os.remove(counter_path)
    qemu = list(args.qemu)
    if qemu and qemu[0] == "--":
        qemu = qemu[1:]
    extra = "".join("," + a for a in (args.plugin_args or "").split(",") if a)
    qemu += ["-plugin", f"{args.plugin},begin={begin:#x},end={end:#x},mark={mark:#x},out={counter_path}{extra}"]
    print(f"run: {' '.join(qemu)}", flush=True)
    uart_lines: list[str] = []
    start = time.monotonic()
    # coreutils timeout bounds the run even when the guest hangs silently (status 124)
    proc = subprocess.Popen(["timeout", "--kill-after=5", str(args.timeout)] + qemu, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    assert proc.stdout is not None
    for line in proc.stdout:  # echo as it comes
        if not args.quiet or not line.startswith("  op "):
            sys.stdout.write(line)
            sys.stdout.flush()
        uart_lines.append(line.rstrip("\r\n"))
    rc = proc.wait()
    timed_out = rc in (124, 137)
    wall = time.monotonic() - start
    with open(os.path.join(args.out, "uart.txt"), "w") as f:
        f.write("\n".join(uart_lines) + "\n")

    errors = []
    if timed_out:
        errors.append(f"QEMU timed out after {args.timeout} s")
    elif rc != 0:
        errors.append(f"QEMU exited with status {rc}")
    results: dict[str, dict[str, str]] = {}
    cpu = "?"
    model_line: dict[str, str] = {}
    for line in uart_lines:
        if line.startswith("model: "):
            model_line = parse_kv(line)
        elif line.startswith("result: "):
            f = line.split()
            kv = parse_kv(line)
            key = kv.get("mode", f[1])
            results[key] = kv
        elif line.startswith("csd firmware: "):
            cpu = line.split(" cpu=", 1)[1] if " cpu=" in line else "?"
    op_lines: list[dict[str, str]] = []
    for line in uart_lines:
        if line.startswith("  op "):
            f = line.split()
            kv = parse_kv(line)
            kv.update({"index": f[1], "kind": f[2]})
            op_lines.append(kv)
    pairs: list[int] = []
    marks: list[int] = []
    unmatched = None
    if os.path.exists(counter_path):
        for line in open(counter_path):
            kv = parse_kv(line)
            if "mark" in kv:
                marks.append(int(kv["insns"]))
            elif "insns" in kv:
                pairs.append(int(kv["insns"]))
            if "unmatched" in kv:
                unmatched = int(kv["unmatched"])
    plan_passes = PLAN_PASSES[args.plan]
    required = ("model", "stack") + (() if args.no_kernel_check else ("kernels",)) + plan_passes
    for key in required:
        if key not in results:
            errors.append(f"the firmware printed no 'result: {key}' line")
    summary: dict = {"name": args.name, "cpu": cpu, "qemu_status": rc, "wall_s": round(wall, 2), "sizes": sizes}
    if args.plan != "all":
        summary["plan"] = args.plan
    complete = all(k in results for k in required)
    ran = plan_passes
    if complete:
        built = results["model"].get("plan", "all")
        if built != args.plan:
            errors.append(f"the firmware was built for plan '{built}', the runner expects '{args.plan}'")
        ran = tuple(p for p in plan_passes if results[p].get("skipped") != "1")
        for p in plan_passes:
            if p not in ran:
                reason = skip_reason(p, results, model_line)
                if reason is None:
                    errors.append(f"the firmware skipped pass '{p}', which runs in the fused plan (its count path)")
                else:
                    summary[f"skipped_{p}"] = reason
        n = int(results["model"]["images"])
        exact = {p: int(results[p]["bit_exact"]) for p in ran}
        if any(e != n for e in exact.values()):
            errors.append("logits differ from golden: " + ", ".join(f"{p} {exact[p]}/{n}" for p in ran)
                          + " images bit-exact")
        kernels = results.get("kernels")
        if kernels is None:
            pass  # --no-kernel-check
        elif kernels.get("mismatches") != "0":
            errors.append(f"the DSP kernels disagree with their plain twins in {kernels.get('mismatches')} cases")
        else:
            summary["kernel_twin_cases"] = int(kernels["cases"])
        if any(results[p].get("stats_run_exact") != "1" for p in ran):
            errors.append("the statistics run of image 0 gave logits that differ from golden")
        # the high-water mark is the painted stack's lowest overwritten word: a stack with no paint
        # left may have run past its bottom, into .bss, and the mark says nothing
        if int(results["stack"]["high_water"]) >= int(results["stack"]["size"]):
            errors.append(f"the stack's paint is gone ({results['stack']['high_water']} of "
                          f"{results['stack']['size']} bytes): it may have overflowed")
    if complete and not errors:
        if len(pairs) != 1 + len(ran) * n or unmatched:
            errors.append(f"plugin counted {len(pairs)} begin/end pairs (expected {1 + len(ran) * n}), "
                          f"unmatched={unmatched}")
        else:
            calib = pairs[0]
            ins = {p: [c - calib for c in pairs[1 + i * n:1 + (i + 1) * n]] for i, p in enumerate(ran)}
            mean = {p: round(sum(ins[p]) / n) for p in ran}
            macs = int(results["model"]["macs"])
            synops = {p: int(results[p]["synaptic_ops"]) for p in ("spiking", "event", "spiking_event") if p in ran}
            if "spiking_event" in ran and synops["spiking_event"] != synops["spiking"]:
                errors.append(f"the event path at D = T counted {synops['spiking_event']} synaptic ops, "
                              f"the count path {synops['spiking']}")
            if "spiking_event" in ran and ins["spiking_event"] == ins["spiking"]:
                errors.append("CSD_PATH_EVENT ran the same instructions as the count path: the path was not switched")
            labelled = results["fused"].get("labelled", "1") == "1"

            def get(table: dict, p: str):
                return table.get(p)

            def ratio(p: str):
                return ins[p][0] / synops[p] if p in ran and synops[p] else None

            summary.update({
                "board": args.name, "images": n, "labelled": labelled,
                "correct_fused": int(results["fused"]["correct"]) if labelled else None,
                "correct_spiking": int(results["spiking"]["correct"]) if labelled and "spiking" in ran else None,
                "bit_exact_fused": exact["fused"], "bit_exact_spiking": get(exact, "spiking"),
                "bit_exact_event": get(exact, "event"), "bit_exact_spiking_event": get(exact, "spiking_event"),
                "delay_spiking": int(results["spiking"]["delay"]),
                "delay_event": int(results["event"]["delay"]) if "event" in results else None,
                "calibration_insns": calib, "insns_fused": ins["fused"], "insns_spiking": get(ins, "spiking"),
                "insns_event": get(ins, "event"), "insns_fused_mean": mean["fused"],
                "insns_spiking_mean": get(mean, "spiking"), "insns_event_mean": get(mean, "event"),
                "insns_spiking_event": get(ins, "spiking_event"), "insns_spiking_event_mean": get(mean, "spiking_event"),
                "macs": macs,
                "synaptic_ops_image0": get(synops, "spiking"), "synaptic_ops_event_image0": get(synops, "event"),
                "spikes_image0": int(results["spiking"]["spikes"]) if "spiking" in ran else None,
                "insns_per_mac": ins["fused"][0] / macs if macs else None,
                "insns_per_mac_mean": mean["fused"] / macs if macs else None,
                "insns_per_synop_image0": ratio("spiking"),
                "insns_per_synop_event_image0": ratio("event"),
                "insns_per_synop_spiking_event_image0": ratio("spiking_event"),
                "image_bytes": int(results["model"]["image_bytes"]),
                "arena_fused": int(results["model"]["arena_fused"]),
                "arena_spiking": int(results["model"]["arena_spiking"]),
                "arena_static": int(results["model"]["arena_static"]),
                # the arena the spiking pass at D = T ran in (the count path: the fused need)
                "arena_spiking_pass": int(results["spiking"].get("arena", results["model"]["arena_static"]))
                if "spiking" in ran else None,
                "stack_high_water": int(results["stack"]["high_water"]),
                "stack_size": int(results["stack"]["size"]),
            })
            profile = per_op_profile(marks, op_lines, ran)
            if profile is None:
                errors.append(f"plugin saw {len(marks)} per-op marks for {len(op_lines)} op lines")
            else:
                summary.update(profile)
                print_profile(profile, ran)
            print(f"bench: pairs={len(pairs)} calibration_insns={calib} (subtracted)")
            print(f"bench: fused   instructions/inference mean={mean['fused']} min={min(ins['fused'])} "
                  f"max={max(ins['fused'])} per_MAC={mean['fused'] / macs:.2f} (MACs={macs})")
            for p, what in (("spiking", "count path"), ("spiking_event", "event path"), ("event", "event path")):
                if p not in plan_passes:
                    continue
                d = results[p]["delay"]
                if p not in ran:
                    print(f"bench: spiking D={d} not run: {summary[f'skipped_{p}']}")
                    continue
                per = f"{ins[p][0] / synops[p]:.2f}" if synops[p] else "-"
                print(f"bench: spiking D={d} ({what}) instructions/inference mean={mean[p]} min={min(ins[p])} "
                      f"max={max(ins[p])} per_synaptic_op={per} (image 0: {ins[p][0]} instructions, "
                      f"{synops[p]} synaptic ops)")
            if args.plan != "all":
                print(f"bench: plan={args.plan}: the passes that run in the fused plan's arena only "
                      f"({', '.join(ran)}); the event path needs the spiking arena "
                      f"({summary['arena_spiking']} bytes) and is not built in")
            print(f"bench: stack_high_water={summary['stack_high_water']} of {summary['stack_size']} bytes; "
                  f"runtime_text={sizes.get('runtime_text', 0)} flash_used={sizes['flash_used']} "
                  f"ram_used={sizes['ram_used']} qemu_wall_s={wall:.2f}")
            if args.ram_report:
                report, summary["ram_report"] = ram_report(args.ram_report, sizes, summary["stack_high_water"])
                for line in report:
                    print(line)
            correct = summary["correct_fused"] if labelled else "unlabelled"
            print(f"demo: board={args.name} images={n} correct={correct} "
                  f"bit_exact={min(exact.values())}/{n} instructions_per_inference={mean['fused']} "
                  f"arena_bytes={summary['arena_fused']} flash_bytes={sizes['flash_used']}")
    summary["errors"] = errors
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    for e in errors:
        print(f"run: FAIL ({args.name}): {e}", file=sys.stderr)
    return 1 if errors else 0


def skip_reason(p: str, results: dict[str, dict[str, str]], model_line: dict[str, str]) -> str | None:
    """Why a fused-plan-only build may skip pass p (the spiking pass has no count path at its delay,
    so it would need the spiking plan's arena), from the firmware's model line; None if it may not."""
    if p != "spiking" or "T" not in model_line or "D" not in model_line:
        return None
    t, image_delay, delay = int(model_line["T"]), int(model_line["D"]), int(results[p]["delay"])
    spiking_arena = results["model"].get("arena_spiking", "?")
    tail = f"the event path, whose arena is the spiking plan's ({spiking_arena} bytes)"
    if t > COUNT_PATH_MAX_T:
        return f"T = {t} > {COUNT_PATH_MAX_T}, so no count path; D = {delay} takes {tail}"
    if image_delay < t:
        return f"the image's default delay {image_delay} < T = {t}, so no count path; D = {delay} takes {tail}"
    if delay < t:
        return f"D = {delay} < T = {t} takes {tail}"
    return None


def ram_report(spec: str, s: dict, stack_hw: int | None) -> tuple[list[str], dict]:
    """The RAM a build needs on PART (spec PART:FLASH:RAM): the static arena, the stack (its measured
    high-water mark, or the reserved size when there was no run) and every other .data/.bss byte
    (with padding), against PART's RAM; and its flash."""
    part, flash, ram = spec.split(":")
    flash, ram = int(flash, 0), int(ram, 0)
    arena, reserved = s["arena_static"], s["stack_reserved"]
    other = s["ram_used"] - arena - reserved
    stack = reserved if stack_hw is None else stack_hw
    total = arena + stack + other
    big = sorted(((size, name) for name, size in s.get("ram_symbols", {}).items() if name != "arena"), reverse=True)
    listed = ", ".join(f"{name} {size:,}" for size, name in big[:4])
    fits = total <= ram
    verdict = f"fits, {ram - total:,} to spare" if fits else f"does NOT fit, {total - ram:,} over"
    stack_note = (f"(of {reserved:,} reserved)" if stack_hw is not None
                  else "(reserved; no run, so no high-water mark)")
    w = 30  # label column

    def row(label: str, value: int, note: str = "") -> str:
        return f"ram: {label:<{w}}{value:>8,}" + (f"  {note}" if note else "")

    lines = [
        f"ram: {part}: RAM {ram:,} bytes, flash {flash:,} bytes",
        row("  static arena", arena),
        row("+ stack high-water" if stack_hw is not None else "+ stack (reserved)", stack,
            f"(of {reserved:,} reserved)" if stack_hw is not None else "(no run, so no high-water mark)"),
        row("+ other .data/.bss", other, f"({listed}{', ...' if len(big) > 4 else ''}; alignment)" if listed
            else "(alignment)"),
        row("= total", total, f"of {ram:,}: {verdict}"),
    ]
    if stack_hw is not None:
        lines.append(row("  as linked (the whole stack)", s["ram_used"],
                         f"of {ram:,}: {'fits' if s['ram_used'] <= ram else 'does NOT fit'}"))
    lines += [
        row("flash", s["flash_used"], f"of {flash:,}: {'fits' if s['flash_used'] <= flash else 'does NOT fit'}"),
        f"ram: part={part} arena={arena} stack={stack} other={other} total={total} ram={ram} "
        f"fits={'yes' if fits else 'no'} linked={s['ram_used']} flash_bytes={s['flash_used']} flash={flash}",
    ]
    return lines, {"part": part, "ram": ram, "flash": flash, "arena": arena, "stack": stack,
                   "stack_measured": stack_hw is not None, "other": other, "total": total, "fits": fits,
                   "linked": s["ram_used"], "flash_used": s["flash_used"]}


def per_op_profile(marks: list[int], op_lines: list[dict[str, str]], ran: tuple[str, ...] = PASSES) -> dict | None:
    """Per-op instruction counts of image 0 from the marks: 3 calibration marks (the cost of
    one observer call = mark 2), then per pass run (ran, in PASSES order) a mark before the run
    and one after each op. An op's count is its mark's delta less the observer call."""
    passes = len(ran)
    ops = len(op_lines) // passes
    if ops == 0 or len(op_lines) != passes * ops or len(marks) != 3 + passes * (1 + ops):
        return None
    observer = marks[2]
    out: dict = {"observer_call_insns": observer}
    for m, mode in enumerate(ran):
        deltas = marks[3 + m * (1 + ops) + 1: 3 + (m + 1) * (1 + ops)]
        rows = []
        for i, (d, kv) in enumerate(zip(deltas, op_lines[m * ops:(m + 1) * ops])):
            rows.append({"op": i, "kind": kv["kind"], "insns": d - observer, "macs": int(kv.get("macs", 0)),
                         "synaptic_ops": int(kv.get("synaptic_ops", 0)), "neurons": int(kv.get("neurons", 0))})
        out[f"per_op_{mode}"] = rows
    return out


def print_profile(profile: dict, ran: tuple[str, ...] = PASSES) -> None:
    print(f"profile: image 0, per op (the observer call, {profile['observer_call_insns']} instructions, subtracted)")

    def per(r):
        return f"{r['insns'] / r['synaptic_ops']:.2f}" if r["synaptic_ops"] else "-"

    for i, f in enumerate(profile["per_op_fused"]):
        per_mac = f"{f['insns'] / f['macs']:.2f}" if f["macs"] else "-"
        line = f"profile: op {f['op']:>2} {f['kind']:<13} fused={f['insns']:>10} per_MAC={per_mac:>6}"
        for mode in ("spiking", "spiking_event", "event"):  # the columns' order
            if mode in ran:
                r = profile[f"per_op_{mode}"][i]
                line += f"   {mode}={r['insns']:>11} per_synop={per(r):>6}"
        print(line)


def cmd_bench(args) -> int:
    runs = []
    for path in args.summaries:
        with open(path) as f:
            runs.append(json.load(f))
    cols = [r.get("name", "?") for r in runs]

    def num(v, fmt="{:,}"):
        return "-" if v is None else fmt.format(v)

    def dash(v):  # a pass that did not run (fused plan only) has None
        return "-" if v is None else str(v)

    rows = [
        ("core", [r.get("cpu", "?").split(" (")[0] for r in runs]),
        ("instructions / inference, fused", [num(r.get("insns_fused_mean")) for r in runs]),
        ("instructions / inference, spiking D=T (count path)", [num(r.get("insns_spiking_mean")) for r in runs]),
        ("instructions / inference, spiking D=T (event path)", [num(r.get("insns_spiking_event_mean")) for r in runs]),
        ("instructions / inference, spiking D<T (event path)", [num(r.get("insns_event_mean")) for r in runs]),
        ("  event-path delay D", [num(r.get("delay_event")) for r in runs]),
        ("instructions / MAC (fused)", [num(r.get("insns_per_mac_mean"), "{:.2f}") for r in runs]),
        ("instructions / synaptic op (D=T, img 0)", [num(r.get("insns_per_synop_image0"), "{:.2f}") for r in runs]),
        ("instructions / synaptic op (D=T event path, img 0)",
         [num(r.get("insns_per_synop_spiking_event_image0"), "{:.2f}") for r in runs]),
        ("instructions / synaptic op (D<T, img 0)", [num(r.get("insns_per_synop_event_image0"), "{:.2f}") for r in runs]),
        ("runtime .text bytes (libcsd.a in this link)", [num(r["sizes"].get("runtime_text")) for r in runs]),
        ("runtime .rodata bytes", [num(r["sizes"].get("runtime_rodata")) for r in runs]),
        ("model image bytes (flash)", [num(r.get("image_bytes")) for r in runs]),
        ("firmware flash bytes (code+model+golden)", [num(r["sizes"].get("flash_used")) for r in runs]),
        ("arena bytes fused / spiking", [f"{r.get('arena_fused', '-')} / {r.get('arena_spiking', '-')}" for r in runs]),
        ("stack high-water bytes", [num(r.get("stack_high_water")) for r in runs]),
        ("images, bit-exact fused / D=T / D<T / D=T event", [
            " / ".join(dash(r.get(k)) for k in ("bit_exact_fused", "bit_exact_spiking", "bit_exact_event",
                                                "bit_exact_spiking_event")) + f" of {dash(r.get('images'))}"
            for r in runs]),
        ("QEMU wall time, s (whole run)", [num(r.get("wall_s"), "{:.2f}") for r in runs]),
    ]
    w0 = max(len(r[0]) for r in rows)
    widths = [max(len(c), *(len(r[1][i]) for r in rows)) for i, c in enumerate(cols)]
    print(f"{'':<{w0}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cols, widths)))
    for label, vals in rows:
        print(f"{label:<{w0}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(vals, widths)))
    macs = next((r.get("macs") for r in runs if r.get("macs")), None)
    if macs:
        print(f"(MACs per fused inference: {macs:,} from csd_model_info.macs; synaptic ops of image 0 from "
              f"csd_session_set_stats; instruction counts: QEMU plugin, mean over the golden images, "
              f"call overhead of the markers subtracted)")
    return 1 if any(r.get("errors") for r in runs) else 0

def op_class(op: dict) -> str:
    """The op's class (as csdpack's OpClass) from a `csdpack inspect --json` op: kind and flags."""
    kind, flags = op["kind"], op["flags"]
    stream = any(f.startswith("stream_") for f in flags)
    if kind == "conv3x3":
        return "conv3x3_pixels" if "pixels" in flags else "conv3x3_stream" if stream else "conv3x3"
    if kind == "linear":
        return "linear_stream" if stream else "linear"
    if kind in ("attn_scores", "attn_values"):
        return "attention"  # the pair runs as one loop at its first record: one class, its units summed
    return kind


def rate_unit(cls: str, path: str) -> str:
    """What a class's instructions are counted per on a path (as csdpack's CortexM4Rates.unit)."""
    if cls == "maxpool":
        return "input element"
    if cls == "stream_neuron":
        return "element"
    if cls == "conv3x3_pixels":
        return "MAC"
    if cls == "classifier" and path == "fused":
        return "input element"
    return "MAC" if path == "fused" else "synaptic op"


def cmd_rates(args) -> int:
    """The per-class instruction rates of one model's per-op profile (image 0): the sum of the class's
    instructions over the sum of its units, per path, as the Markdown table of docs/BENCHMARKS.md."""
    with open(args.summary) as f:
        summary = json.load(f)
    with open(args.inspect) as f:
        ops = json.load(f)["ops"]
    rows = {}
    for path, key in (("fused", "per_op_fused"), ("count", "per_op_spiking"), ("event", "per_op_event")):
        profile = summary[key]
        if len(profile) != len(ops):
            print(f"rates: the profile has {len(profile)} ops, the image {len(ops)}", file=sys.stderr)
            return 1
        for op, row in zip(ops, profile):
            cls = op_class(op)
            unit = rate_unit(cls, path)
            n = {"MAC": row["macs"], "synaptic op": row["synaptic_ops"],
                 "input element": op["in"][0] * op["in"][1] * op["in"][2],
                 "element": op["out"][0] * op["out"][1] * op["out"][2]}[unit]
            acc = rows.setdefault(cls, {}).setdefault(path, [unit, 0, 0])
            acc[1] += row["insns"]
            acc[2] += n
    print(f"| class | fused: per | fused | spiking: per | count path (D = {summary['delay_spiking']}) "
          f"| event path (D = {summary['delay_event']}) |")
    print("|---|---|---|---|---|---|")
    for cls, paths in rows.items():
        cells = {p: f"{paths[p][1] / paths[p][2]:.2f}" if paths[p][2] else "-" for p in paths}
        print(f"| {cls} | {paths['fused'][0]} | {cells['fused']} | {paths['count'][0]} | {cells['count']} | {cells['event']} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "size"):
        p = sub.add_parser(name)
        p.add_argument("--name", required=True)
        p.add_argument("--elf", required=True)
        p.add_argument("--map", required=True)
        p.add_argument("--nm", required=True)
        p.add_argument("--size", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--model-symbol", default="fmnist_tiny", help="the model image's C symbol")
        if name == "run":
            p.add_argument("--plugin", required=True)
            p.add_argument("--plugin-args", default="", help="more plugin arguments, e.g. exact=on")
            p.add_argument("--timeout", type=int, default=120)
            p.add_argument("--quiet", action="store_true", help="do not echo the per-op stats lines")
            p.add_argument("--no-kernel-check", action="store_true",
                           help="the firmware prints no 'result: kernels' line (it runs no kernel-twin check)")
            p.add_argument("--plan", choices=sorted(PLAN_PASSES), default="all",
                           help="the build's plan: all four passes, or fused (FW_FUSED_PLAN_ONLY: fused and "
                                "spiking at D = T on the count path)")
            p.add_argument("qemu", nargs=argparse.REMAINDER)
        else:
            p.add_argument("--fit", action="append", help="PART:FLASH_BYTES:RAM_BYTES")
            p.add_argument("--arena-fused", type=int, default=0)
        p.add_argument("--ram-report", metavar="PART:FLASH:RAM",
                       help="the RAM table (arena + stack + other .data/.bss = total) against PART's RAM")
    p = sub.add_parser("bench")
    p.add_argument("summaries", nargs="+")
    p = sub.add_parser("rates", help="per-class instruction rates from a run's per-op profile (docs/BENCHMARKS.md)")
    p.add_argument("--summary", required=True, help="the run's summary.json")
    p.add_argument("--inspect", required=True, help="`csdpack inspect --json` of the model's image")
    args = ap.parse_args(argv)
    return {"run": cmd_run, "size": cmd_size, "bench": cmd_bench, "rates": cmd_rates}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
