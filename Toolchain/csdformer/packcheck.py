"""An independent check of csdpack's fold and quantization, written from the docs alone.

    python -m csdformer.packcheck EXPORT_DIR IMAGE.csd [--time-steps T] [--levels L] [--delay D]
    python -m csdformer.packcheck --plan Tests/TestPlan/plan.json --csdpack PATH [--work DIR]

The first form recomputes, from the export (docs/MODEL_EXPORT.md) and the conversion rules of
docs/SEMANTICS.md section 4, everything the image holds that follows from the export: the
header's metadata (input shape, classes, tokens, width, T, L, delay, op count, macs,
tensor_bytes), every op record (kind, flags, shift k or a stream writer's stream shift s, pool,
dims, heads, and which earlier op's output each input is, not written over in between by an output
or a kernel scratch; the attention pair's scores hold no buffer, so the scores' output and the values'
input are 0; the v projection is CHANNEL_MAJOR and comes first: v, k, q, the pair) and
every tensor byte for byte (int8 codes, thresholds, biases, int16 stream weights, the stream
biases with the rounding half, the tokenizer's per-token biases with the position embedding, attention
thresholds, the classifier). T, L and D are the options csdpack convert was given (default: the
export's T and L, D = T). The image is parsed and validated with csdformer.reference, which also
checks the arena plan's consistency; the planner's choices, the offsets, each op's band (FORMAT.md
"Bands": in the fused plan a band's producer writes only its band, which ``output_buffer`` sizes) and
the attention units (FORMAT.md "Attention units", written by `csdpack convert --low-ram`: the v, k and q
linears of a unit carry the pair's heads, which is expected here where the image has a unit, and hold one
head or band in the fused plan), are not recomputed here.
One line per op record and tensor, then

    packcheck: N tensors, M bytes, all equal

Exit status 0 when everything is equal, 1 naming every mismatch, 2 for unusable inputs.

The second form does this for every case of the test plan: it makes the case's export (the
committed one, or csdformer.testdata.synthetic_export into the work folder), packs it with
`csdpack convert` and the case's "pack" options, and checks the image; it prints the mismatches
and one summary line per case, and exits 1 if any case fails.

Every rounding goes through a function chosen per site (SITES), so that tests can show that each
site's rounding mode is visible in the bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace

import numpy as np
from safetensors.numpy import load_file

from . import reference as ref

# Where conversion rounds a real number to an integer (SEMANTICS.md section 4).
SITES = (
    "codes",              # int8 weight codes of the conv and linear layers
    "thresholds",         # theta of a conv or linear neuron layer
    "biases",             # beta of a conv or linear neuron layer
    "attention",          # theta of ATTN_SCORES and ATTN_VALUES
    "stream_weights",     # int16 weights of a stream writer
    "stream_biases",      # bias [D] of a stream add
    "token_biases",       # bias [N][D] of the tokenizer (BN bias plus position embedding)
    "reader_thresholds",  # theta of a STREAM_NEURON
    "classifier_codes",   # int8 codes of head.weight
    "classifier_biases",  # the classifier's bias in the logit unit
)

INT32_MAX = 2 ** 31 - 1
INT8_MAX = 127
INT16_MAX = 32767
MAX_SHIFT = 24
THETA_TARGET = 2 ** 11
PIXEL_MAX = 255

KIND_NAMES = {ref.CONV3X3: "conv3x3", ref.LINEAR: "linear", ref.MAXPOOL: "maxpool",
              ref.STREAM_NEURON: "stream_neuron", ref.ATTN_SCORES: "attn_scores",
              ref.ATTN_VALUES: "attn_values", ref.CLASSIFIER: "classifier"}


class Unusable(Exception):
    """The inputs cannot be checked (missing files, not a packable export, invalid image)."""


class Refused(Exception):
    """The docs refuse to pack this export (a threshold below 1, no shift that fits int32, no stream
    shift that keeps the residual stream in int16)."""


@dataclass
class ExpectedOp:
    kind: int
    name: str                       # the export's layer or quantizer name
    in_dims: tuple
    out_dims: tuple
    flags: int = 0
    shift: int = 0
    pool: int = 0
    heads: int = 0
    reads: tuple = ()               # ops whose outputs are this op's input (and input2); () for pixels
    adds_into: int | None = None    # a stream add: the op that set the stream it writes
    tensors: dict = field(default_factory=dict)   # "weights" / "thresholds" / "biases" -> array

    @property
    def label(self) -> str:
        return f"{KIND_NAMES[self.kind]} {self.name}"


@dataclass
class Expected:
    header: dict
    ops: list


@dataclass
class Finding:
    what: str
    ok: bool
    message: str
    tensor_bytes: int = 0           # > 0 for a tensor


# ----------------------------------------------------------------------------------------------
# the export


def load_export(directory: str) -> tuple[dict, dict]:
    """model.json and the float32 tensors of model.safetensors; Unusable if not a packable export."""
    try:
        with open(os.path.join(directory, "model.json")) as f:
            doc = json.load(f)
        tensors = load_file(os.path.join(directory, "model.safetensors"))
    except (OSError, ValueError) as e:
        raise Unusable(f"export {directory}: {e}") from e
    if doc.get("format") != "csdformer-export" or doc.get("version") != 1:
        raise Unusable(f"export {directory}: not a csdformer-export version 1")
    if doc.get("phase") != "qat":
        raise Unusable(f"export {directory}: phase {doc.get('phase')!r}: only a \"qat\" export is packable")
    for name, t in tensors.items():
        if t.dtype != np.float32 or not np.isfinite(t).all():
            raise Unusable(f"export {directory}: tensor {name} is not finite float32")
    return doc, tensors


def tensor(tensors: dict, name: str) -> np.ndarray:
    if name not in tensors:
        raise Unusable(f"tensor {name} is missing from model.safetensors")
    return tensors[name]


# ----------------------------------------------------------------------------------------------
# fold and quantization (SEMANTICS.md section 4)


def quantizer_step(tensors: dict, quant: dict, levels: int) -> float:
    """s = max(|clip| / L, 1e-8) in float32 (the forward pass's step, L the image's levels), widened
    to float64; a clip of 0 is refused."""
    clip = np.abs(tensor(tensors, quant["clip"]).reshape(-1)[0])
    if clip == 0:
        raise Refused(f"tensor {quant['clip']}: clip is 0")
    return float(max(clip / np.float32(levels), np.float32(1e-8)))


def fold_bn(tensors: dict, rec: dict, eps: float, std: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """W' = W * g, b' = beta - mean * g, g = gamma / sqrt(var + eps), all in float32; the encoding
    conv (std given) divides W by std[c] of its input channel c first: W' = (W / std) * g."""
    bn = {k: tensor(tensors, v) for k, v in rec["bn"].items()}
    w = tensor(tensors, rec["weight"])
    g = bn["weight"] / np.sqrt(bn["running_var"] + np.float32(eps))
    if std is not None:
        w = w / std.astype(np.float32).reshape(1, -1, 1, 1)
    return w * g.reshape((-1,) + (1,) * (w.ndim - 1)), bn["bias"] - bn["running_mean"] * g


def int8_codes(w: np.ndarray, per_channel: bool, rnd) -> tuple[np.ndarray, np.ndarray]:
    """Codes round(W' / sigma) in [-127, 127] and sigma = max|W'| / 127 (1 when all zero), in float32;
    sigma is returned widened to float64, per output channel or as a scalar."""
    amax = np.abs(w).reshape(w.shape[0], -1).max(axis=1) if per_channel else np.abs(w).max()
    sigma = np.where(amax > 0, amax / np.float32(INT8_MAX), np.float32(1)).astype(np.float32)
    scale = sigma.reshape((-1,) + (1,) * (w.ndim - 1)) if per_channel else sigma
    codes = np.clip(rnd(w / scale), -INT8_MAX, INT8_MAX).astype(np.int8)
    return codes, sigma.astype(np.float64)


def fan_in_sum(weights: np.ndarray) -> int:
    """max_j sum_i |w_ji| over the output channels j."""
    return int(np.abs(weights.astype(np.int64)).reshape(weights.shape[0], -1).sum(axis=1).max())


def choose_shift(theta_real: np.ndarray, beta_real: np.ndarray, bound: int, levels: int,
                 rnd_theta, rnd_beta, what: str) -> tuple[int, np.ndarray, np.ndarray]:
    """The smallest k with every theta >= 2^11 among those where 2^k B + max|beta| + (L + 1) max theta
    fits int32, else the largest k that fits; theta = round(theta_real 2^k), beta likewise."""
    chosen = None
    for k in range(MAX_SHIFT + 1):
        theta = rnd_theta(theta_real * 2.0 ** k)
        beta = rnd_beta(beta_real * 2.0 ** k)
        need = (2 ** k * bound + int(np.abs(beta).max(initial=0)) + (levels + 1) * int(theta.max()))
        if need > INT32_MAX:
            break
        chosen = (k, theta, beta)
        if theta.min() >= THETA_TARGET:
            break
    if chosen is None:
        raise Refused(f"{what}: does not fit int32 at k = 0")
    k, theta, beta = chosen
    if theta.min() < 1:
        raise Refused(f"{what}: a threshold rounds below 1 at k = {k}")
    return k, theta.astype(np.int32), beta.astype(np.int32)


# ----------------------------------------------------------------------------------------------
# the expected image


class _Builder:
    """Walks the export's graph in execution order and produces the expected op table."""

    def __init__(self, doc: dict, tensors: dict, levels: int, rounding: dict):
        self.doc, self.tensors, self.L = doc, tensors, levels
        self.rnd = {site: rounding.get(site, np.rint) for site in SITES}
        self.eps = float(doc["bn_eps"])
        self.ops: list[ExpectedOp] = []
        self.stream_set: int | None = None      # the op that sets the stream
        self.stream_bound = 0                   # the bound on |X| in the stream's unit from the writers so far
        self.fused_lo = self.fused_hi = 0       # per channel: the sums of the writers' fused intervals so far
        graph = doc["graph"]
        self.tokens = next(layer for layer in graph if layer["kind"] == "tokens")
        self.N, self.D = int(self.tokens["tokens"]), int(self.tokens["width"])
        self.folded = {}    # layer name -> (codes, sigma, b', s_in, input is pixels)
        writers = self._fold_all(graph)
        self.stream_unit = self._stream_unit(writers)   # u_c: the unit of the writers' int16 weights
        # writer name -> (int16 weights, biases round(b'/u) without the rounding half, interval terms); s
        self.writers, self.stream_shift = self._stream_shift(writers)
        self.reader_unit = self.stream_unit * 2.0 ** self.stream_shift   # U_c = 2^s u_c, the stream's unit

    def step(self, quant: dict) -> float:
        return quantizer_step(self.tensors, quant, self.L)

    def pixel_std(self) -> np.ndarray:
        norm = self.doc["input_normalization"]
        if any(m != 0 for m in norm["mean"]):
            raise Refused("input_normalization.mean must be 0 (conv zero padding is pixel 0)")
        return np.asarray(norm["std"], dtype=np.float64)

    def fold(self, rec: dict, s_in: float, pixels: bool) -> None:
        w, b = fold_bn(self.tensors, rec, self.eps, self.pixel_std() if pixels else None)
        codes, sigma = int8_codes(w, True, self.rnd["codes"])
        self.folded[rec["name"]] = (codes, sigma, b.astype(np.float64), s_in, pixels)

    def _fold_all(self, graph: list) -> list[tuple[str, bool]]:
        """Folds every layer; returns the stream writers in execution order as (name, per-token bias):
        the last tokenizer conv (the set, with the position embedding), every proj and fc2 (adds)."""
        writers = []
        for i, layer in enumerate(graph):
            kind = layer["kind"]
            if kind == "conv3x3_bn":
                pixels = layer["input"] == "pixels"
                s_in = float(self.doc["input_normalization"]["scale"]) if pixels else self.step(layer["quant"])
                self.fold(layer, s_in, pixels)
                if graph[i + 1]["kind"] == "tokens":
                    writers.append((layer["name"], True))
            elif kind == "attention":
                for r in ("q", "k", "v"):
                    self.fold(layer[r], self.step(layer["quant"]), False)
                self.fold(layer["proj"], self.step(layer["o_quant"]), False)
                writers.append((layer["proj"]["name"], False))
            elif kind == "mlp":
                self.fold(layer["fc1"], self.step(layer["quant"]), False)
                self.fold(layer["fc2"], self.step(layer["hidden_quant"]), False)
                writers.append((layer["fc2"]["name"], False))
        return writers

    def _stream_unit(self, writers: list) -> np.ndarray:
        """u_c = max over the stream writers of sigma_c s_in 127 / 32767."""
        units = [self.folded[n][1] * self.folded[n][3] * INT8_MAX / INT16_MAX for n, _ in writers]
        return np.max(units, axis=0)

    def _stream_shift(self, writers: list) -> tuple[dict, int]:
        """SEMANTICS.md section 4, step 5. Each writer's int16 weights w16 = round(w8 sigma_c s_in / u_c) and
        biases round(b'_c / u_c) (the tokenizer's round((b'_c + pos[n,c]) / u_c)), to which the image adds
        the rounding half h = 2^(s-1) (s > 0; else 0). The range proof: per writer and channel c, with
        pos_c / neg_c the sums of row c's positive / negative weights, M = L (255 for a writer that reads
        the pixels) and bmin_c / bmax_c the stored biases' extremes, y and every running sum lie in
        [lo, hi] = [M neg_c + bmin_c, M pos_c + bmax_c]; a fused value in F = [lo >> s, hi >> s]; any step
        value in the hull S of F and [neg_c >> s, ceil(pos_c / 2^s)]. s is the smallest in 0..24 with every
        lo, hi within +-(2^31 - 1) and every channel's sum of S over the writers so far, after each
        writer, within +-32767.
        Returns ({writer: (w16, biases without h, per-channel (M neg, M pos, bmin, bmax, neg, pos))}, s)."""
        made = {}
        for name, per_token in writers:
            codes, sigma, b, s_in, pixels = self.folded[name]
            ratio = (sigma * s_in / self.stream_unit).reshape((-1,) + (1,) * (codes.ndim - 1))
            w16 = self.rnd["stream_weights"](codes * ratio)
            if np.abs(w16).max() > INT16_MAX:
                raise Refused(f"{name}: a stream int16 weight is {int(np.abs(w16).max())}, beyond {INT16_MAX}")
            if per_token:
                pos = tensor(self.tensors, self.tokens["pos_embed"]).astype(np.float64)
                bias = self.rnd["token_biases"]((b[None, :] + pos) / self.stream_unit[None, :])
            else:
                bias = self.rnd["stream_biases"](b / self.stream_unit)
            if np.abs(bias).max() > INT32_MAX:
                raise Refused(f"{name}: a stream bias is {int(np.abs(bias).max())}, beyond {INT32_MAX}")
            rows = w16.reshape(w16.shape[0], -1).astype(np.int64)
            wpos, wneg = np.where(rows > 0, rows, 0).sum(axis=1), np.where(rows < 0, rows, 0).sum(axis=1)
            per_channel = bias.reshape(-1, self.D).astype(np.int64)
            m = PIXEL_MAX if pixels else self.L
            made[name] = (w16, bias.astype(np.int64),
                          (m * wneg, m * wpos, per_channel.min(axis=0), per_channel.max(axis=0), wneg, wpos))
        for s in range(MAX_SHIFT + 1):
            lo_sum, hi_sum, fits = np.zeros(self.D, np.int64), np.zeros(self.D, np.int64), True
            for w16, bias, bounds in made.values():
                lo, hi = self._sums(bounds, s)
                if lo.min() < -INT32_MAX or hi.max() > INT32_MAX:
                    fits = False
                    break
                lo_sum += np.minimum(lo >> s, bounds[4] >> s)
                hi_sum += np.maximum(hi >> s, -((-bounds[5]) >> s))
                if lo_sum.min() < -INT16_MAX or hi_sum.max() > INT16_MAX:  # the stream after this writer
                    fits = False
                    break
            if fits:
                return made, s
        raise Refused("no stream shift in 0..24 keeps the residual stream in int16")

    @staticmethod
    def _sums(bounds: tuple, s: int) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi] of a writer's y and running sums per channel at stream shift s (h in the biases)."""
        mneg, mpos, bmin, bmax = bounds[:4]
        half = 1 << (s - 1) if s > 0 else 0
        return mneg + bmin + half, mpos + bmax + half

    def add(self, op: ExpectedOp) -> int:
        self.ops.append(op)
        return len(self.ops) - 1

    def last(self) -> tuple:
        return (len(self.ops) - 1,)

    # -- layers ----------------------------------------------------------------------------

    def conv(self, layer: dict, sink: dict | None) -> None:
        """A tokenizer stage: [MAXPOOL] CONV3X3 into neurons (sink = the next stage's quantizer)
        or, for the last stage (sink None), setting the stream with the per-token bias."""
        c, h, w = layer["in_shape"]
        cout, ph, pw = layer["out_shape"]
        pixels = layer["input"] == "pixels"
        if layer["pool"]:
            self.add(ExpectedOp(ref.MAXPOOL, layer["quant"]["name"], (c, h, w), (c, ph, pw),
                                pool=int(layer["pool"]), reads=self.last()))
        codes, sigma, b, s_in, _ = self.folded[layer["name"]]
        op = ExpectedOp(ref.CONV3X3, layer["name"], (c, ph, pw), (cout, ph, pw),
                        flags=ref.OPF_INPUT_PIXELS if pixels else 0, reads=() if pixels else self.last())
        if sink is None:
            op.flags |= ref.OPF_STREAM_OUT | ref.OPF_STREAM_SET | ref.OPF_TOKEN_BIAS
            self.write_stream(op, layer["name"])
            self.stream_set = self.add(op)
            return
        bound = (PIXEL_MAX if pixels else self.L) * fan_in_sum(codes)
        self.neurons(op, codes, sigma, b, s_in, self.step(sink), bound)
        self.add(op)

    def neurons(self, op: ExpectedOp, codes, sigma, b, s_in: float, s_out: float, bound: int) -> None:
        unit = sigma * s_in
        op.shift, theta, beta = choose_shift(s_out / unit, b / unit, bound, self.L, self.rnd["thresholds"],
                                             self.rnd["biases"], op.label)
        op.tensors = {"weights": codes, "thresholds": theta, "biases": beta}

    def write_stream(self, op: ExpectedOp, name: str) -> None:
        """A stream writer: its shift field is the stream shift s, its biases carry the rounding half,
        and the readers after it bound |X| by the largest |end| over the channels of the sum of the fused
        intervals [lo >> s, hi >> s] of the writers so far."""
        w16, bias, bounds = self.writers[name]
        s = self.stream_shift
        op.shift = s
        lo, hi = self._sums(bounds, s)
        self.fused_lo, self.fused_hi = self.fused_lo + (lo >> s), self.fused_hi + (hi >> s)
        self.stream_bound = int(max(np.abs(self.fused_lo).max(), np.abs(self.fused_hi).max()))
        half = 1 << (s - 1) if s > 0 else 0
        op.tensors = {"weights": w16.astype(np.int16), "biases": (bias + half).astype(np.int32)}

    def linear(self, rec: dict, sink: dict | None, reads: tuple, channel_major: bool = False) -> int:
        codes, sigma, b, s_in, _ = self.folded[rec["name"]]
        op = ExpectedOp(ref.LINEAR, rec["name"], (self.N, codes.shape[1], 1), (self.N, codes.shape[0], 1),
                        flags=ref.OPF_CHANNEL_MAJOR if channel_major else 0, reads=reads)
        if sink is None:
            op.flags = ref.OPF_STREAM_OUT
            op.adds_into = self.stream_set
            self.write_stream(op, rec["name"])
        else:
            self.neurons(op, codes, sigma, b, s_in, self.step(sink), self.L * fan_in_sum(codes))
        return self.add(op)

    def stream_neuron(self, quant: dict) -> int:
        op = ExpectedOp(ref.STREAM_NEURON, quant["name"], (self.N, self.D, 1), (self.N, self.D, 1),
                        reads=(self.stream_set,))
        op.shift, theta, beta = choose_shift(self.step(quant) / self.reader_unit, np.zeros(self.D),
                                             self.stream_bound, self.L, self.rnd["reader_thresholds"],
                                             np.rint, op.label)
        op.tensors = {"thresholds": theta, "biases": beta}
        return self.add(op)

    def attention(self, layer: dict) -> None:
        """FORMAT.md "In place" (format 3): the stream neuron, then the v projection (CHANNEL_MAJOR: the
        pair reads v channel-major), the k and the q projections, the pair, and the stream add."""
        u = self.stream_neuron(layer["quant"])
        v = self.linear(layer["v"], layer["v_quant"], (u,), channel_major=True)
        k = self.linear(layer["k"], layer["k_quant"], (u,))
        q = self.linear(layer["q"], layer["q_quant"], (u,))
        s_q, s_k, s_v, s_a, s_o = (self.step(layer[f"{r}_quant"]) for r in ("q", "k", "v", "a", "o"))
        heads, d, N, L = int(layer["heads"]), int(layer["head_dim"]), self.N, self.L
        scores = ExpectedOp(ref.ATTN_SCORES, layer["a_quant"]["name"], (N, self.D, 1), (heads, N, N),
                            heads=heads, reads=(q, k))
        self.attention_neurons(scores, s_a * np.sqrt(d) * N / (s_q * s_k), heads, d * L * L)
        a = self.add(scores)
        values = ExpectedOp(ref.ATTN_VALUES, layer["o_quant"]["name"], (heads, N, N), (N, self.D, 1),
                            heads=heads, reads=(a, v))
        self.attention_neurons(values, s_o / (s_a * s_v), self.D, N * L * L)
        o = self.add(values)
        self.linear(layer["proj"], None, (o,))

    def attention_neurons(self, op: ExpectedOp, theta_real: float, count: int, bound: int) -> None:
        op.shift, theta, beta = choose_shift(np.full(count, theta_real), np.zeros(count), bound, self.L,
                                             self.rnd["attention"], np.rint, op.label)
        op.tensors = {"thresholds": theta, "biases": beta}

    def mlp(self, layer: dict) -> None:
        u = self.stream_neuron(layer["quant"])
        h = self.linear(layer["fc1"], layer["hidden_quant"], (u,))
        self.linear(layer["fc2"], None, (h,))

    def head(self, layer: dict) -> None:
        u = self.stream_neuron(layer["quant"])
        w = tensor(self.tensors, layer["weight"])
        codes, sigma = int8_codes(w, False, self.rnd["classifier_codes"])
        b = tensor(self.tensors, layer["bias"]).astype(np.float64)
        beta = self.rnd["classifier_biases"](b * self.N / (sigma * self.step(layer["quant"])))
        if np.abs(beta).max() > INT32_MAX:
            raise Refused(f"classifier: a bias is {int(np.abs(beta).max())}, beyond int32")
        self.add(ExpectedOp(ref.CLASSIFIER, layer["name"], (self.N, self.D, 1), (int(layer["classes"]), 1, 1),
                            reads=(u,), tensors={"weights": codes, "biases": beta.astype(np.int32)}))

    def build(self) -> list:
        graph = self.doc["graph"]
        for i, layer in enumerate(graph):
            kind = layer["kind"]
            if kind == "conv3x3_bn":
                nxt = graph[i + 1]
                self.conv(layer, nxt["quant"] if nxt["kind"] == "conv3x3_bn" else None)
            elif kind == "attention":
                self.attention(layer)
            elif kind == "mlp":
                self.mlp(layer)
            elif kind == "head":
                self.head(layer)
        return self.ops


def op_macs(op: ExpectedOp) -> int:
    """FORMAT.md's multiply-accumulates of one fused inference of an op."""
    i, o = op.in_dims, op.out_dims
    if op.kind == ref.CONV3X3:
        return o[0] * i[0] * (3 * o[1] - 2) * (3 * o[2] - 2)
    if op.kind == ref.LINEAR:
        return o[0] * i[1] * o[1]
    if op.kind == ref.ATTN_SCORES:
        return i[0] * i[0] * i[1]
    if op.kind == ref.ATTN_VALUES:
        return o[0] * o[0] * o[1]
    if op.kind == ref.CLASSIFIER:
        return o[0] * i[1]
    return 0


def expected_image(export: tuple[dict, dict], time_steps: int, levels: int, delay: int,
                   rounding: dict | None = None) -> Expected:
    """Everything an image of this export holds that follows from the export (docs only).
    rounding maps a site of SITES to the function that rounds there (default: half to even)."""
    doc, tensors = export
    try:
        builder = _Builder(doc, tensors, levels, rounding or {})
        ops = builder.build()
    except (KeyError, TypeError, IndexError, StopIteration) as e:
        raise Unusable(f"model.json: the graph is not the documented one ({e!r})") from e
    head = doc["graph"][-1]
    header = {
        "input_channels": int(doc["graph"][0]["in_shape"][0]), "input_height": int(doc["graph"][0]["in_shape"][1]),
        "input_width": int(doc["graph"][0]["in_shape"][2]), "classes": int(head["classes"]),
        "tokens": builder.N, "width": builder.D, "time_steps": time_steps, "levels": levels, "delay": delay,
        "op_count": len(ops), "macs": sum(op_macs(op) for op in ops),
        "tensor_bytes": sum(t.nbytes for op in ops for t in op.tensors.values()),
    }
    return Expected(header, ops)


# ----------------------------------------------------------------------------------------------
# comparison


def compare_tensor(what: str, want: np.ndarray, got: np.ndarray | None) -> Finding:
    if got is None:
        return Finding(what, False, f"{what} MISSING: expected {want.dtype} {list(want.shape)}", want.nbytes)
    if got.dtype != want.dtype or got.shape != want.shape:
        return Finding(what, False, f"{what} MISMATCH: expected {want.dtype} {list(want.shape)}, "
                                    f"got {got.dtype} {list(got.shape)}", want.nbytes)
    if np.array_equal(want, got):  # same dtype and shape: equal elements are equal little-endian bytes
        return Finding(what, True, f"{what} OK ({want.nbytes} bytes)", want.nbytes)
    differ = np.flatnonzero(want.reshape(-1) != got.reshape(-1))
    first = int(differ[0])
    at = list(np.unravel_index(first, want.shape))
    return Finding(what, False, f"{what} MISMATCH: {len(differ)} of {want.size} elements differ, first at "
                                f"{[int(i) for i in at]} (index {first}): expected {int(want.reshape(-1)[first])}, "
                                f"got {int(got.reshape(-1)[first])}", want.nbytes)


def compare_record(where: str, want: ExpectedOp, got: ref.Op, image: ref.Image) -> Finding:
    """The record's fields, and its inputs (and a stream add's output) at the arena offsets of the
    ops that produce them, not written over by an op in between (an in-place output replaces its
    input: FORMAT.md "In place"); the attention pair's scores hold no buffer, so the scores' output
    and the values' input are 0 (FORMAT.md "The attention pair")."""
    ops = image.ops

    def output_of(index: int):
        return ops[index].output if index < len(ops) else None

    fields = [("kind", want.kind, got.kind), ("flags", want.flags, got.flags), ("shift", want.shift, got.shift),
              ("pool", want.pool, got.pool), ("in_dims", tuple(want.in_dims), got.in_dims),
              ("out_dims", tuple(want.out_dims), got.out_dims), ("heads", want.heads, got.heads)]

    overwritten = []
    for slot, producer, offsets in zip(("input", "input2"), want.reads, (got.input, got.input2)):
        if want.kind == ref.ATTN_VALUES and slot == "input":
            fields.append((f"input (the scores of op {producer}, in the kernel scratch)", (0, 0), offsets))
            continue
        fields.append((f"{slot} (output of op {producer})", output_of(producer), offsets))
        writer = overwritten_before(image, producer, got.index)
        if writer is not None:
            overwritten.append(f"{slot} (output of op {producer}) is written over by op {writer} before this op "
                               f"reads it")
    if want.kind == ref.ATTN_SCORES:
        fields.append(("output (the scores stay in the kernel scratch)", (0, 0), got.output))
    if want.adds_into is not None:
        fields.append((f"output (the stream of op {want.adds_into})", output_of(want.adds_into), got.output))
    bad = [f"{name}: expected {w}, got {g}" for name, w, g in fields if w != g] + overwritten
    if bad:
        return Finding(f"{where} record", False, f"{where} record MISMATCH: " + "; ".join(bad))
    shift = "s" if want.flags & ref.OPF_STREAM_OUT else "k"  # a stream writer's shift is the stream shift
    return Finding(f"{where} record", True, f"{where} record OK ({shift} = {want.shift})")


def output_buffer(image: ref.Image, op: ref.Op, mode: int) -> tuple[int, int] | None:
    """(offset, bytes) of the arena buffer op writes in mode (the reference's ``output_value``: in the fused
    plan a band's producer writes only its band, FORMAT.md "Bands in the fused plan", and an attention unit's
    u, v, k and q one band or head, "Attention units in the fused plan"); None for the classifier (the
    caller's logits) and ATTN_SCORES (its scores stay in the kernel scratch)."""
    value = image.output_value(op, mode)
    if value is None:
        return None
    return op.output[mode], image.buffer_bytes(*value, mode)


def overwritten_before(image: ref.Image, producer: int, reader: int) -> int | None:
    """The first op between producer and reader whose output or kernel scratch (FORMAT.md "Kernel
    scratch") overlaps the producer's counts in either mode (an in-place output reuses a buffer whose
    value is dead), or None. The stream is left out: the stream adds in between write it on purpose.
    In the fused plan a reader that produces a band reads its input until its consumer, the op after
    it, has run the last band (FORMAT.md "Bands in the fused plan"): that consumer counts as between.
    Likewise a reader in an attention unit reads its input until the unit's last op has run, head by
    head (FORMAT.md "Attention units in the fused plan"): the unit's ops after the reader count as between."""
    ops = image.ops
    if not 0 <= producer < reader <= len(ops):
        return None
    for mode in (ref.FUSED, ref.SPIKING):
        made = output_buffer(image, ops[producer], mode)
        if made is None or ops[producer].stream_out:
            return None
        between = list(range(producer + 1, reader))
        if mode == ref.FUSED and reader + 1 < len(ops) and image.band_producer(ops[reader]):
            between.append(reader + 1)  # the band's consumer: the unit's last band comes after it
        unit = image.unit_start(reader) if reader < len(ops) else None
        if mode == ref.FUSED and unit is not None:
            between += range(reader + 1, unit + 6)  # the attention unit's ops after the reader
        for j in between:
            need = image.op_scratch_bytes(ops[j], mode)
            for other in (output_buffer(image, ops[j], mode), (ops[j].scratch[mode], need) if need else None):
                if other is not None and other[0] < made[0] + made[1] and made[0] < other[0] + other[1]:
                    return j
    return None


def compare(expected: Expected, image: ref.Image) -> list[Finding]:
    """Every header field, op record and tensor of `expected` against the parsed image."""
    header = expected.header
    bad = [f"{k}: expected {v}, got {getattr(image, k)}" for k, v in header.items() if getattr(image, k) != v]
    if bad:
        findings = [Finding("header", False, "header MISMATCH: " + "; ".join(bad))]
    else:
        findings = [Finding("header", True, "header OK (" + ", ".join(f"{k} {v}" for k, v in header.items()) + ")")]
    for i, (want, got) in enumerate(zip(expected.ops, image.ops)):
        where = f"op {i} {want.label}"
        unit = image.unit_start(i)
        if unit is not None and want.kind == ref.LINEAR and unit + 4 < len(expected.ops):
            # the v, k and q linears of an attention unit carry the pair's heads (FORMAT.md "Attention units")
            want = replace(want, heads=expected.ops[unit + 4].heads)
        findings.append(compare_record(where, want, got, image))
        for name in ("weights", "thresholds", "biases"):
            if name in want.tensors:
                findings.append(compare_tensor(f"{where} {name}", want.tensors[name], getattr(got, name)))
            elif getattr(got, name) is not None:
                findings.append(Finding(f"{where} {name}", False, f"{where} {name} MISMATCH: not expected, present"))
    return findings


def check(export_dir: str, image_path: str, time_steps: int | None = None, levels: int | None = None,
          delay: int | None = None, rounding: dict | None = None) -> list[Finding]:
    """Findings for an image against its export (Unusable for unusable inputs). A Refused export
    that nevertheless has an image is one failing finding."""
    export = load_export(export_dir)
    doc = export[0]
    T = int(doc["time_steps"]) if time_steps is None else time_steps
    L = int(doc["levels"]) if levels is None else levels
    D = T if delay is None else delay
    if not (1 <= L <= T <= 16 and 0 <= D <= T):
        raise Unusable(f"T = {T}, L = {L}, D = {D}: need 1 <= L <= T <= 16 and 0 <= D <= T")
    try:
        image = ref.Image.load(image_path)
    except (OSError, ref.ImageError) as e:
        raise Unusable(f"image {image_path}: {e}") from e
    try:
        expected = expected_image(export, T, L, D, rounding)
    except Refused as e:
        return [Finding("conversion", False, f"conversion MISMATCH: the docs refuse this export ({e}), "
                                             f"yet the image exists")]
    return compare(expected, image)


def summary(findings: list[Finding]) -> tuple[bool, str]:
    tensors = [f for f in findings if f.tensor_bytes]
    bad = [f.what for f in findings if not f.ok]
    size = sum(f.tensor_bytes for f in tensors)
    if not bad:
        return True, f"{len(tensors)} tensors, {size} bytes, all equal"
    return False, f"FAILED: {len(bad)} of {len(findings)} checks differ: " + ", ".join(bad)


# ----------------------------------------------------------------------------------------------
# command line


def check_plan(plan_path: str, csdpack: str, work: str) -> int:
    from .testdata import synthetic_export  # imports torch: only the plan needs it
    root = os.path.abspath(os.path.join(os.path.dirname(plan_path), "..", ".."))
    try:
        with open(plan_path) as f:
            cases = json.load(f)["cases"]
    except (OSError, ValueError, KeyError) as e:
        raise Unusable(f"plan {plan_path}: {e}") from e
    failed = []
    for case in cases:
        name = case["name"]
        folder = os.path.join(work, name)
        os.makedirs(folder, exist_ok=True)
        if "export" in case:
            export = os.path.join(root, case["export"])
        else:
            export = os.path.join(folder, "export")
            synthetic_export(case["synthetic"], export)
        image = os.path.join(folder, "model.csd")
        pack = case.get("pack", {})
        cmd = [csdpack, "convert", os.path.join(export, "model.safetensors"), "--config",
               os.path.join(export, "model.json"), "-o", image]
        for key, flag in (("time_steps", "--time-steps"), ("levels", "--levels"), ("delay", "--delay")):
            if key in pack:
                cmd += [flag, str(pack[key])]
        run = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0:
            print(f"packcheck: case {name}: csdpack convert failed: {run.stderr.strip()}")
            failed.append(name)
            continue
        try:
            findings = check(export, image, pack.get("time_steps"), pack.get("levels"), pack.get("delay"))
        except Unusable as e:
            print(f"packcheck: case {name}: unusable: {e}")
            failed.append(name)
            continue
        for f in findings:
            if not f.ok:
                print(f"packcheck: case {name}: {f.message}")
        ok, line = summary(findings)
        print(f"packcheck: case {name}: {line}", flush=True)
        if not ok:
            failed.append(name)
    if failed:
        print(f"packcheck: plan: {len(failed)} of {len(cases)} cases failed: {', '.join(failed)}")
        return 1
    print(f"packcheck: plan: {len(cases)} cases, all equal")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m csdformer.packcheck", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export", nargs="?", help="the export folder (model.safetensors, model.json)")
    ap.add_argument("image", nargs="?", help="the .csd image csdpack convert wrote from it")
    ap.add_argument("--time-steps", type=int, default=None, help="T given to csdpack convert (default: the export's)")
    ap.add_argument("--levels", type=int, default=None, help="L given to csdpack convert (default: the export's)")
    ap.add_argument("--delay", type=int, default=None, help="D given to csdpack convert (default: T)")
    ap.add_argument("--plan", help="check every case of this test plan instead")
    ap.add_argument("--csdpack", help="the csdpack binary (with --plan)")
    ap.add_argument("--work", help="folder for the plan's exports and images (default: a temporary one)")
    args = ap.parse_args(argv)
    try:
        if args.plan:
            if not args.csdpack or args.export or args.image:
                raise Unusable("--plan takes --csdpack PATH (and --work DIR), no EXPORT_DIR or IMAGE")
            if not os.access(args.csdpack, os.X_OK):
                raise Unusable(f"csdpack binary {args.csdpack} is not executable")
            if args.work:
                return check_plan(args.plan, args.csdpack, args.work)
            with tempfile.TemporaryDirectory() as work:
                return check_plan(args.plan, args.csdpack, work)
        if not args.export or not args.image:
            raise Unusable("give EXPORT_DIR and IMAGE.csd, or --plan")
        findings = check(args.export, args.image, args.time_steps, args.levels, args.delay)
    except Unusable as e:
        print(f"packcheck: unusable input: {e}", file=sys.stderr)
        return 2
    for f in findings:
        print(f"packcheck: {f.message}")
    ok, line = summary(findings)
    print(f"packcheck: {line}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
