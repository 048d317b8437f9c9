"""Dropout at test time: MC dropout for uncertainty, and R-Drop's consistency loss.

- MC dropout (Gal and Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016): keep dropout
  on at test time and average ``n`` stochastic passes. For a classifier (a language model's next
  token) this gives the predictive distribution ``E_t[p_t]`` and two uncertainties:
  the predictive entropy ``H[E_t p_t]`` and the mutual information (BALD)
  ``H[E_t p_t] - E_t H[p_t]``, the part of the uncertainty that comes from the model's weights.
- R-Drop (Liang et al., "R-Drop: Regularized Dropout for Neural Networks", NeurIPS 2021): two passes
  with independent masks, and ``alpha * (KL(P1||P2) + KL(P2||P1)) / 2`` added to the loss.
- Calibration (Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks", ICML
  2017; Naeini, Cooper, Hauskrecht, AAAI 2015): :func:`calibration` bins predictions by their
  confidence and gives the reliability diagram's data and the expected calibration error
  ``ECE = sum_b (n_b / n) |accuracy_b - confidence_b|``.
- How many passes are enough: :func:`mc_curve` follows the MC estimates as passes accumulate.

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

__all__ = [
    "is_dropout_module",
    "mc_dropout",
    "MCPrediction",
    "mc_predict",
    "MCPoint",
    "mc_curve",
    "Calibration",
    "calibration",
    "r_drop_loss",
]


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


def _check_mc_args(model, n, seed) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int >= 1, got {n!r} of type {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be an int >= 1, got {n}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an int or None, got {seed!r} of type {type(seed).__name__}")


def _mc_passes(model: nn.Module, x, n: int, seed: int | None) -> Iterator[Tensor]:
    """The softmax probabilities of ``n`` stochastic passes, one at a time (see
    :func:`mc_predict` for the modes, the dtype and the seed)."""
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
            yield F.softmax(logits, dim=-1)


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
    _check_mc_args(model, n, seed)
    sum_probs = None
    sum_entropy = None
    for p in _mc_passes(model, x, n, seed):
        entropy = torch.special.entr(p).sum(-1)  # -p log p, 0 where p = 0 (masked logits)
        sum_probs = p if sum_probs is None else sum_probs + p
        sum_entropy = entropy if sum_entropy is None else sum_entropy + entropy
    probs = sum_probs / n
    predictive = torch.special.entr(probs).sum(-1)
    expected = sum_entropy / n
    return MCPrediction(probs, predictive, expected, predictive - expected)


class MCPoint(NamedTuple):
    """The MC estimates after ``n`` passes (:func:`mc_curve`), each averaged over every
    position: ``nll`` (cross-entropy of the averaged prediction against the targets, nats),
    ``accuracy`` (its argmax), ``predictive_entropy``, ``mutual_information`` (nats)."""

    n: int
    nll: float
    accuracy: float
    predictive_entropy: float
    mutual_information: float


@torch.no_grad()
def mc_curve(model: nn.Module, x, targets: Tensor, ns, *, seed: int | None = None):
    """How the MC estimates settle as passes accumulate: one :class:`MCPoint` for each ``n`` in
    ``ns`` (increasing), all from the same ``max(ns)`` passes (the first ``n`` of them), so the
    point at ``n`` equals :func:`mc_predict` with ``n`` passes and the same ``seed``.

    ``targets`` holds the true class of every position (the shape of the logits less the last
    dimension); the NLL and accuracy are those of the averaged distribution ``E_t[p_t]``.
    """
    ns = list(ns)
    if not ns or any(isinstance(k, bool) or not isinstance(k, numbers.Integral) for k in ns):
        raise ValueError(f"ns must be a non-empty sequence of ints, got {ns!r}")
    if ns[0] < 1 or any(b <= a for a, b in zip(ns, ns[1:])):
        raise ValueError(f"ns must be strictly increasing and start at >= 1, got {ns}")
    _check_mc_args(model, ns[-1], seed)
    if not isinstance(targets, Tensor) or targets.is_floating_point():
        raise ValueError("targets must be a tensor of integer class indices")
    points, wanted = [], set(ns)
    sum_probs = sum_entropy = None
    for t, p in enumerate(_mc_passes(model, x, ns[-1], seed), start=1):
        if t == 1 and p.shape[:-1] != targets.shape:
            raise ValueError(
                f"targets must have shape {tuple(p.shape[:-1])} (the logits less the class "
                f"dimension), got {tuple(targets.shape)}"
            )
        entropy = torch.special.entr(p).sum(-1)
        sum_probs = p if sum_probs is None else sum_probs + p
        sum_entropy = entropy if sum_entropy is None else sum_entropy + entropy
        if t in wanted:
            probs = sum_probs / t
            predictive = torch.special.entr(probs).sum(-1)
            picked = probs.gather(-1, targets.to(probs.device).unsqueeze(-1)).squeeze(-1)
            points.append(
                MCPoint(
                    n=t,
                    nll=float(-torch.log(picked.clamp_min(1e-12)).mean()),
                    accuracy=float((probs.argmax(-1) == targets.to(probs.device)).float().mean()),
                    predictive_entropy=float(predictive.mean()),
                    mutual_information=float((predictive - sum_entropy / t).mean()),
                )
            )
    return points


class Calibration(NamedTuple):
    """What :func:`calibration` returns, for ``n_bins`` equal-width confidence bins on [0, 1]:
    ``edges`` (``n_bins + 1``), per bin ``count``, mean ``confidence`` and ``accuracy`` (nan
    where a bin is empty), and ``ece``, the expected calibration error (a fraction in [0, 1])."""

    ece: float
    edges: Tensor
    count: Tensor
    confidence: Tensor
    accuracy: Tensor


def calibration(probs: Tensor, targets: Tensor, n_bins: int = 15) -> Calibration:
    """The reliability diagram's data and the expected calibration error of ``probs``.

    ``probs`` ``(..., V)`` are predicted distributions (rows summing to 1), ``targets`` ``(...)``
    the true classes. Each prediction's confidence is its largest probability and it is correct
    when that class is the target. Predictions are grouped into ``n_bins`` equal-width bins of
    confidence (a confidence of exactly 1 goes to the last bin); then
    ``ECE = sum_b (count_b / n) |accuracy_b - confidence_b|``, 0 for a perfectly calibrated
    model. The default of 15 bins is a common choice, not a rule: with few predictions per
    bin the estimate is noisy, with few bins it is coarse.
    """
    if not isinstance(probs, Tensor) or not probs.is_floating_point() or probs.ndim < 1:
        raise ValueError("probs must be a floating-point tensor (..., V) of probabilities")
    if not isinstance(targets, Tensor) or targets.is_floating_point():
        raise ValueError("targets must be a tensor of integer class indices")
    if probs.shape[:-1] != targets.shape:
        raise ValueError(
            f"targets must have shape {tuple(probs.shape[:-1])} (probs less the class "
            f"dimension), got {tuple(targets.shape)}"
        )
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    if targets.numel() == 0:
        raise ValueError("probs and targets must hold at least one prediction")
    p = probs.detach().double().reshape(-1, probs.shape[-1])
    conf, pred = p.max(-1)
    correct = (pred == targets.reshape(-1).to(pred.device)).double()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    index = torch.clamp((conf.cpu() * n_bins).long(), max=n_bins - 1)  # bin b: [b/n, (b+1)/n)
    count = torch.bincount(index, minlength=n_bins).double()
    sum_conf = torch.bincount(index, weights=conf.cpu(), minlength=n_bins)
    sum_acc = torch.bincount(index, weights=correct.cpu(), minlength=n_bins)
    with torch.no_grad():
        mean_conf = torch.where(count > 0, sum_conf / count.clamp_min(1), float("nan"))
        mean_acc = torch.where(count > 0, sum_acc / count.clamp_min(1), float("nan"))
    ece = float((sum_acc - sum_conf).abs().sum() / count.sum())
    return Calibration(ece, edges, count.long(), mean_conf, mean_acc)


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
