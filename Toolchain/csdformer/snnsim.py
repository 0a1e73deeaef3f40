"""The converted spiking network as a time-stepped SpikingJelly simulation (a peer of the runtime).

    from csdformer.reference import Image
    from csdformer.snnsim import SpikingNetwork
    net = SpikingNetwork(Image.load("model.csd"), delay=3)   # default: the image's delay
    logits = net(pixels)          # uint8 [B, C, H, W] -> int64 [B, classes]

The network is built from a packed image alone: its integer weights, thresholds, biases, shifts,
T, L and the DIF delay D, read with ``csdformer.reference``'s image loader (which validates the
image; nothing else of the reference is used). It is what a user of SpikingJelly would write to
simulate the converted network step by step, in SpikingJelly's multi-step layout [T, B, ...]:

* synapses: ``layer.Conv2d`` / ``layer.Linear`` (step_mode 'm', no bias) holding the integer
  weights times 2^k (the op's shift, so their output is the current ``acc << k``; a stream
  writer's shift is the stream shift, so its synapse holds the weights as they are);
* neurons: ``DIFNode``, a SpikingJelly ``BaseNode`` subclass: per-neuron integer thresholds,
  initial membrane floor(theta / 2), the bias at step 0, reset by subtraction, at most L spikes,
  and the delay D (it integrates D steps before it may fire; its spike at step tau lands at
  output step tau - D). No built-in neuron has per-neuron thresholds, a spike budget and a
  firing delay (``IFNode`` takes one float threshold), hence the subclass;
* max-pool, attention products and the classifier as ``MemoryModule`` subclasses that step
  t = 0..T-1 with the running counts docs/SEMANTICS.md section 3 defines (SpikingJelly's
  ``layer.MaxPool2d`` pools each step's spikes, an OR, which is not the spec's pool of running
  counts);
* the residual stream as a float tensor [T, B, N, D] of per-step values (int16 in the runtime);
  a stream writer (``StreamSink``, a ``MemoryModule``) adds its running sum, bias included,
  rounded down by the stream shift s, one step at a time: step t gets
  floor(P[t] / 2^s) - floor(P[t-1] / 2^s) (docs/SEMANTICS.md section 3, "Stream sinks").

Every value is an exact integer held in float64 (convolutions and products of integers below
2^53 are exact, and so is a division by 2^s; the packer bounds every membrane and running sum by
2^31 and every stream value by 2^15), so the logits equal the runtime's spiking logits at the same
delay bit for bit (Tests/Python/test_peers.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import base, functional, layer, neuron
from torch import nn

from . import reference as ref

DTYPE = torch.float64


class DIFNode(neuron.BaseNode):
    """Delayed integrate-and-fire neuron of docs/SEMANTICS.md section 2 (one layer of them).

    threshold, bias: integer tensors broadcasting against one step's input ([B, ...] without B).
    Single-step mode: feed T + D steps (zeros after step T - 1); the state counts the steps.
    Multi-step mode: input [T, B, ...] currents, output [T, B, ...] spikes (0/1); the D extra
    steps are run inside.
    """

    def __init__(self, threshold: torch.Tensor, bias: torch.Tensor, levels: int, delay: int,
                 step_mode: str = "m") -> None:
        # v_threshold is the base class's scalar; the per-neuron thresholds live in `threshold`.
        # v_reset=None: reset by subtraction.
        super().__init__(v_threshold=1.0, v_reset=None, detach_reset=True, step_mode=step_mode)
        self.register_buffer("threshold", threshold.to(DTYPE))
        self.register_buffer("bias", bias.to(DTYPE))
        self.levels = int(levels)
        self.delay = int(delay)
        self.register_memory("emitted", 0.0)  # spikes so far (at most L)
        self.register_memory("tau", 0)  # steps so far

    def extra_repr(self) -> str:
        return (f"neurons={tuple(self.threshold.shape)}, levels={self.levels}, delay={self.delay}, "
                f"step_mode={self.step_mode}")

    def materialize_states(self, inputs, states, step_mode):
        x = inputs[0][0] if step_mode == "m" else inputs[0]
        v, emitted, tau = states
        if not isinstance(v, torch.Tensor):  # a fresh neuron: v0 = floor(theta / 2)
            v = torch.floor(self.threshold / 2).expand(x.shape).to(DTYPE).clone()
            emitted = torch.zeros(x.shape, dtype=DTYPE)
            tau = 0
        return v, emitted, tau

    def single_step_functional_forward(self, inputs, states):
        current = inputs[0]
        v, emitted, tau = states
        v = v + (current + self.bias if tau == 0 else current)
        if tau >= self.delay:
            spike = ((v >= self.threshold) & (emitted < self.levels)).to(DTYPE)
            v = v - spike * self.threshold
            emitted = emitted + spike
        else:
            spike = torch.zeros_like(v)
        return (spike,), (v, emitted, tau + 1)

    def multi_step_forward(self, x_seq: torch.Tensor, *args, **kwargs):
        pad = x_seq.new_zeros((self.delay,) + x_seq.shape[1:])
        spikes = super().multi_step_forward(torch.cat([x_seq, pad]), *args, **kwargs)
        return spikes[self.delay:]


class SpikeMaxPool(base.MemoryModule):
    """Max-pool of spike trains: m_t = max_i C_i(t) - max_i C_i(t-1), C the running counts."""

    def __init__(self, pool: int, step_mode: str = "m") -> None:
        super().__init__()
        self.pool = pool
        self.step_mode = step_mode
        self.register_memory("count", 0.0)  # running counts of the inputs
        self.register_memory("pooled", 0.0)  # max-pool of the counts at the previous step

    def single_step_functional_forward(self, inputs, states):
        count, pooled = states
        count = count + inputs[0]
        # counts >= 0 and every window holds a real element: max_pool2d's -inf padding is zero padding
        m = F.max_pool2d(count, 2, 2) if self.pool == 2 else F.max_pool2d(count, 3, 2, padding=1)
        return (m - pooled,), (count, m)


class AttentionScores(base.MemoryModule):
    """Per head: I[t] = (q_t K_t^T + Q_{t-1} k_t^T) << k; inputs q_t, k_t spikes [B, N, D],
    output [B, heads, N, N]. States: Q and K, the running counts."""

    def __init__(self, heads: int, shift: int, step_mode: str = "m") -> None:
        super().__init__()
        self.heads, self.scale = heads, float(1 << shift)
        self.step_mode = step_mode
        self.register_memory("q_count", None)
        self.register_memory("k_count", None)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)  # [B, h, N, d]

    def single_step_functional_forward(self, inputs, states):
        q, k = self.split(inputs[0]), self.split(inputs[1])
        q_before, k_count = (torch.zeros_like(q), torch.zeros_like(k)) if states[0] is None else states
        k_count = k_count + k
        current = q @ k_count.transpose(-2, -1) + q_before @ k.transpose(-2, -1)
        return (current * self.scale,), (q_before + q, k_count)


class AttentionValues(base.MemoryModule):
    """Per channel c of head h: I[t] = (a_t V_t + A_{t-1} v_t) << k; inputs a_t [B, heads, N, N],
    v_t [B, N, D] spikes, output [B, N, D]. States: A and V, the running counts."""

    def __init__(self, heads: int, shift: int, step_mode: str = "m") -> None:
        super().__init__()
        self.heads, self.scale = heads, float(1 << shift)
        self.step_mode = step_mode
        self.register_memory("a_count", None)
        self.register_memory("v_count", None)

    def single_step_functional_forward(self, inputs, states):
        a, v = inputs
        b, n, d = v.shape
        v = v.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)  # [B, h, N, d]
        a_before, v_count = (torch.zeros_like(a), torch.zeros_like(v)) if states[0] is None else states
        v_count = v_count + v
        current = a @ v_count + a_before @ v
        return ((current * self.scale).transpose(1, 2).reshape(b, n, d),), (a_before + a, v_count)


class StreamSink(base.MemoryModule):
    """A stream writer's sink: the current I[t] [B, N, D] of step t (not shifted), the bias at step 0,
    summed into P[t] = bias + sum_{tau <= t} I[tau]; output floor(P[t] / 2^s) - floor(P[t-1] / 2^s),
    the step's value of the stream (floor(P[-1] / 2^s) = 0). The steps sum to floor(P[T-1] / 2^s), the
    fused value. States: P and floor(P / 2^s) of the step before."""

    def __init__(self, bias: torch.Tensor, stream_shift: int, step_mode: str = "m") -> None:
        super().__init__()
        self.step_mode = step_mode
        self.register_buffer("bias", bias.to(DTYPE))
        self.scale = float(1 << stream_shift)
        self.register_memory("total", None)  # P[t - 1], the running sum with the bias
        self.register_memory("level", 0.0)  # floor(P[t - 1] / 2^s)

    def single_step_functional_forward(self, inputs, states):
        total, level = states
        total = (self.bias + inputs[0]) if total is None else total + inputs[0]
        now = torch.floor(total / self.scale)
        return (now - level,), (total, now)


class Classifier(base.MemoryModule):
    """Every input spike (n, c, t) adds w[:, c] to the logits; output: the logits after the
    last step, beta + W (sum over tokens and steps of the spikes)."""

    def __init__(self, weights: torch.Tensor, bias: torch.Tensor, step_mode: str = "m") -> None:
        super().__init__()
        self.step_mode = step_mode
        self.readout = layer.Linear(weights.shape[1], weights.shape[0], bias=False, step_mode="s").to(DTYPE)
        self.readout.weight.data.copy_(weights.to(DTYPE))
        self.register_buffer("bias", bias.to(DTYPE))
        self.register_memory("logits", 0.0)

    def single_step_functional_forward(self, inputs, states):
        logits = states[0]
        if not isinstance(logits, torch.Tensor):
            logits = self.bias.expand(inputs[0].shape[0], -1)
        logits = logits + self.readout(inputs[0].sum(dim=1))
        return (logits,), (logits,)

    def multi_step_forward(self, x_seq: torch.Tensor, *args, **kwargs):
        return super().multi_step_forward(x_seq)[-1]


def _synapse(op: ref.Op) -> nn.Module:
    """The conv or linear of op, weights times 2^k (exact in float64; a stream writer's weights as they
    are, its shift being the stream shift), no bias, multi-step."""
    w = torch.from_numpy(op.weights.astype("float64")) * float(1 << (0 if op.stream_out else op.shift))
    if op.kind == ref.CONV3X3:
        m = layer.Conv2d(w.shape[1], w.shape[0], 3, padding=1, bias=False, step_mode="m")
    else:
        m = layer.Linear(w.shape[1], w.shape[0], bias=False, step_mode="m")
    m = m.to(DTYPE).requires_grad_(False)
    m.weight.data.copy_(w)
    return m


def _channel(x, dims: int) -> torch.Tensor:
    """A per-channel integer vector shaped to broadcast over `dims` trailing axes after it."""
    return torch.from_numpy(x.astype("float64")).reshape((-1,) + (1,) * dims)


class SpikingNetwork(nn.Module):
    """The image's op table as SpikingJelly modules, one entry per op (``self.ops``)."""

    def __init__(self, image: ref.Image, delay: int | None = None) -> None:
        super().__init__()
        self.image = image
        self.time_steps, self.levels = image.time_steps, image.levels
        self.delay = image.delay if delay is None else int(delay)
        if not 0 <= self.delay <= self.time_steps:
            raise ValueError(f"delay {self.delay} outside 0..T = 0..{self.time_steps}")
        self.ops = nn.ModuleList(self._modules_of(op) for op in image.ops)

    def _modules_of(self, op: ref.Op) -> nn.ModuleDict:
        L, D = self.levels, self.delay
        m = nn.ModuleDict()
        if op.kind in (ref.CONV3X3, ref.LINEAR):
            m["synapse"] = _synapse(op)
            if op.stream_out:
                m["sink"] = StreamSink(torch.from_numpy(op.biases.astype("float64")), op.shift)  # [D] or [N, D]
                return m
            dims = 2 if op.kind == ref.CONV3X3 else 0
            m["neuron"] = DIFNode(_channel(op.thresholds, dims), _channel(op.biases, dims), L, D)
        elif op.kind == ref.MAXPOOL:
            m["pool"] = SpikeMaxPool(op.pool)
        elif op.kind == ref.STREAM_NEURON:
            m["neuron"] = DIFNode(_channel(op.thresholds, 0), _channel(op.biases, 0), L, D)
        elif op.kind == ref.ATTN_SCORES:
            m["synapse"] = AttentionScores(op.heads, op.shift)
            m["neuron"] = DIFNode(_channel(op.thresholds, 2), _channel(op.biases, 2), L, D)
        elif op.kind == ref.ATTN_VALUES:
            m["synapse"] = AttentionValues(op.heads, op.shift)
            m["neuron"] = DIFNode(_channel(op.thresholds, 0), _channel(op.biases, 0), L, D)
        elif op.kind == ref.CLASSIFIER:
            m["readout"] = Classifier(torch.from_numpy(op.weights.astype("float64")),
                                      torch.from_numpy(op.biases.astype("float64")))
        return m

    @torch.no_grad()
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: uint8 [B, C, H, W] -> logits int64 [B, classes]."""
        functional.reset_net(self)
        T = self.time_steps
        x = pixels.to(DTYPE)
        # spiking-arena offset -> spikes [T, B, ...] or the stream [T, B, N, D]; token-major even where the
        # arena stores the value channel-major (CHANNEL_MAJOR: the attention's v), as the kernels read it
        buffers = {}
        scores = None  # ATTN_SCORES's spikes: no arena buffer, read by the ATTN_VALUES after it
        for op, m in zip(self.image.ops, self.ops):
            if op.kind == ref.ATTN_VALUES:
                src = scores
            else:
                src = None if op.input_pixels else buffers.get(op.input[ref.SPIKING])
            if op.kind == ref.CONV3X3:
                if op.input_pixels:  # the encoding layer: the whole current at t = 0
                    first = m["synapse"](x[None])
                    current = torch.cat([first, first.new_zeros((T - 1,) + first.shape[1:])])
                else:
                    current = m["synapse"](src)
                if op.stream_out:  # tokens n = y * W + x: [T, B, C, H, W] -> [T, B, N, C]
                    out = self._write_stream(buffers, op, m["sink"](current.flatten(3).transpose(2, 3)))
                else:
                    out = m["neuron"](current)
            elif op.kind == ref.LINEAR:
                current = m["synapse"](src)
                out = self._write_stream(buffers, op, m["sink"](current)) if op.stream_out else m["neuron"](current)
            elif op.kind == ref.MAXPOOL:
                out = m["pool"](src)
            elif op.kind == ref.STREAM_NEURON:
                out = m["neuron"](src * float(1 << op.shift))
            elif op.kind == ref.ATTN_SCORES:
                scores = m["neuron"](m["synapse"](src, buffers[op.input2[ref.SPIKING]]))
                continue
            elif op.kind == ref.ATTN_VALUES:
                out = m["neuron"](m["synapse"](src, buffers[op.input2[ref.SPIKING]]))
            else:  # CLASSIFIER
                return m["readout"](src).to(torch.int64)
            buffers[op.output[ref.SPIKING]] = out
        raise ValueError("the image has no classifier")

    @staticmethod
    def _write_stream(buffers: dict, op: ref.Op, steps: torch.Tensor) -> torch.Tensor:
        """A stream writer's per-step values [T, B, N, D] (its sink's output): set or add."""
        return steps if op.stream_set else buffers[op.output[ref.SPIKING]] + steps


def run_batches(net: SpikingNetwork, images: torch.Tensor, batch: int) -> torch.Tensor:
    """Logits int64 [N, classes] of uint8 images [N, C, H, W], `batch` images per forward pass."""
    return torch.cat([net(images[i:i + batch]) for i in range(0, images.shape[0], batch)])


__all__ = ["DIFNode", "SpikeMaxPool", "AttentionScores", "AttentionValues", "StreamSink", "Classifier",
           "SpikingNetwork", "run_batches"]
