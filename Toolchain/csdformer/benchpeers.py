"""The runtime against peer engines on the same images, timed in one process (make bench-peers).

    python -m csdformer.benchpeers MODEL.csd --export DIR --csdpack PATH [--limit N]
        [--batches 1,8,32,128] [--probe 128] [--repeat 3]

On the first N Fashion-MNIST test images, four engines:

* ours, fused: the Swift runtime's host build (``csdpack verify --mode fused``);
* its peer: ONNX Runtime running the fake-quant model exported with torch.onnx
  (``csdformer.onnxpeer``);
* ours, spiking at D = T (``csdpack verify --mode spiking``);
* its peer: the converted network simulated step by step with SpikingJelly at D = T
  (``csdformer.snnsim``), built from the same packed image.

Each runs at batch 1 on one thread and at its best batch on all cores. The runtime runs one
image per call on each of ``csdpack verify --threads`` threads (1, then the CPU count), and its
time leaves out the process's fixed cost (start, image check, reading the data set):
t(N) - t(1) of runs made the same way, times N / (N - 1).
ONNX Runtime: intra_op_num_threads 1, then the CPU count; the simulator:
torch.set_num_threads(1), then the CPU count. The best batch: every candidate batch (--batches,
at most N) timed once on the first min(N, --probe) images, the fastest then timed on all N.
The Python engines are timed on their inference calls only (model loaded, images in memory,
one untimed warm-up call). Every timed row is the least of --repeat runs (default 3; for ours,
t(N) and t(1) each the least of that many): on a shared or virtual machine one run's time moves by
a third, and the least is the run least disturbed, for every engine alike. The four rows the
ratios use (batch 1, one thread) are measured in rounds, each engine once per round, so that a
machine whose speed drifts during the run weighs on every engine alike; the other rows follow.

Checks on every image, each run (exit status 1 if one fails): ONNX Runtime's predictions equal
the PyTorch fake-quant model's; the simulator's logits equal the runtime's spiking logits
(``csdpack verify --dump``), at D = T and at --check-delay (default 3, below T: the runtime's
per-spike event path; these two runs are timed on all cores only and are not in the ratios).
Prints a table and ends with one line

    bench-peers: images=N fused_vs_onnxruntime=R1 spiking_vs_simulator=R2

each R the peer's seconds divided by ours, at batch 1 on one thread (above 1: ours is faster).
Wall-clock numbers vary with the machine and its load; compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import torch

from . import data as datasets
from . import onnxpeer, reference, snnsim
from .benchhost import time_verify, timed, verify_command
from .export import load_export


@dataclass
class Row:
    engine: str
    threads: int
    batch: str
    seconds: float

    def line(self, n: int) -> str:
        return f"  {self.engine:<46} {self.threads:>7} {self.batch:>6} {self.seconds:9.3f} {n / self.seconds:9.0f}"


class CheckFailed(Exception):
    pass


def swift_seconds(csdpack: str, image: str, n: int, mode: str, delay: int | None, threads: int, repeat: int,
                  dump: str | None = None) -> float:
    """The runtime's seconds for n images on `threads` threads without the process's fixed cost
    (see the module doc), t(N) and t(1) each the least of `repeat` runs."""
    whole = min(time_verify(verify_command(csdpack, image, n, mode, delay, dump, threads)) for _ in range(repeat))
    fixed = min(time_verify(verify_command(csdpack, image, 1, mode, delay, None, threads)) for _ in range(repeat))
    return without_fixed(whole, fixed, n)


def without_fixed(whole: float, fixed: float, n: int) -> float:
    """Seconds for n images from t(N) and t(1): (t(N) - t(1)) N / (N - 1) (t(N) if not above t(1))."""
    return (whole - fixed) * n / (n - 1) if whole > fixed else whole


def least_of(repeat: int, run):
    """run()'s last result and the least of its `repeat` wall-clock times."""
    times = [timed(run) for _ in range(repeat)]
    return times[-1][0], min(seconds for _, seconds in times)


def best_batch(run, images, candidates: list[int], probe: int) -> int:
    """The candidate batch whose run(images[:probe], batch) takes the least time."""
    sample = images[:probe]
    run(sample[:1], 1)  # warm-up
    return min(candidates, key=lambda b: timed(lambda: run(sample, b))[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m csdformer.benchpeers", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image", help="the packed .csd image")
    ap.add_argument("--export", required=True, help="the export it was packed from")
    ap.add_argument("--csdpack", required=True, help="csdpack (the release build)")
    ap.add_argument("--limit", type=int, default=1000, help="the first N test images (N >= 2)")
    ap.add_argument("--batches", default="1,8,32,128", help="candidate batches for the best-batch runs")
    ap.add_argument("--probe", type=int, default=128, help="images each candidate batch is timed on")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timed row; the least time is kept")
    ap.add_argument("--check-delay", type=int, default=3,
                    help="a delay below T also checked (and timed on all cores); -1: none")
    args = ap.parse_args(argv)
    if args.limit < 2:
        ap.error("--limit: need at least 2 images (the runtime's fixed cost is measured on 1)")
    if args.repeat < 1:
        ap.error("--repeat: need at least 1")
    try:
        return run(args)
    except CheckFailed as e:
        print(f"bench-peers: check failed: {e}", file=sys.stderr)
        return 1


def run(args) -> int:
    test = datasets.load("fashion-mnist", "test").subset(args.limit)
    n = len(test)
    pixels = test.images  # uint8 [N, 1, 28, 28]
    cores = os.cpu_count() or 1
    candidates = sorted({b for b in (int(v) for v in args.batches.split(",")) if 1 <= b <= n}) or [1]
    probe = min(n, args.probe)
    image = reference.Image.load(args.image)
    T = image.time_steps
    notes: list[str] = []
    R = args.repeat
    print(f"bench-peers: {n} images (the first of the fashion-mnist test split), each time the least of {R} runs, "
          f"{cores} CPUs")
    print(f"  {'engine':<46} {'threads':>7} {'batch':>6} {'seconds':>9} {'images/s':>9}", flush=True)

    def add(row: Row) -> None:  # each row as soon as it is measured (a run takes minutes)
        print(row.line(n), flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        model = load_export(args.export)
        with torch.no_grad():
            expected = torch.cat([model(datasets.to_model_input(pixels[i:i + 500])) for i in range(0, n, 500)]).numpy()
        path = os.path.join(tmp, "model.onnx")
        onnxpeer.export_onnx(model, path, image.input_shape)
        images = pixels.numpy()
        ort_name = f"ONNX Runtime {metadata.version('onnxruntime')}, fake-quant"
        net = snnsim.SpikingNetwork(image, delay=T)
        sim_name = f"SpikingJelly {metadata.version('spikingjelly')} simulation, D={T}"
        threads_before = torch.get_num_threads()

        # the ratios' rows, batch 1 on one thread: every engine once per round, R rounds, each engine's
        # least kept (interleaved, so that a machine whose speed drifts during the minutes of a run
        # weighs on every engine alike); ours dumps its logits in the first round
        modes = (("fused", None), ("spiking", T))
        ours_name = {"fused": "ours: Swift runtime, fused", "spiking": f"ours: Swift runtime, spiking D={T}"}
        least: dict[str, float] = {}

        def keep(key: str, seconds: float) -> None:
            least[key] = min(seconds, least.get(key, seconds))

        sess = onnxpeer.session(path, 1)
        onnxpeer.run_batches(sess, images[:1], 1)  # warm-ups
        try:
            torch.set_num_threads(1)
            net(pixels[:1])
            for r in range(R):
                for mode, delay in modes:
                    keep(f"{mode} whole", time_verify(verify_command(args.csdpack, args.image, n, mode, delay,
                                                                     tmp if r == 0 else None, 1)))
                    keep(f"{mode} fixed", time_verify(verify_command(args.csdpack, args.image, 1, mode, delay, None, 1)))
                ort_logits, seconds = timed(lambda: onnxpeer.run_batches(sess, images, 1))
                keep("onnxruntime", seconds)
                sim_logits, seconds = timed(lambda: snnsim.run_batches(net, pixels, 1))
                keep("simulator", seconds)
        finally:
            torch.set_num_threads(threads_before)
        ours = {mode: without_fixed(least[f"{mode} whole"], least[f"{mode} fixed"], n) for mode, _ in modes}
        fused_logits = np.fromfile(os.path.join(tmp, "fused.logits.i32"), dtype=np.int32).reshape(n, -1)
        spiking_logits = np.fromfile(os.path.join(tmp, f"spiking_D{T}.logits.i32"), dtype=np.int32).reshape(n, -1)
        ort_one, sim_one = least["onnxruntime"], least["simulator"]
        for mode, _ in modes:
            add(Row(ours_name[mode], 1, "1", ours[mode]))
        add(Row(ort_name, 1, "1", ort_one))
        add(Row(sim_name, 1, "1", sim_one))

        # all cores: ours, then each peer at its best batch, each row the least of R runs
        for mode, delay in modes:
            every = swift_seconds(args.csdpack, args.image, n, mode, delay, cores, R)
            add(Row(ours_name[mode], cores, "1", every))
        ort_runs = [(1, ort_logits)]
        sess = onnxpeer.session(path, cores)
        batch = best_batch(lambda x, b: onnxpeer.run_batches(sess, x, b), images, candidates, probe)
        onnxpeer.run_batches(sess, images[:1], 1)  # warm-up
        logits, seconds = least_of(R, lambda: onnxpeer.run_batches(sess, images, batch))
        ort_runs.append((batch, logits))
        add(Row(ort_name, cores, str(batch), seconds))

        # checks: ONNX Runtime against PyTorch's predictions of the same model
        largest = 0.0
        for b, logits in ort_runs:
            differ = int((logits.argmax(1) != expected.argmax(1)).sum())
            if differ:
                raise CheckFailed(f"ONNX Runtime (batch {b}) predicts otherwise than the PyTorch fake-quant model "
                                  f"on {differ} of {n} images")
            largest = max(largest, float(np.abs(logits - expected).max()))
        notes.append(f"ONNX Runtime's predictions equal the PyTorch fake-quant model's on {n}/{n} images "
                     f"(largest logit difference {largest:.3g}); ours (fused) agree with them on "
                     f"{int((fused_logits.argmax(1) == expected.argmax(1)).sum())}/{n}")

        # the SpikingJelly simulation at D = T, against the runtime's spiking logits
        checked = []

        def check_sim(logits, batch: int) -> None:
            differ = int(np.any(logits.numpy() != spiking_logits, axis=1).sum())
            if differ:
                raise CheckFailed(f"the SpikingJelly simulation (batch {batch}) differs from the runtime's spiking "
                                  f"logits at D={T} on {differ} of {n} images")
            if str(batch) not in checked:
                checked.append(str(batch))

        check_sim(sim_logits, 1)
        try:
            torch.set_num_threads(cores)
            batch = best_batch(lambda x, b: snnsim.run_batches(net, x, b), pixels, candidates, probe)
            net(pixels[:1])  # warm-up
            logits, seconds = least_of(R, lambda: snnsim.run_batches(net, pixels, batch))
            check_sim(logits, batch)
            add(Row(sim_name, cores, str(batch), seconds))
            # below T (the runtime's per-spike event path): all cores, the batch found at D = T
            if 0 <= args.check_delay < T:
                d = args.check_delay
                seconds = swift_seconds(args.csdpack, args.image, n, "spiking", d, cores, R, tmp)
                add(Row(f"ours: Swift runtime, spiking D={d}", cores, "1", seconds))
                expected = np.fromfile(os.path.join(tmp, f"spiking_D{d}.logits.i32"), dtype=np.int32).reshape(n, -1)
                net = snnsim.SpikingNetwork(image, delay=d)
                logits, seconds = least_of(R, lambda: snnsim.run_batches(net, pixels, int(batch)))
                differ = int(np.any(logits.numpy() != expected, axis=1).sum())
                if differ:
                    raise CheckFailed(f"the SpikingJelly simulation differs from the runtime's spiking logits at D={d} "
                                      f"on {differ} of {n} images")
                add(Row(f"SpikingJelly {metadata.version('spikingjelly')} simulation, D={d}", cores, str(batch),
                        seconds))
                checked_delays = f"D={T} (batch {' and '.join(checked)}) and D={d}"
            else:
                checked_delays = f"D={T} (batch {' and '.join(checked)})"
        finally:
            torch.set_num_threads(threads_before)
        notes.append(f"the simulation's logits equal ours (spiking) on {n}/{n} images at {checked_delays}")

    print("  ours: csdpack verify --threads 1 / CPUs, without the process's fixed cost; best batch: fastest of "
          f"{','.join(map(str, candidates))} on {probe} images")
    for note in notes:
        print(f"check: {note}")
    print(f"bench-peers: images={n} fused_vs_onnxruntime={ort_one / ours['fused']:.2f} "
          f"spiking_vs_simulator={sim_one / ours['spiking']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
