"""Quantizers used during quantization-aware training.

Two kinds, both chosen so that the packer (csdpack) can reproduce them with
integers exactly as docs/SEMANTICS.md describes:

* ``QCFS``: the activation quantizer that stands wherever a spiking neuron
  will stand. count = clip(floor(x / s + 1/2), 0, L), value = s * count, with a
  learnable step s = lambda / L. Its backward pass is a straight-through
  estimator written as one autograd.Function (about 3x faster on CPU than a
  chain of elementwise ops).
* ``fake_quant_weight``: symmetric int8 fake quantization of a (BN-folded)
  weight, one scale per output channel (or one per tensor for the classifier
  head): sigma = max|w| / 127, q = round_half_even(w / sigma) in [-127, 127].
"""

from __future__ import annotations

import torch
from torch import nn

INT8_MAX = 127


class _QCFSFunction(torch.autograd.Function):
    """count = clip(floor(x/s + 1/2), 0, L); forward returns s * count.

    Backward (straight-through for the floor):
      d/dx = 1 where the count is not clipped (0 <= x/s + 1/2 < L... with the
             lower edge at x >= 0), else 0.
      d/ds = count - x/s inside the range (the LSQ estimate of the rounding
             error's slope), L above it, 0 below it.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, step: torch.Tensor, levels: int) -> torch.Tensor:
        scaled = x / step
        count = torch.clamp(torch.floor(scaled + 0.5), 0, levels)
        ctx.save_for_backward(scaled, count)
        ctx.levels = levels
        return count * step

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        scaled, count = ctx.saved_tensors
        levels = ctx.levels
        inside = (scaled >= 0) & (scaled + 0.5 < levels)
        above = scaled + 0.5 >= levels
        grad_x = grad_out * inside.to(grad_out.dtype)
        slope = torch.where(inside, count - scaled, torch.zeros_like(scaled))
        slope = torch.where(above, torch.full_like(scaled, float(levels)), slope)
        grad_step = (grad_out * slope).sum().reshape(1)
        return grad_x, grad_step, None


def qcfs_count(x: torch.Tensor, step: torch.Tensor | float, levels: int) -> torch.Tensor:
    """The integer count (as a float tensor) a QCFS quantizer assigns to x."""
    return torch.clamp(torch.floor(x / step + 0.5), 0, levels)


class QCFS(nn.Module):
    """Activation quantizer with a learnable clip value lambda (step = lambda / L).

    ``enabled = False`` makes it a plain ReLU (the float pre-training phase).
    ``histogram``, when set to a zero tensor of L + 1 entries, accumulates how
    often each count 0..L occurs (the report's spike-count histograms); it is
    None during training.
    """

    def __init__(self, levels: int, init_lambda: float = 1.0) -> None:
        super().__init__()
        self.levels = int(levels)
        self.clip = nn.Parameter(torch.tensor([float(init_lambda)]))  # lambda, shape [1]
        self.enabled = True
        self.histogram: torch.Tensor | None = None

    @property
    def step(self) -> torch.Tensor:
        return self.clip / self.levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return torch.relu(x)
        step = self.step.abs().clamp_min(1e-8)
        y = _QCFSFunction.apply(x, step, self.levels)
        if self.histogram is not None:
            counts = qcfs_count(x.detach(), step.detach(), self.levels).to(torch.int64).flatten()
            self.histogram += torch.bincount(counts, minlength=self.levels + 1).to(self.histogram.device)
        return y

    def extra_repr(self) -> str:
        return f"levels={self.levels}, enabled={self.enabled}"


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)  # round half to even, as the packer does

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:
        return grad_out


def weight_scale(w: torch.Tensor, per_channel: bool = True) -> torch.Tensor:
    """sigma: max |w| / 127, per output channel (dim 0) or per tensor; never 0."""
    if per_channel:
        amax = w.detach().abs().reshape(w.shape[0], -1).amax(dim=1)
        amax = amax.reshape([-1] + [1] * (w.dim() - 1))
    else:
        amax = w.detach().abs().amax()
    return torch.where(amax > 0, amax / INT8_MAX, torch.ones_like(amax))


def quantize_weight(w: torch.Tensor, per_channel: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer int8 codes (as int8 tensor) and the scale sigma: w ~= codes * sigma."""
    sigma = weight_scale(w, per_channel)
    codes = torch.clamp(torch.round(w.detach() / sigma), -INT8_MAX, INT8_MAX).to(torch.int8)
    return codes, sigma


def fake_quant_weight(w: torch.Tensor, per_channel: bool = True) -> torch.Tensor:
    """w rounded onto the int8 grid (straight-through gradient)."""
    sigma = weight_scale(w, per_channel)
    return torch.clamp(_RoundSTE.apply(w / sigma), -INT8_MAX, INT8_MAX) * sigma
