"""The direct-training baseline: CSDformer's architecture as a spiking network trained through time.

The same layers, shapes and BatchNorms as ``model.CSDformer`` (the conv/linear
+ BN modules are the same classes), with a SpikingJelly multi-step LIF neuron
wherever the conversion route has a QCFS quantizer (and so a DIF neuron after
conversion): the tokenizer stages after the first, the stream neuron at the
start of each attention and MLP branch and before the head, q, k and v, the
attention scores, the attention output and the MLP hidden layer.

    pixels/255 ─ conv3x3+BN ─ repeat over T ─┬─ [LIF ─ maxpool ─ conv3x3+BN] ... ─ tokens + pos ─▶ X_t
    X_t ─ LIF ─ {q,k,v}: linear+BN ─ LIF ─ per head, per step: A_t = LIF(g_A q_t k_t^T), O_t = LIF(g_O A_t v_t)
          ─ concat ─ linear+BN ─ (+X_t)
    X_t ─ LIF ─ linear+BN ─ LIF ─ linear+BN ─ (+X_t)
    X_t ─ LIF ─ mean over tokens ─ linear (+bias) ─ mean over T ─▶ logits

* Neurons: ``neuron.LIFNode`` (tau = 2, threshold 1, hard reset to 0,
  ``detach_reset``), step_mode 'm', surrogate ``ATan``
  (alpha = 2) in the backward pass. Every forward pass starts from reset
  neurons.
* Direct encoding: the image enters every one of the T steps unchanged. The
  encoding conv + BN is computed once per image and repeated over T, which
  is the same as repeating the image (and the same BN batch statistics).
* Attention is spike-driven: q, k, v are spikes and the products are products
  of spikes at the same step, with no softmax. The paper's NReLU(x) =
  ReLU(x) / N is the identity up to a scale on a product of spikes (it is
  never negative), so its fixed 1/(sqrt(d) N) becomes a learnable gain (g_A,
  g_O: one scalar per block, initialised to 1, the raw count of coincident
  spikes): at 1/(sqrt(d) N) an LIF neuron of threshold 1 would never fire, and
  at Spikformer's 0.125 neither A nor O fired at all at initialisation on
  Fashion-MNIST (at 1: 0.3-0.4% of A and O; chosen from the firing at
  initialisation, before any training).
* The residual stream is real-valued (the sum of BN outputs), as in the
  conversion model and Spike-driven Transformer's membrane shortcut.
* BatchNorm uses batch statistics over T x batch during training and is not
  folded; weights are float (no int8). The output is the mean over T of the
  classifier's logits.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import functional, neuron, surrogate
from torch import nn

from .model import ConvBN, LinearBN, ModelConfig, Stage, max_pool

TAU = 2.0
V_THRESHOLD = 1.0
V_RESET = 0.0
ATTENTION_GAIN_INIT = 1.0


def lif() -> neuron.LIFNode:
    """The spiking neuron of the direct route (multi-step: input and output [T, ...])."""
    return neuron.LIFNode(tau=TAU, decay_input=True, v_threshold=V_THRESHOLD, v_reset=V_RESET,
                          surrogate_function=surrogate.ATan(), detach_reset=True, step_mode="m")


def per_step(f, x: torch.Tensor) -> torch.Tensor:
    """Apply an image-wise module to every step of [T, B, ...] (T x B images in one call)."""
    t, b = x.shape[:2]
    y = f(x.flatten(0, 1))
    return y.reshape(t, b, *y.shape[1:])


class SpikingStage(nn.Module):
    """A tokenizer stage after the first: LIF, max-pool, conv3x3 + BN, on [T, B, C, H, W]."""

    def __init__(self, cin: int, stage: Stage, cfg: ModelConfig) -> None:
        super().__init__()
        self.neuron = lif()
        self.pool = stage.pool
        self.conv = ConvBN(cin, stage.channels, cfg.bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes = self.neuron(x)
        return per_step(lambda z: self.conv(max_pool(z, self.pool)), spikes)


class EncodingStage(nn.Module):
    """The first stage: conv3x3 + BN on pixels (no neuron before it), the same at every step."""

    def __init__(self, cin: int, stage: Stage, cfg: ModelConfig) -> None:
        super().__init__()
        self.conv = ConvBN(cin, stage.channels, cfg.bn_eps)

    def forward(self, images: torch.Tensor, time_steps: int) -> torch.Tensor:
        y = self.conv(images)
        return y.unsqueeze(0).expand(time_steps, *y.shape)


class SpikingAttention(nn.Module):
    """Spike-driven attention on [T, B, N, D]: no softmax, products of spikes at the same step."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, eps = cfg.embed_dim, cfg.bn_eps
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        self.neuron = lif()
        self.q, self.k, self.v = LinearBN(d, d, eps), LinearBN(d, d, eps), LinearBN(d, d, eps)
        self.q_neuron, self.k_neuron, self.v_neuron = lif(), lif(), lif()
        self.a_gain = nn.Parameter(torch.tensor(ATTENTION_GAIN_INIT))
        self.a_neuron = lif()  # A_t = LIF(g_A q_t k_t^T)
        self.o_gain = nn.Parameter(torch.tensor(ATTENTION_GAIN_INIT))
        self.o_neuron = lif()  # O_t = LIF(g_O A_t v_t)
        self.proj = LinearBN(d, d, eps)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        t, b, n, _ = x.shape
        return x.reshape(t, b, n, self.heads, self.head_dim).transpose(2, 3)  # [T, B, h, N, d]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.neuron(x)
        q = self.split(self.q_neuron(self.q(u)))
        k = self.split(self.k_neuron(self.k(u)))
        v = self.split(self.v_neuron(self.v(u)))
        a = self.a_neuron(self.a_gain * (q @ k.transpose(-2, -1)))  # [T, B, h, N, N] spikes
        o = self.o_neuron(self.o_gain * (a @ v))  # [T, B, h, N, d] spikes
        t, b, _, n, _ = o.shape
        return self.proj(o.transpose(2, 3).reshape(t, b, n, -1))


class SpikingMLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, h, eps = cfg.embed_dim, cfg.hidden_dim, cfg.bn_eps
        self.neuron = lif()
        self.fc1 = LinearBN(d, h, eps)
        self.hidden_neuron = lif()
        self.fc2 = LinearBN(h, d, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.hidden_neuron(self.fc1(self.neuron(x))))


class SpikingBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn = SpikingAttention(cfg)
        self.mlp = SpikingMLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class SpikingHead(nn.Module):
    """LIF, mean over tokens, linear classifier with bias: logits per step [T, B, classes]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.neuron = lif()
        self.weight = nn.Parameter(torch.empty(cfg.num_classes, cfg.embed_dim))
        self.bias = nn.Parameter(torch.zeros(cfg.num_classes))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(self.neuron(x).mean(dim=2), self.weight, self.bias)


class DirectCSDformer(nn.Module):
    """The spiking twin of ``model.CSDformer``, trained directly with surrogate gradients over T steps."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.time_steps = cfg.time_steps
        stages, cin = [], cfg.in_channels
        for i, s in enumerate(cfg.stages):
            stages.append(EncodingStage(cin, s, cfg) if i == 0 else SpikingStage(cin, s, cfg))
            cin = s.channels
        self.tokenizer = nn.ModuleList(stages)
        self.pos_embed = nn.Parameter(torch.zeros(cfg.tokens, cfg.embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(SpikingBlock(cfg) for _ in range(cfg.depth))
        self.head = SpikingHead(cfg)

    def forward_steps(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, C, H, W] (pixels/255) -> logits at every step [T, B, classes]."""
        functional.reset_net(self)
        x = self.tokenizer[0](images, self.time_steps)  # [T, B, C, H, W]
        for stage in self.tokenizer[1:]:
            x = stage(x)
        x = x.flatten(3).transpose(2, 3) + self.pos_embed  # [T, B, N, D]: the residual stream
        for block in self.blocks:
            x = block(x)
        logits = self.head(x)
        functional.reset_net(self)  # drop the last membrane potentials (and the graph they hold)
        return logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, C, H, W] -> logits [B, classes]: the mean over T of the per-step logits."""
        return self.forward_steps(images).mean(dim=0)

    def neurons(self) -> list[tuple[str, neuron.LIFNode]]:
        return [(n, m) for n, m in self.named_modules() if isinstance(m, neuron.LIFNode)]


# The conversion model's quantizer for each neuron: the same place in the graph.
def conversion_name(neuron_name: str) -> str:
    """``blocks.0.attn.q_neuron`` -> ``blocks.0.attn.q_quant``; ``head.neuron`` -> ``head.quant``."""
    stem, _, leaf = neuron_name.rpartition(".")
    leaf = "quant" if leaf == "neuron" else leaf.replace("_neuron", "_quant")
    return f"{stem}.{leaf}" if stem else leaf
