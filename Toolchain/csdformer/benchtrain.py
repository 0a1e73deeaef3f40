"""Training cost of the two routes on one model, measured side by side (make bench-training).

    python -m csdformer.benchtrain --config Toolchain/configs/fmnist-tiny.json --float-epochs F --qat-epochs Q \\
        --csdpack .build/release/csdpack --out runs/bench-training --json Toolchain/models/fmnist-tiny/training_cost.json

Trains, one after the other on this machine and from the same config with the
same epoch overrides, each in its own process:

* conversion: ``python -m csdformer.train`` (F float epochs, then Q QAT
  epochs), then ``csdpack convert`` of its export and ``csdpack verify --mode
  fused``: its accuracy is the packed integer model's;
* direct: ``python -m csdformer.train_direct`` (F + Q epochs of the spiking
  network, the same learning-rate schedule): its accuracy is the spiking
  network's (T steps) in PyTorch.

For each route: seconds per epoch (training steps only: forward, backward and
update over the epoch's batches, not the test pass after each epoch), total
seconds (the training process's wall clock: start-up, data, every epoch with
its test pass, calibration, export), peak RSS (the training process's
ru_maxrss from wait4, i.e. the largest resident set of it and of any child it
waited for; the packer's runs are not counted) and test accuracy. Prints a
table with the ratios direct / conversion and writes them as JSON. One run on
a shared machine: the times carry its load (the load averages are recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import torch

from .export import METRICS_FILE

DIST_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE", "GROUP_RANK")
ROUTES = (("conversion", "csdformer.train"), ("direct", "csdformer.train_direct"))


def run_measured(cmd: list[str], env: dict) -> tuple[int, float, int]:
    """Run ``cmd`` to its end: (exit status, wall-clock seconds, peak RSS in bytes of it and its waited-for children)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
    seconds = time.perf_counter() - started
    return proc.returncode, seconds, int(usage.ru_maxrss) * 1024  # Linux: kilobytes


def summarize(metrics: dict, seconds: float, peak_rss: int) -> dict:
    """The route's cost from its metrics.json history and the measured process."""
    history = metrics["history"]
    step_seconds = [h["step_seconds"] for h in history]
    eval_seconds = [h["eval_seconds"] for h in history]
    phases: dict[str, list[float]] = {}
    for h in history:
        phases.setdefault(h["phase"], []).append(h["step_seconds"])
    epochs = len(history)
    return {
        "epochs": epochs,
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(sum(step_seconds) / epochs, 2) if epochs else None,
        "peak_rss_bytes": peak_rss,
        "train_step_seconds": round(sum(step_seconds), 2),
        "test_pass_seconds": round(sum(eval_seconds), 2),
        "seconds_per_epoch_by_phase": {p: round(sum(v) / len(v), 2) for p, v in phases.items()},
        "epochs_by_phase": {p: len(v) for p, v in phases.items()},
        "history": [{k: h[k] for k in ("epoch", "phase", "lr", "train_loss", "train_accuracy", "test_accuracy",
                                       "step_seconds", "eval_seconds")} for h in history],
        "train_command": metrics["command"],
    }


def ratio(a, b):
    return round(a / b, 2) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def table(doc: dict) -> str:
    c, d = doc["conversion"], doc["direct"]
    mib = 1024 * 1024

    def pct(v):
        return f"{100 * v:.2f}%" if v is not None else "-"

    rows = [
        ("epochs", f"{c['epochs']} ({c['epochs_by_phase'].get('float', 0)} float + {c['epochs_by_phase'].get('qat', 0)} QAT)",
         f"{d['epochs']}", ratio(d["epochs"], c["epochs"])),
        ("seconds per epoch (training steps)",
         f"{c['seconds_per_epoch']} (float {c['seconds_per_epoch_by_phase'].get('float', '-')}, "
         f"QAT {c['seconds_per_epoch_by_phase'].get('qat', '-')})",
         f"{d['seconds_per_epoch']}", ratio(d["seconds_per_epoch"], c["seconds_per_epoch"])),
        ("total seconds (training process)", f"{c['seconds']}", f"{d['seconds']}", ratio(d["seconds"], c["seconds"])),
        ("peak RSS (MiB)", f"{c['peak_rss_bytes'] / mib:.0f}", f"{d['peak_rss_bytes'] / mib:.0f}",
         ratio(d["peak_rss_bytes"], c["peak_rss_bytes"])),
        ("test accuracy", f"{pct(c['test_accuracy'])} (packed integer model, csdpack verify fused)",
         f"{pct(d['test_accuracy'])} (spiking network, T = {doc['time_steps']})",
         ratio(d["test_accuracy"], c["test_accuracy"])),
    ]
    lines = ["| | conversion | direct | direct / conversion |", "|---|---|---|---|"]
    lines += [f"| {name} | {cv} | {dv} | {r if r is not None else '-'} |" for name, cv, dv, r in rows]
    return "\n".join(lines)


def versions() -> dict:
    out = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        import spikingjelly  # noqa: F401
        from importlib.metadata import version
        out["spikingjelly"] = version("spikingjelly")
    except Exception as e:  # the direct route's child will fail with the real message
        out["spikingjelly"] = f"unavailable ({type(e).__name__})"
    return out


def machine() -> dict:
    info = {"platform": platform.platform(), "cpus": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "torch_threads": torch.get_num_threads()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["memory_bytes"] = int(f.readline().split()[1]) * 1024
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m csdformer.benchtrain", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--float-epochs", type=int, required=True)
    ap.add_argument("--qat-epochs", type=int, required=True)
    ap.add_argument("--csdpack", required=True, help="the csdpack binary (convert, verify)")
    ap.add_argument("--out", required=True, help="work folder: one subfolder per route (started over)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit-train", type=int, default=None, help="smoke tests only: first N training images")
    ap.add_argument("--limit-test", type=int, default=None, help="smoke tests only: first N test images")
    ap.add_argument("--max-steps", type=int, default=None, help="smoke tests only: N steps per epoch")
    ap.add_argument("--make-command", default=None, help="the make command that ran this (recorded)")
    args = ap.parse_args(argv)
    command = "python -m csdformer.benchtrain " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))

    with open(args.config) as f:
        time_steps = json.load(f).get("model", {}).get("time_steps", 7)
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS}
    common = ["--config", args.config, "--float-epochs", str(args.float_epochs), "--qat-epochs", str(args.qat_epochs),
              "--restart", "--no-progress"]
    for flag, value in (("--data-dir", args.data_dir), ("--limit-train", args.limit_train),
                        ("--limit-test", args.limit_test), ("--max-steps", args.max_steps)):
        if value is not None:
            common += [flag, str(value)]

    budget = {"float_epochs": args.float_epochs, "qat_epochs": args.qat_epochs,
              "total_epochs": args.float_epochs + args.qat_epochs,
              "limit_train": args.limit_train, "limit_test": args.limit_test, "max_steps": args.max_steps}
    print(f"bench-training: {args.config}, budget {args.float_epochs} float + {args.qat_epochs} QAT epochs "
          f"(conversion) against {args.float_epochs + args.qat_epochs} epochs (direct), one process each", flush=True)
    doc: dict = {"budget": budget, "config": args.config, "time_steps": time_steps, "command": command,
                 "make_command": args.make_command, "machine": machine(), "versions": versions(),
                 "load_average_before": list(os.getloadavg())}

    for route, module in ROUTES:
        out = os.path.join(args.out, route)
        cmd = [sys.executable, "-m", module, "--out", out, *common]
        print(f"bench-training: [{route}] {' '.join(shlex.quote(a) for a in cmd[1:])}", flush=True)
        status, seconds, rss = run_measured(cmd, env)
        if status != 0:
            print(f"bench-training: the {route} route failed (exit status {status})", file=sys.stderr)
            return 1
        with open(os.path.join(out, METRICS_FILE)) as f:
            metrics = json.load(f)
        entry = summarize(metrics, seconds, rss)
        entry["params"] = metrics["params"]
        entry["test_images"] = metrics["test_images"]
        if route == "conversion":
            image = os.path.join(out, "model.csd")
            subprocess.run([args.csdpack, "convert", os.path.join(out, "model.safetensors"),
                            "--config", os.path.join(out, "model.json"), "-o", image], check=True)
            verify = [args.csdpack, "verify", image, "--mode", "fused", "--json",
                      "--reference", os.path.join(out, "test_pred.npy")]
            if args.data_dir:
                verify += ["--data-dir", args.data_dir]
            if args.limit_test:
                verify += ["--limit", str(args.limit_test)]
            report = json.loads(subprocess.run(verify, check=True, stdout=subprocess.PIPE, text=True).stdout)
            entry["test_accuracy"] = report["accuracy"]
            entry["test_accuracy_of"] = "the packed integer model (csdpack convert, then csdpack verify --mode fused)"
            entry["packed_test_images"] = report["samples"]
            entry["packed_agreement_with_fake_quant"] = report["reference_agreement"]
            entry["fake_quant_test_accuracy"] = metrics["fake_quant_test_accuracy"]
            entry["float_test_accuracy"] = metrics["float_test_accuracy"]
        else:
            entry["test_accuracy"] = metrics["test_accuracy"]
            entry["test_accuracy_of"] = f"the spiking network in PyTorch (T = {metrics['time_steps']}, mean of the logits)"
            entry["neuron"] = metrics["neuron"]
        doc[route] = entry
        print(f"bench-training: [{route}] {entry['epochs']} epochs, {entry['seconds_per_epoch']} s per epoch "
              f"(training steps), {entry['seconds']} s in all, peak RSS {rss / 2**20:.0f} MiB, "
              f"test accuracy {entry['test_accuracy']:.4f}", flush=True)

    doc["load_average_after"] = list(os.getloadavg())
    c, d = doc["conversion"], doc["direct"]
    doc["ratios_direct_over_conversion"] = {
        k: ratio(d[k], c[k]) for k in ("epochs", "seconds_per_epoch", "seconds", "peak_rss_bytes", "test_accuracy")}
    print()
    print(table(doc))
    print()
    print(f"budget: {args.float_epochs} float + {args.qat_epochs} QAT epochs for conversion, "
          f"{args.float_epochs + args.qat_epochs} epochs for direct"
          + ("" if args.limit_train is None and args.max_steps is None else " (smoke-test limits: see budget)"))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, args.json)
        print(f"bench-training: wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
