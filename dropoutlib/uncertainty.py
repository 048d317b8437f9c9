"""Dropout at test time: MC dropout for uncertainty, and R-Drop's consistency loss.

- MC dropout (Gal and Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016): keep dropout
  on at test time and average ``n`` stochastic passes. For a classifier (a language model's next
  token) this gives the predictive distribution ``E_t[p_t]`` and two uncertainties:
  the predictive entropy ``H[E_t p_t]`` and the mutual information (BALD)
  ``H[E_t p_t] - E_t H[p_t]``, the part of the uncertainty that comes from the model's weights.
- R-Drop (Liang et al., "R-Drop: Regularized Dropout for Neural Networks", NeurIPS 2021): two passes
  with independent masks, and ``alpha * (KL(P1||P2) + KL(P2||P1)) / 2`` added to the loss.

The pitfall MC dropout code falls into is ``model.train()``: it also switches BatchNorm to batch
statistics (and updates its running averages). :func:`mc_dropout` switches on dropout modules only.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.dropout import _DropoutNd

from dropoutlib._base import DropoutModule
from dropoutlib.layers import ConcreteDropout, Standout

# Modules that sample a mask in training mode without a settable rate: MC dropout switches them
# on too (Concrete dropout was made for MC sampling), though schedulers leave their rates alone.
_LEARNED_RATE_MODULES = (ConcreteDropout, Standout)

__all__ = ["is_dropout_module", "mc_dropout", "MCPrediction", "mc_predict", "r_drop_loss"]


def is_dropout_module(module: nn.Module) -> bool:
    """True for the modules :func:`mc_dropout` switches on.

    These are ``torch.nn``'s dropout modules (``_DropoutNd``: Dropout, Dropout1d/2d/3d,
    AlphaDropout, FeatureAlphaDropout), every dropoutlib :class:`DropoutModule` (Dropout,
    DropConnectLinear, SpatialDropout, LockedDropout, EmbeddingDropout, DropPath, DropHead,
    GaussianDropout, AlphaDropout, LayerDrop, SeededDropout) and the learned-rate modules
    ConcreteDropout and Standout. Not LearnedDropout: in training mode it also records its masks
    for the penalty and statistics, which an evaluation must not overwrite.
    """
    return isinstance(module, (_DropoutNd, DropoutModule, *_LEARNED_RATE_MODULES))


@contextlib.contextmanager
def mc_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Context in which only the dropout modules of ``model`` are in training mode.

    Inside, every module is in eval mode (LayerNorm, BatchNorm with its running statistics,
    anything with a ``training`` switch) except those of :func:`is_dropout_module`, which are
    in training mode and so draw fresh masks. Only each dropout module's own flag is set: the
    blocks that a LayerDrop or an EmbeddingDropout wraps stay in eval mode. On exit, even on an
    exception, every module gets back the mode it had. Yields ``model``.

    Dropout done through a float argument rather than a module (``F.dropout(x, 0.1,
    self.training)``, ``F.scaled_dot_product_attention(dropout_p=...)`` gated on the
    attention block's ``self.training``) stays off: it follows its block's eval mode.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    saved = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        for module, _ in saved:
            if is_dropout_module(module):
                module.training = True  # this module only, not its children
        yield model
    finally:
        for module, training in saved:
            module.training = training


class MCPrediction(NamedTuple):
    """What :func:`mc_predict` returns. For output logits of shape ``(..., V)``:

    - ``probs`` ``(..., V)``: mean of the ``n`` softmax distributions, ``E_t[p_t]``;
    - ``predictive_entropy`` ``(...)``: ``H[E_t p_t]``, total uncertainty (nats);
    - ``expected_entropy`` ``(...)``: ``E_t H[p_t]``, the noise every pass agrees on (aleatoric);
    - ``mutual_information`` ``(...)``: their difference (BALD), disagreement between passes
      (epistemic). It is >= 0 in exact arithmetic; in float32 it can be a rounding error below 0.
    """

    probs: Tensor
    predictive_entropy: Tensor
    expected_entropy: Tensor
    mutual_information: Tensor


@torch.no_grad()
def mc_predict(model: nn.Module, x, n: int, *, seed: int | None = None) -> MCPrediction:
    """``n`` stochastic forward passes of ``model`` on ``x`` with only dropout switched on.

    The passes run under ``torch.no_grad()`` inside :func:`mc_dropout`, so every other module is
    in eval mode and every module's mode is restored afterwards. The model's output is read as
    logits over the last dimension; a model returning a tuple or list (such as
    ``BabyGPT.forward -> (logits, loss)``) gives its first element. Probabilities and entropies
    are computed in float32 (float64 inputs stay float64); the passes are accumulated one by one,
    so memory does not grow with ``n``.

    ``seed``: if given, the passes draw from a forked copy of torch's global RNG seeded with it
    (``torch.random.fork_rng``: the CPU generator, and every CUDA device's when CUDA is in use),
    so the result is reproducible and the caller's RNG state is untouched. Without it the passes
    use (and advance) the global RNG.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int >= 1, got {n!r} of type {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be an int >= 1, got {n}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an int or None, got {seed!r} of type {type(seed).__name__}")

    # A seed runs the passes on a forked copy of the RNG: the CPU's, and every CUDA device's once
    # CUDA is in use (a CUDA model has initialised it); CUDA is never initialised just for this.
    cuda = seed is not None and torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    with torch.random.fork_rng(devices=devices, enabled=seed is not None), mc_dropout(model):
        if seed is not None:
            if cuda:
                torch.manual_seed(int(seed))  # the CPU and every CUDA device
            else:
                torch.default_generator.manual_seed(int(seed))
        sum_probs = None
        sum_entropy = None
        for _ in range(int(n)):
            out = model(x)
            logits = out[0] if isinstance(out, (tuple, list)) else out
            if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.ndim < 1:
                raise TypeError(
                    "model output must be a floating-point tensor of logits (or a tuple whose "
                    f"first element is one), got {type(logits).__name__}"
                )
            if logits.dtype not in (torch.float32, torch.float64):
                logits = logits.float()
            p = F.softmax(logits, dim=-1)
            entropy = torch.special.entr(p).sum(-1)  # -p log p, 0 where p = 0 (masked logits)
            sum_probs = p if sum_probs is None else sum_probs + p
            sum_entropy = entropy if sum_entropy is None else sum_entropy + entropy
    probs = sum_probs / n
    predictive = torch.special.entr(probs).sum(-1)
    expected = sum_entropy / n
    return MCPrediction(probs, predictive, expected, predictive - expected)


def r_drop_loss(logits_a: Tensor, logits_b: Tensor, alpha: float = 1.0, *, reduction: str = "mean"):
    """R-Drop's consistency term (Liang et al., NeurIPS 2021) between two dropout passes.

    ``alpha * (KL(P_a || P_b) + KL(P_b || P_a)) / 2`` with ``P = softmax(logits, dim=-1)``; the
    paper's loss adds it to the two cross-entropies. The KL divergences are summed over the last
    (class / vocabulary) dimension, then ``reduction="mean"`` averages over the other positions
    (tokens, batch), on the same scale as ``F.cross_entropy``'s default mean, while
    ``reduction="sum"`` sums them, as the authors' ``compute_kl_loss`` does, so their ``alpha``
    values assume "sum" (dropreg/R-Drop#24 discusses the mismatch). Both inputs get gradients.
    Computed in float32 (float64 stays float64); returns a 0-d tensor.
    """
    if not isinstance(logits_a, Tensor) or not isinstance(logits_b, Tensor):
        raise TypeError(
            "logits_a and logits_b must be tensors, got "
            f"{type(logits_a).__name__} and {type(logits_b).__name__}"
        )
    if logits_a.shape != logits_b.shape:
        raise ValueError(
            "logits_a and logits_b must have the same shape, got "
            f"{tuple(logits_a.shape)} and {tuple(logits_b.shape)}"
        )
    if logits_a.ndim < 1 or not logits_a.is_floating_point() or not logits_b.is_floating_point():
        raise ValueError(
            "logits_a and logits_b must be floating-point tensors with a class dimension, got "
            f"{logits_a.dtype} and {logits_b.dtype} of shape {tuple(logits_a.shape)}"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise ValueError(f"alpha must be a real number >= 0, got {alpha!r}")
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")

    dtype = torch.promote_types(torch.promote_types(logits_a.dtype, logits_b.dtype), torch.float32)
    log_pa = F.log_softmax(logits_a.to(dtype), dim=-1)
    log_pb = F.log_softmax(logits_b.to(dtype), dim=-1)
    # KL(a||b) + KL(b||a) = sum_v (p_a - p_b) (log p_a - log p_b), one pass over the vocabulary.
    sym_kl = 0.5 * ((log_pa.exp() - log_pb.exp()) * (log_pa - log_pb)).sum(-1)
    total = sym_kl.mean() if reduction == "mean" else sym_kl.sum()
    return float(alpha) * total
