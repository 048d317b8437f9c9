"""LearnedDropout: a dropout mask that a small attention layer computes from the input itself.

Yifei Yan, "Learned Dropout" (2024), code and README in ``yiphei/yif-AI``, folder
``learned_dropout/`` (citation key ``yan2024learned-dropout``). Ordinary dropout draws its mask
from a fixed Bernoulli(1 - p), the same for every input, and is switched off at inference.
LearnedDropout instead *computes* the mask from the tokens, in training and at inference:

    a = CausalMultiHeadAttention(x)          (fused Q/K/V, no output projection, no residual)
    M = 0.5 * cos(a + B) + 0.5               (B: learnable per-channel shift, M in [0, 1])
    out = x * round(M)                       (round: Bernoulli(M) in training, M >= 0.5 in eval)

The Bernoulli rounding keeps the mask binary, so the module can only *select* channels, never
rescale them; a straight-through estimator (forward value = the 0/1 sample, gradient = the
gradient with respect to M) lets the loss train the attention and B. An L1-style penalty on the
unrounded M, ``penalty_loss``, pushes towards more zeros (more dropout).

How the published code differs from its README (details in the course's reference notes); this
module follows the code:

* the mask attention is causal and scaled by 1/sqrt(head_size) (the README writes an unscaled,
  unmasked softmax(Q K^T) V);
* B is a learnable vector with one entry per channel, only *initialised* in [0, pi] and free
  afterwards (the README: "a shift bias term" B in [0, pi]); the reference optimiser does not
  decay it;
* the penalty is a mean over elements (not an L1 sum), averaged over the LearnedDropout modules
  of the model and multiplied by a coefficient, 0.1 in every published run;
* the output is ``x * mask`` with no 1 / (1 - p) rescaling, in training and in eval;
* the code has options the README leaves out: the ``"sigmoid"`` and ``"sigmoid_detach"``
  roundings and no rounding at all, a linear penalty, an exponential coefficient schedule, and
  a detached mask input;
* the code casts to float16 so that ``M + (sample - M)`` lands on exactly 0 or 1; here the
  straight-through form ``sample + (M - M.detach())`` is exact in any dtype instead.

The penalty and the statistics read what each module kept from its last *training* forward
(the published code updates them only in training too), so calling them after an evaluation
pass still describes the training masks, which is what seed 002's table reports.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

ROUNDINGS = ("noise_linear", "sigmoid", "sigmoid_detach", None)
INPUTS = ("hidden", "embed")
PENALTIES = ("squared", "linear")
SCHEDULE_KEYS = ("min", "max", "rate")

# An unrounded mask value counts as "near 0" below NEAR_ZERO and "near 1" above NEAR_ONE
# (the thresholds of the published statistics dropout_near_zero/one_percent).
NEAR_ZERO = 0.1
NEAR_ONE = 0.9


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_real(value, name: str, low: float, high: float, range_text: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{name} must be a real number in {range_text}, got {value!r} "
            f"of type {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value) or value < low or value > high:
        raise ValueError(f"{name} must be in {range_text}, got {value!r}")
    return value


def _check_kind(kind) -> str:
    if kind not in PENALTIES:
        raise ValueError(f"kind must be one of {PENALTIES}, got {kind!r}")
    return kind


class LearnedDropout(nn.Module):
    """Input-dependent binary dropout mask from causal attention and a cosine (seed 002).

    Args:
        n_embd: channels C of the input (B, T, C).
        n_head: heads of the mask attention; ``n_embd`` must be divisible by it.
        shift_init: initial value of every entry of the shift B, in [0, pi]. At initialisation
            the attention output is close to 0, so M is close to 0.5 cos(B) + 0.5: about 1
            (keep everything) for 0, 0.5 for pi / 2, 0 (drop everything) for pi.
        rounding: how M becomes the mask, the same rule as the published code:
            ``"noise_linear"`` (default): training, a Bernoulli(M) sample; eval, ``M >= 0.5``;
            both exactly 0.0 / 1.0, with the gradient passed straight through to M.
            ``"sigmoid"``: ``sigmoid(60 (M - 0.5))`` in training and eval, fully differentiable.
            ``"sigmoid_detach"``: forward value ``sigmoid(60 (M - 0.5))``, gradient straight
            through to M (identity), in training and eval.
            ``None``: the continuous M itself.
        input: ``"hidden"`` (default): the mask attention reads ``x``, the tensor being masked;
            ``"embed"``: it reads the ``embed`` argument of ``forward`` (the token + position
            embedding), and the mask still multiplies ``x``.
        detach_input: detach the attention's input, so the mask's gradient does not flow back
            into whatever produced it.

    The Q/K/V weights start from normal(0, 0.02), the published initialisation. No rescaling by
    1 / (1 - p): the output is ``x * mask``. After each training forward the module keeps
    ``last_m`` (the unrounded M, attached to the graph, used by :meth:`penalty`) and
    ``last_mask`` (the rounded mask, detached, used by :func:`mask_stats`); eval forwards leave
    them alone; ``pending`` is True from a training forward until a backward pass goes through
    ``last_m`` (which frees its graph). ``generator`` (attribute, or the keyword of
    ``forward``) seeds the Bernoulli sampling.
    """

    sigmoid_scale: float = 60.0  # the published default for both sigmoid roundings

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        shift_init: float = 0.0,
        rounding: str | None = "noise_linear",
        input: str = "hidden",  # the name is part of the spec (shadows the builtin here only)
        detach_input: bool = False,
    ):
        super().__init__()
        n_embd = _check_positive_int(n_embd, "n_embd")
        n_head = _check_positive_int(n_head, "n_head")
        if n_embd % n_head != 0:
            raise ValueError(
                f"n_embd must be divisible by n_head, got n_embd={n_embd} and n_head={n_head}"
            )
        shift_init = _check_real(shift_init, "shift_init", 0.0, math.pi, "[0, pi]")
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
        if input not in INPUTS:
            raise ValueError(f"input must be one of {INPUTS}, got {input!r}")
        if not isinstance(detach_input, bool):
            raise ValueError(f"detach_input must be a bool, got {detach_input!r}")

        self.n_embd = n_embd
        self.n_head = n_head
        self.head_size = n_embd // n_head
        self.shift_init = shift_init
        self.rounding = rounding
        self.input = input
        self.detach_input = detach_input

        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.shift = nn.Parameter(torch.full((n_embd,), shift_init))
        nn.init.normal_(self.qkv.weight, mean=0.0, std=0.02)

        self.generator: torch.Generator | None = None
        self.last_m: torch.Tensor | None = None
        self.last_mask: torch.Tensor | None = None
        self.pending = False

    def mask_probs(self, x: torch.Tensor, embed: torch.Tensor | None = None) -> torch.Tensor:
        """The unrounded mask M = 0.5 cos(attn + B) + 0.5, shape (B, T, C); keeps no state."""
        self._check_shape(x, "x")
        if self.input == "embed":
            if embed is None:
                raise ValueError('input="embed" needs the embed argument of forward(x, embed)')
            self._check_shape(embed, "embed")
            if embed.shape != x.shape:
                raise ValueError(
                    f"embed must have the shape of x, got {tuple(embed.shape)} and {tuple(x.shape)}"
                )
            source = embed
        else:
            source = x
        if self.detach_input:
            source = source.detach()

        b, t, c = source.shape
        q, k, v = self.qkv(source).split(self.n_embd, dim=2)
        q, k, v = (z.view(b, t, self.n_head, self.head_size).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # scale 1/sqrt(head_size)
        a = a.transpose(1, 2).reshape(b, t, c)
        return 0.5 * torch.cos(a + self.shift) + 0.5

    def round_mask(self, m: torch.Tensor, generator: torch.Generator | None = None):
        """Apply the rounding rule to M (training or eval rule, from ``self.training``)."""
        if self.rounding is None:
            return m
        if self.rounding == "sigmoid":
            return torch.sigmoid(self.sigmoid_scale * (m - 0.5))
        # Straight-through: the forward value is `hard` exactly (m - m.detach() is exactly 0),
        # the gradient with respect to m is the identity.
        m_const = m.detach()
        if self.rounding == "sigmoid_detach":
            hard = torch.sigmoid(self.sigmoid_scale * (m_const - 0.5))
        elif self.training:
            gen = generator if generator is not None else self.generator
            hard = torch.bernoulli(m_const, generator=gen)
        else:
            hard = (m_const >= 0.5).to(m.dtype)
        return hard + (m - m_const)

    def forward(
        self,
        x: torch.Tensor,
        embed: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        m = self.mask_probs(x, embed)
        mask = self.round_mask(m, generator)
        if self.training:
            self.last_m = m
            self.last_mask = mask.detach()
            self.pending = m.requires_grad
            if m.requires_grad:  # a backward pass through M frees its graph: not pending then
                m.register_hook(self._backward_done)
        return x * mask

    def _backward_done(self, grad: torch.Tensor) -> None:
        self.pending = False

    def penalty(self, kind: str = "squared") -> torch.Tensor:
        """Penalty on the last training M: ``"squared"`` mean(M^2 / 2), ``"linear"`` mean(|M|)."""
        kind = _check_kind(kind)
        if self.last_m is None:
            raise RuntimeError("LearnedDropout.penalty needs a forward pass in training mode first")
        m = self.last_m
        return (m.square() / 2).mean() if kind == "squared" else m.abs().mean()

    def _check_shape(self, t: torch.Tensor, name: str) -> None:
        if t.dim() != 3 or t.shape[-1] != self.n_embd:
            raise ValueError(
                f"{name} must have shape (batch, time, {self.n_embd}), got {tuple(t.shape)}"
            )

    def __getstate__(self):
        # last_m may be attached to an autograd graph, which deepcopy and pickle refuse; the copy
        # keeps its value, detached, and has nothing left to penalise.
        state = dict(super().__getstate__())
        state["last_m"] = None if self.last_m is None else self.last_m.detach()
        state["pending"] = False
        return state

    def extra_repr(self) -> str:
        return (
            f"n_embd={self.n_embd}, n_head={self.n_head}, shift_init={self.shift_init:.4g}, "
            f"rounding={self.rounding!r}, input={self.input!r}, detach_input={self.detach_input}"
        )


def learned_dropout_modules(model: nn.Module) -> list[LearnedDropout]:
    """The model's LearnedDropout modules in ``model.modules()`` order (layer0, layer1, ...)."""
    return [m for m in model.modules() if isinstance(m, LearnedDropout)]


def has_learned_dropout(model: nn.Module) -> bool:
    """True when the model contains at least one LearnedDropout."""
    return any(isinstance(m, LearnedDropout) for m in model.modules())


def penalty_coefficient(step: int, coeff: float = 0.1, schedule: dict | None = None) -> float:
    """The penalty coefficient at training step ``step``.

    Without a schedule: the constant ``coeff`` (0.1 in every published run). With
    ``schedule={"rate": r, "min": lo, "max": hi}`` the published exponential ramp
    ``min(exp(r * step) - 1 + lo, hi)``: it starts at ``lo`` and grows to ``hi``. ``"rate"`` is
    required, in (0, 1); ``"min"`` defaults to 0 and must be in [0, hi); ``"max"`` defaults to
    ``coeff`` and must be > 0.
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    coeff = _check_real(coeff, "coeff", 0.0, math.inf, "[0, inf)")
    if schedule is None:
        return coeff
    if not isinstance(schedule, dict):
        raise ValueError(f"schedule must be None or a dict, got {type(schedule).__name__}")
    unknown = set(schedule) - set(SCHEDULE_KEYS)
    if unknown:
        raise ValueError(
            f"schedule keys must be among {SCHEDULE_KEYS}, got unknown {sorted(unknown)}"
        )
    if "rate" not in schedule:
        raise ValueError('schedule needs a "rate" key (the exponential growth rate)')
    rate = schedule["rate"]
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 < rate < 1:
        raise ValueError(f'schedule["rate"] must be in (0, 1), got {rate!r}')
    high = _check_real(schedule.get("max", coeff), 'schedule["max"]', 0.0, math.inf, "(0, inf)")
    if high == 0.0:
        raise ValueError('schedule["max"] must be in (0, inf), got 0.0')
    low = _check_real(schedule.get("min", 0.0), 'schedule["min"]', 0.0, math.inf, "[0, max)")
    if low >= high:
        raise ValueError(f'schedule["min"] must be in [0, max) = [0, {high}), got {low!r}')
    exponent = float(rate) * step
    if exponent > math.log(high - low + 1.0):  # already past the cap; also avoids overflow
        return high
    return min(math.exp(exponent) - 1.0 + low, high)


def penalty_loss(
    model: nn.Module,
    step: int,
    kind: str = "squared",
    coeff: float = 0.1,
    schedule: dict | None = None,
) -> torch.Tensor:
    """``penalty_coefficient(step) * mean over LearnedDropout modules of module.penalty(kind)``.

    A 0-d tensor attached to the graph of the last training forward, which the trainer adds to
    the cross-entropy in training only. The mean runs over the modules whose last training M has
    not yet been through a backward pass (``pending``), i.e. the modules that ran in the
    current forward: all of them normally; with LayerDrop, the blocks that were not skipped (a
    skipped block's M belongs to an older, already freed graph). Cases:

    * the model has no LearnedDropout: a 0-d zero (on the device of its parameters);
    * no module has an M waiting for the penalty: a 0-d zero, since there is nothing to
      penalise. This covers LayerDrop skipping every block of a step (even the first one), a
      forward run under ``torch.no_grad``, and a second backward without a new forward. It also
      means that calling ``penalty_loss`` before any forward gives 0, not an error;
      :meth:`LearnedDropout.penalty` itself does raise in that case.
    """
    kind = _check_kind(kind)
    c = penalty_coefficient(step, coeff, schedule)
    modules = learned_dropout_modules(model)
    if not modules:
        param = next(model.parameters(), None)
        return torch.zeros((), device=param.device if param is not None else None)
    pending = [m for m in modules if m.pending]
    if not pending:
        return torch.zeros((), device=modules[0].shift.device)
    return c * torch.stack([m.penalty(kind) for m in pending]).mean()


def mask_stats(model: nn.Module) -> dict[str, float]:
    """Mask statistics of the last training forward of each LearnedDropout.

    Per module ``i`` (``model.modules()`` order): ``layer{i}.ones``, the mean of the rounded mask
    (the fraction of ones when it is binary: seed 002's "average % of 1s in M_rounded");
    ``layer{i}.near_zero`` and ``layer{i}.near_one``, the fractions of the unrounded M below
    ``NEAR_ZERO`` (0.1) and above ``NEAR_ONE`` (0.9); ``layer{i}.mean``, the mean of M. The
    keys ``ones``, ``near_zero``, ``near_one``, ``mean`` average these over the modules that
    have run. ``{}`` when the model has no LearnedDropout or none has run in training.
    """
    per_module = []
    for i, m in enumerate(learned_dropout_modules(model)):
        if m.last_m is None or m.last_mask is None:
            continue
        probs = m.last_m.detach().float()
        per_module.append(
            (
                i,
                {
                    "ones": m.last_mask.float().mean().item(),
                    "near_zero": (probs < NEAR_ZERO).float().mean().item(),
                    "near_one": (probs > NEAR_ONE).float().mean().item(),
                    "mean": probs.mean().item(),
                },
            )
        )
    if not per_module:
        return {}
    stats: dict[str, float] = {}
    for key in ("ones", "near_zero", "near_one", "mean"):
        stats[key] = sum(s[key] for _, s in per_module) / len(per_module)
    for i, s in per_module:
        for key, value in s.items():
            stats[f"layer{i}.{key}"] = value
    return stats
