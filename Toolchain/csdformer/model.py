"""The conversion-oriented transformer of DESIGN.md section 2.

Pre-activation layout: a QCFS quantizer (a spiking neuron after conversion)
stands before every conv/linear except the encoding conv, BatchNorm follows
every conv/linear, and residual adds happen on the un-quantized stream.

    pixels/255 ─ conv3x3+BN ─┬─ [Q ─ maxpool ─ conv3x3+BN] ... ─ tokens + pos ─▶ X
    X ─ Q ─ {q,k,v}: linear+BN ─ Q ─ per head A = Q_A(ReLU(q k^T / sqrt(d)) / N)
        O = Q_O(A v) ─ concat ─ linear+BN ─ (+X) ─▶ X'
    X' ─ Q ─ linear+BN ─ Q ─ linear+BN ─ (+X') ─▶ X''
    X_final ─ Q ─ mean over tokens ─ linear (+bias) ─▶ logits

Two phases (``set_phase``):
* ``float``: quantizers are ReLU, BatchNorm uses batch statistics.
* ``qat``: quantizers are on, BatchNorm is frozen (running statistics) and
  folded into the preceding weights, and the folded weights are fake-quantized
  to int8 per output channel - exactly what the packer computes. The
  classifier head uses one int8 scale for the whole tensor.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .quant import QCFS, fake_quant_weight

PHASES = ("float", "qat")


@dataclass
class Stage:
    """One tokenizer stage: [Q, max-pool] then conv3x3 (padding 1) + BN.

    pool is 0 (none), 2 (2x2, stride 2) or 3 (3x3, stride 2, padding 1); it acts
    on the stage's input counts, so the first (encoding) stage cannot pool.
    """

    channels: int
    pool: int = 0


@dataclass
class ModelConfig:
    in_channels: int = 1
    image_size: tuple[int, int] = (28, 28)
    num_classes: int = 10
    stages: list[Stage] = field(default_factory=lambda: [Stage(16), Stage(32, 2), Stage(64, 2)])
    heads: int = 4
    depth: int = 2
    mlp_ratio: float = 2.0
    levels: int = 7  # L: the most spikes a neuron emits
    time_steps: int = 7  # T: the length of every spike train (L <= T)
    bn_eps: float = 1e-5

    def __post_init__(self) -> None:
        self.image_size = tuple(int(v) for v in self.image_size)
        self.stages = [s if isinstance(s, Stage) else Stage(**s) for s in self.stages]
        if not self.stages:
            raise ValueError("config: at least one tokenizer stage is needed")
        if self.stages[0].pool != 0:
            raise ValueError("config: stages[0] is the encoding conv on pixels and cannot pool")
        for i, s in enumerate(self.stages):
            if s.pool not in (0, 2, 3):
                raise ValueError(f"config: stages[{i}].pool must be 0, 2 or 3, got {s.pool}")
            if s.channels < 1:
                raise ValueError(f"config: stages[{i}].channels must be >= 1")
        if self.embed_dim % self.heads:
            raise ValueError(f"config: width {self.embed_dim} is not divisible by heads {self.heads}")
        if not 1 <= self.levels <= self.time_steps <= 16:
            raise ValueError(f"config: need 1 <= levels ({self.levels}) <= time_steps ({self.time_steps}) <= 16")
        if self.token_grid[0] < 1 or self.token_grid[1] < 1:
            raise ValueError("config: pooling leaves no tokens")

    @property
    def embed_dim(self) -> int:
        return self.stages[-1].channels

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.heads

    @property
    def hidden_dim(self) -> int:
        return int(round(self.embed_dim * self.mlp_ratio))

    @property
    def token_grid(self) -> tuple[int, int]:
        h, w = self.image_size
        for s in self.stages:
            h, w = pooled_size(h, s.pool), pooled_size(w, s.pool)
        return h, w

    @property
    def tokens(self) -> int:
        h, w = self.token_grid
        return h * w

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_size"] = list(self.image_size)
        return d

    @staticmethod
    def from_dict(d: dict) -> "ModelConfig":
        known = {f for f in ModelConfig.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"config: unknown model keys {sorted(unknown)}")
        return ModelConfig(**d)


def pooled_size(n: int, pool: int) -> int:
    if pool == 0:
        return n
    if pool == 2:
        return n // 2
    return (n + 2 - 3) // 2 + 1  # 3x3, stride 2, padding 1


def max_pool(x: torch.Tensor, pool: int) -> torch.Tensor:
    if pool == 0:
        return x
    if pool == 2:
        return F.max_pool2d(x, 2, 2)
    # Inputs are counts >= 0 and every window holds a real element, so the
    # -inf padding of max_pool2d equals the zero padding the runtime uses.
    return F.max_pool2d(x, 3, 2, padding=1)


def fold_bn(weight: torch.Tensor, bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold BN's running statistics into the weight: y = W' x + b'.

    scale = gamma / sqrt(running_var + eps); W' = W * scale (per output channel);
    b' = beta - running_mean * scale. The packer computes the same.
    """
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded = weight * scale.reshape([-1] + [1] * (weight.dim() - 1))
    bias = bn.bias - bn.running_mean * scale
    return folded, bias


class _FoldableBN(nn.Module):
    """A conv or linear without bias followed by BN; foldable for QAT."""

    def __init__(self, weight_shape: tuple[int, ...], bn: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(weight_shape))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bn = bn
        self.folded = False

    def folded_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fake-quantized folded weight and the float folded bias."""
        w, b = fold_bn(self.weight, self.bn)
        return fake_quant_weight(w, per_channel=True), b


class ConvBN(_FoldableBN):
    """conv3x3, stride 1, zero padding 1, no bias; then BatchNorm2d."""

    def __init__(self, cin: int, cout: int, eps: float) -> None:
        super().__init__((cout, cin, 3, 3), nn.BatchNorm2d(cout, eps=eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.folded:
            w, b = self.folded_weight()
            return F.conv2d(x, w, b, padding=1)
        return self.bn(F.conv2d(x, self.weight, None, padding=1))


class LinearBN(_FoldableBN):
    """Token-wise linear (x: [B, N, Din] -> [B, N, Dout]), no bias; then BN over channels."""

    def __init__(self, din: int, dout: int, eps: float) -> None:
        super().__init__((dout, din), nn.BatchNorm1d(dout, eps=eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.folded:
            w, b = self.folded_weight()
            return F.linear(x, w, b)
        y = F.linear(x, self.weight)
        shape = y.shape
        return self.bn(y.reshape(-1, shape[-1])).reshape(shape)


class TokenizerStage(nn.Module):
    def __init__(self, cin: int, stage: Stage, first: bool, cfg: ModelConfig) -> None:
        super().__init__()
        self.quant = None if first else QCFS(cfg.levels)
        self.pool = stage.pool
        self.conv = ConvBN(cin, stage.channels, cfg.bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quant is not None:
            x = self.quant(x)
        return self.conv(max_pool(x, self.pool))


class Attention(nn.Module):
    """Spike-friendly attention: NReLU instead of softmax, every product of counts."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, eps = cfg.embed_dim, cfg.bn_eps
        self.heads, self.head_dim, self.tokens = cfg.heads, cfg.head_dim, cfg.tokens
        self.quant = QCFS(cfg.levels)
        self.q, self.k, self.v = LinearBN(d, d, eps), LinearBN(d, d, eps), LinearBN(d, d, eps)
        self.q_quant, self.k_quant, self.v_quant = QCFS(cfg.levels), QCFS(cfg.levels), QCFS(cfg.levels)
        self.a_quant = QCFS(cfg.levels)  # A = Q_A(NReLU(q k^T / sqrt(d)))
        self.o_quant = QCFS(cfg.levels)  # O = Q_O(A v)
        self.proj = LinearBN(d, d, eps)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)  # [B, h, N, d]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.quant(x)
        q = self.split(self.q_quant(self.q(u)))
        k = self.split(self.k_quant(self.k(u)))
        v = self.split(self.v_quant(self.v(u)))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        a = self.a_quant(nrelu(scores, self.tokens))
        o = self.o_quant(a @ v)  # [B, h, N, d]
        b, _, n, _ = o.shape
        return self.proj(o.transpose(1, 2).reshape(b, n, -1))


def nrelu(scores: torch.Tensor, tokens: int) -> torch.Tensor:
    """NReLU(x) = ReLU(x) / N: the softmax replacement (N = number of tokens)."""
    return torch.relu(scores) / tokens


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, h, eps = cfg.embed_dim, cfg.hidden_dim, cfg.bn_eps
        self.quant = QCFS(cfg.levels)
        self.fc1 = LinearBN(d, h, eps)
        self.hidden_quant = QCFS(cfg.levels)
        self.fc2 = LinearBN(h, d, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.hidden_quant(self.fc1(self.quant(x))))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class Head(nn.Module):
    """Q, mean over tokens, linear classifier with bias (per-tensor int8 in QAT)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.quant = QCFS(cfg.levels)
        self.weight = nn.Parameter(torch.empty(cfg.num_classes, cfg.embed_dim))
        self.bias = nn.Parameter(torch.zeros(cfg.num_classes))
        nn.init.trunc_normal_(self.weight, std=0.02)
        self.quantize = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.quant(x).mean(dim=1)
        w = fake_quant_weight(self.weight, per_channel=False) if self.quantize else self.weight
        return F.linear(pooled, w, self.bias)


class CSDformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        stages, cin = [], cfg.in_channels
        for i, s in enumerate(cfg.stages):
            stages.append(TokenizerStage(cin, s, i == 0, cfg))
            cin = s.channels
        self.tokenizer = nn.ModuleList(stages)
        self.pos_embed = nn.Parameter(torch.zeros(cfg.tokens, cfg.embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.head = Head(cfg)
        self.phase = "float"
        self.set_phase("float")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: [B, C, H, W] float pixels/255 in [0, 1] (see data.to_model_input)."""
        x = images
        for stage in self.tokenizer:
            x = stage(x)
        x = x.flatten(2).transpose(1, 2) + self.pos_embed  # [B, N, D]: the residual stream
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def quantizers(self) -> list[tuple[str, QCFS]]:
        return [(n, m) for n, m in self.named_modules() if isinstance(m, QCFS)]

    def foldables(self) -> list[tuple[str, _FoldableBN]]:
        return [(n, m) for n, m in self.named_modules() if isinstance(m, _FoldableBN)]

    def set_phase(self, phase: str) -> None:
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}")
        self.phase = phase
        qat = phase == "qat"
        for _, q in self.quantizers():
            q.enabled = qat
        for _, f in self.foldables():
            f.folded = qat
        self.head.quantize = qat
        self.train(self.training)  # re-apply: BN is frozen only in the QAT phase

    def train(self, mode: bool = True) -> "CSDformer":
        super().train(mode)
        if self.phase == "qat":  # BN statistics are frozen while folded
            for _, f in self.foldables():
                f.bn.eval()
        return self


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
