"""Dropout variants as modules: thin wrappers over :mod:`dropoutlib.functional`.

Each module with a scalar drop rate subclasses :class:`dropoutlib.DropoutModule`, so ``p`` is
validated on assignment and schedulers (:func:`dropoutlib.set_dropout_p`) can change it during
training. Every forward reads ``self.training``: ``model.eval()`` turns the noise off.
Modules that draw random numbers accept an optional ``generator`` for reproducible masks.

Papers beyond those of :mod:`dropoutlib.functional`:
- LayerDrop: Fan, Grave, Joulin, "Reducing Transformer Depth on Demand with Structured Dropout",
  ICLR 2020.
- Concrete dropout: Gal, Hron, Kendall, "Concrete Dropout", NeurIPS 2017.
- Standout: Ba & Frey, "Adaptive dropout for training deep neural networks", NeurIPS 2013.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

from dropoutlib import functional as DF
from dropoutlib._base import DropoutModule, check_p

__all__ = [
    "Dropout",
    "DropConnectLinear",
    "SpatialDropout",
    "LockedDropout",
    "EmbeddingDropout",
    "TokenTypeDropout",
    "DropPath",
    "DropHead",
    "GaussianDropout",
    "AlphaDropout",
    "LayerDrop",
    "ConcreteDropout",
    "Standout",
]


def _generator_repr(generator) -> str:
    return ", generator=Generator" if generator is not None else ""


class _NoiseModule(DropoutModule):
    """A DropoutModule that keeps an optional ``torch.Generator`` for its masks."""

    def __init__(self, p: float, generator: torch.Generator | None = None):
        super().__init__(p)
        DF._check_generator(generator)
        self.generator = generator

    def extra_repr(self) -> str:
        return f"p={self.p}{_generator_repr(self.generator)}"


class Dropout(_NoiseModule):
    """Inverted dropout (Srivastava et al. 2014): ``y = x * m / (1 - p)``, ``m ~ Bernoulli(1 - p)``.

    Uses PyTorch's fused kernel when no generator is given; with one, masks are reproducible.
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None):
        super().__init__(p, generator)

    def forward(self, x: Tensor) -> Tensor:
        return DF.dropout(x, self.p, self.training, generator=self.generator)


class DropConnectLinear(DropoutModule):
    """A linear layer with DropConnect (Wan et al. 2013) on its weight while training.

    ``y = x (M * W / (1 - p))^T + b``, a fresh mask ``M ~ Bernoulli(1 - p)`` every forward (shared
    by the batch, or one per example with ``per_sample=True``, see
    :func:`dropoutlib.functional.drop_connect`); ``y = x W^T + b`` at eval.
    Parameters are initialised as ``nn.Linear``'s. :meth:`from_linear` wraps an existing
    ``nn.Linear``, sharing its parameters.
    """

    def __init__(
        self,
        p: float,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        per_sample: bool = False,
        generator: torch.Generator | None = None,
        device=None,
        dtype=None,
    ):
        super().__init__(p)
        DF._check_generator(generator)
        if not isinstance(per_sample, bool):
            raise ValueError(f"per_sample must be a bool, got {per_sample!r}")
        self.per_sample = per_sample
        linear = nn.Linear(in_features, out_features, bias, device=device, dtype=dtype)
        self.in_features, self.out_features = in_features, out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.generator = generator

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        p: float = 0.5,
        *,
        per_sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> DropConnectLinear:
        """Wrap ``linear``: the result uses (and trains) the same weight and bias objects."""
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        module = cls(
            p,
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            per_sample=per_sample,
            generator=generator,
            device="meta",  # placeholders, replaced by linear's parameters below
        )
        module.weight = linear.weight
        module.bias = linear.bias
        return module

    def forward(self, x: Tensor) -> Tensor:
        return DF.drop_connect(
            x,
            self.p,
            self.training,
            weight=self.weight,
            bias=self.bias,
            generator=self.generator,
            per_sample=self.per_sample,
        )

    def extra_repr(self) -> str:
        return (
            f"p={self.p}, in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
            f"{', per_sample=True' if self.per_sample else ''}{_generator_repr(self.generator)}"
        )


class SpatialDropout(_NoiseModule):
    """Spatial dropout (Tompson et al. 2015): whole channels dropped at every position.

    ``channel_dim=-1`` for ``(B, T, C)`` sequences (default), ``channel_dim=1`` for
    ``(B, C, *spatial)`` feature maps. See :func:`dropoutlib.functional.spatial_dropout`.
    """

    def __init__(
        self, p: float = 0.5, *, channel_dim: int = -1, generator: torch.Generator | None = None
    ):
        super().__init__(p, generator)
        if isinstance(channel_dim, bool) or not isinstance(channel_dim, int) or channel_dim == 0:
            raise ValueError(
                f"channel_dim must be a nonzero int (0 is the batch), got {channel_dim!r}"
            )
        self.channel_dim = channel_dim

    def forward(self, x: Tensor) -> Tensor:
        return DF.spatial_dropout(
            x, self.p, self.training, generator=self.generator, channel_dim=self.channel_dim
        )

    def extra_repr(self) -> str:
        return f"p={self.p}, channel_dim={self.channel_dim}{_generator_repr(self.generator)}"


class LockedDropout(_NoiseModule):
    """Locked (variational) dropout (Gal & Ghahramani 2016): one mask per sequence for all steps.

    Batch-first ``(B, T, C)`` by default; ``time_dim=0`` for ``(T, B, C)``.
    See :func:`dropoutlib.functional.locked_dropout`.
    """

    def __init__(
        self, p: float = 0.5, *, time_dim: int = 1, generator: torch.Generator | None = None
    ):
        super().__init__(p, generator)
        if isinstance(time_dim, bool) or not isinstance(time_dim, int):
            raise ValueError(f"time_dim must be an int, got {time_dim!r}")
        self.time_dim = time_dim

    def forward(self, x: Tensor) -> Tensor:
        return DF.locked_dropout(
            x, self.p, self.training, generator=self.generator, time_dim=self.time_dim
        )

    def extra_repr(self) -> str:
        return f"p={self.p}, time_dim={self.time_dim}{_generator_repr(self.generator)}"


class EmbeddingDropout(_NoiseModule):
    """An ``nn.Embedding`` with embedding (word-type) dropout (Gal & Ghahramani 2016; AWD-LSTM).

    While training, whole rows of the embedding matrix (token types) are dropped with
    probability ``p`` and the kept rows scaled by ``1 / (1 - p)``; one mask per forward, so a
    dropped token is zero wherever it occurs in the batch. At eval it is the wrapped embedding.
    The wrapped module's ``padding_idx``, ``max_norm``, ``scale_grad_by_freq`` and ``sparse`` are
    honoured. ``forward(indices)`` takes integer token ids.
    """

    def __init__(
        self, p: float, embedding: nn.Embedding, *, generator: torch.Generator | None = None
    ):
        super().__init__(p, generator)
        if not isinstance(embedding, nn.Embedding):
            raise ValueError(f"embedding must be an nn.Embedding, got {type(embedding).__name__}")
        self.embedding = embedding

    @property
    def weight(self) -> nn.Parameter:
        return self.embedding.weight

    def forward(self, indices: Tensor) -> Tensor:
        e = self.embedding
        return DF.embedding_dropout(
            indices,
            self.p,
            self.training,
            weight=e.weight,
            generator=self.generator,
            padding_idx=e.padding_idx,
            max_norm=e.max_norm,
            norm_type=e.norm_type,
            scale_grad_by_freq=e.scale_grad_by_freq,
            sparse=e.sparse,
        )


class TokenTypeDropout(_NoiseModule):
    """Embedding (word-type) dropout on looked-up vectors: ``forward(x, indices)``.

    While training, each of the ``num_types`` token types is dropped with probability ``p``
    (one draw per forward) and the vectors ``x`` of its occurrences are zeroed everywhere in the
    batch; the others are scaled by ``1 / (1 - p)``. Identity at eval. The same mask as
    :class:`EmbeddingDropout`, for a model that keeps its own ``nn.Embedding`` (babyGPT's
    ``embd_kind="token"``). See :func:`dropoutlib.functional.token_type_dropout`.
    """

    def __init__(self, p: float, num_types: int, *, generator: torch.Generator | None = None):
        super().__init__(p, generator)
        if isinstance(num_types, bool) or not isinstance(num_types, int) or num_types < 1:
            raise ValueError(f"num_types must be a positive int, got {num_types!r}")
        self.num_types = num_types

    def forward(self, x: Tensor, indices: Tensor) -> Tensor:
        return DF.token_type_dropout(
            x,
            indices,
            self.p,
            self.training,
            num_types=self.num_types,
            generator=self.generator,
        )

    def extra_repr(self) -> str:
        return f"p={self.p}, num_types={self.num_types}{_generator_repr(self.generator)}"


class DropPath(_NoiseModule):
    """DropPath / stochastic depth (Huang et al. 2016), per sample: apply to a residual branch.

    ``x + drop_path(f(x))``; see :func:`dropoutlib.functional.drop_path`.
    """

    def __init__(
        self,
        p: float = 0.1,
        *,
        scale_by_keep: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__(p, generator)
        if not isinstance(scale_by_keep, bool):
            raise ValueError(f"scale_by_keep must be a bool, got {scale_by_keep!r}")
        self.scale_by_keep = scale_by_keep

    def forward(self, x: Tensor) -> Tensor:
        return DF.drop_path(
            x, self.p, self.training, generator=self.generator, scale_by_keep=self.scale_by_keep
        )

    def extra_repr(self) -> str:
        return f"p={self.p}, scale_by_keep={self.scale_by_keep}{_generator_repr(self.generator)}"


class DropHead(_NoiseModule):
    """DropHead (Zhou et al. 2020): whole attention heads dropped per sample.

    Input ``(B, H, T, D)``, the per-head attention output before the heads are merged; each
    sample is rescaled by ``H / kept heads`` and keeps at least one head, so ``p = 1`` is not
    allowed. See :func:`dropoutlib.functional.drop_head`.
    """

    allow_p_one = False

    def __init__(self, p: float = 0.1, *, generator: torch.Generator | None = None):
        super().__init__(p, generator)

    def forward(self, x: Tensor) -> Tensor:
        return DF.drop_head(x, self.p, self.training, generator=self.generator)


class GaussianDropout(_NoiseModule):
    """Gaussian dropout (Srivastava et al. 2014): ``y = x * e``, ``e ~ N(1, p / (1 - p))``."""

    allow_p_one = False

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None):
        super().__init__(p, generator)

    def forward(self, x: Tensor) -> Tensor:
        return DF.gaussian_dropout(x, self.p, self.training, generator=self.generator)


class AlphaDropout(_NoiseModule):
    """Alpha dropout for SELU networks (Klambauer et al. 2017): keeps mean 0 and variance 1.

    See :func:`dropoutlib.functional.alpha_dropout` for the affine constants.
    """

    allow_p_one = False

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None):
        super().__init__(p, generator)

    def forward(self, x: Tensor) -> Tensor:
        return DF.alpha_dropout(x, self.p, self.training, generator=self.generator)


class LayerDrop(_NoiseModule):
    """LayerDrop (Fan et al. 2019): skip whole residual blocks while training.

    ``blocks`` is a sequence of modules, each mapping ``x -> x + f(x)`` (a full residual block,
    returning its output, not the residual). While training, each block is skipped with
    probability ``p`` (skipping = identity), with one decision per block for the whole batch, so
    skipped blocks cost no compute; no rescaling, as in the paper. At eval every block runs.
    Decisions are drawn on the CPU, from ``generator`` if given: under data or tensor parallelism
    give every rank an identically seeded generator so the ranks skip the same blocks.
    Extra positional and keyword arguments of ``forward`` are passed to every block.
    """

    def __init__(
        self,
        p: float,
        blocks: Iterable[nn.Module],
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__(p, generator)
        if isinstance(blocks, nn.Module) and not isinstance(blocks, (nn.ModuleList, nn.Sequential)):
            raise ValueError(
                f"blocks must be a list of modules, got a single {type(blocks).__name__}"
            )
        blocks = list(blocks)
        for i, block in enumerate(blocks):
            if not isinstance(block, nn.Module):
                raise ValueError(f"blocks[{i}] must be an nn.Module, got {type(block).__name__}")
        if not blocks:
            raise ValueError("blocks must contain at least one module, got an empty list")
        self.blocks = nn.ModuleList(blocks)

    def __len__(self) -> int:
        return len(self.blocks)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self.blocks)

    def __getitem__(self, i):
        return self.blocks[i]

    def forward(self, x: Tensor, *args, **kwargs) -> Tensor:
        if not self.training or self.p == 0.0:
            run = [True] * len(self.blocks)
        elif self.p == 1.0:
            run = [False] * len(self.blocks)
        else:
            device = self.generator.device if self.generator is not None else "cpu"
            u = torch.rand(len(self.blocks), generator=self.generator, device=device)
            run = (u >= self.p).tolist()
        for block, keep in zip(self.blocks, run):
            if keep:
                x = block(x, *args, **kwargs)
        return x

    def extra_repr(self) -> str:
        return f"p={self.p}, n_blocks={len(self.blocks)}{_generator_repr(self.generator)}"


class ConcreteDropout(nn.Module):
    """Concrete dropout (Gal, Hron, Kendall 2017): a drop rate learned by gradient descent.

    The rate is ``p = sigmoid(p_logit)`` with ``p_logit`` a parameter. While training the hard
    Bernoulli mask is replaced by its relaxation (a Concrete / relaxed Bernoulli with
    temperature ``t``)::

        u ~ U(0, 1)
        drop = sigmoid((log p - log(1 - p) + log u - log(1 - u)) / t)
        y = x * (1 - drop) / (1 - p)

    which is differentiable in ``p``. At eval it is the identity (the ``1 / (1 - p)`` scaling
    makes the training output match it in expectation). Masks are per element.

    If ``layer`` is given, ``forward(x)`` returns ``layer(dropout(x))`` and the weight term of the
    regulariser uses ``layer``'s parameters, as in the authors' code. :meth:`regularizer` is

        weight_regularizer * sum ||W||^2 / (1 - p)
            + dropout_regularizer * K * (p log p + (1 - p) log(1 - p))

    with ``K`` the number of features dropped per example (``in_features``, or ``x[0].numel()``
    of the last input when not given). Add it to the loss. The second term is minus ``K`` times the
    entropy of Bernoulli(p), which pulls ``p`` towards 0.5; the first pulls ``p`` towards 0. Both
    weights depend on the training-set size ``N``; the authors' notebook sets
    ``weight_regularizer = l^2 / N`` (``l`` a prior length-scale) and ``dropout_regularizer =
    2 / N``. Set them for your ``N``: a wrong ``N`` drives ``p`` to 0 or too high. The defaults
    (1e-6, 1e-5) are values common in public ports, not a recommendation.

    ``p`` is a read-only property (set the initial value with the constructor); this module is not
    a :class:`DropoutModule`, so schedulers leave its learned rate alone.
    """

    def __init__(
        self,
        p: float = 0.1,
        layer: nn.Module | None = None,
        *,
        temperature: float = 0.1,
        weight_regularizer: float = 1e-6,
        dropout_regularizer: float = 1e-5,
        in_features: int | None = None,
        eps: float = 1e-7,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        p = check_p(p, "p", allow_one=False)
        if p == 0.0:
            raise ValueError(
                f"p must be in (0, 1) for ConcreteDropout (its logit is learned), got {p}"
            )
        for name, value in [
            ("temperature", temperature),
            ("weight_regularizer", weight_regularizer),
            ("dropout_regularizer", dropout_regularizer),
            ("eps", eps),
        ]:
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite real number, got {value!r}")
            positive = name in ("temperature", "eps")
            if value < 0 or (value == 0 and positive):
                bound = "> 0" if positive else ">= 0"
                raise ValueError(f"{name} must be {bound}, got {value!r}")
        if in_features is not None and (
            isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1
        ):
            raise ValueError(f"in_features must be a positive int or None, got {in_features!r}")
        if layer is not None and not isinstance(layer, nn.Module):
            raise ValueError(f"layer must be an nn.Module or None, got {type(layer).__name__}")
        DF._check_generator(generator)
        self.p_logit = nn.Parameter(torch.tensor(math.log(p) - math.log1p(-p)))
        self.layer = layer
        self.temperature = float(temperature)
        self.weight_regularizer = float(weight_regularizer)
        self.dropout_regularizer = float(dropout_regularizer)
        self.in_features = in_features
        self._last_in_features: int | None = None
        self.eps = float(eps)
        self.generator = generator

    @property
    def p(self) -> float:
        """The current drop rate ``sigmoid(p_logit)`` (read-only)."""
        return float(torch.sigmoid(self.p_logit.detach().double()))

    def drop_rate(self) -> Tensor:
        """``sigmoid(p_logit)`` as a 0-d tensor in the graph."""
        return torch.sigmoid(self.p_logit)

    def _concrete_dropout(self, x: Tensor) -> Tensor:
        eps, p = self.eps, torch.sigmoid(self.p_logit)
        u = DF._uniform(x.shape, x, self.generator)
        drop = torch.sigmoid(
            (
                torch.log(p + eps)
                - torch.log(1 - p + eps)
                + torch.log(u + eps)
                - torch.log(1 - u + eps)
            )
            / self.temperature
        )
        return x * ((1 - drop) / (1 - p)).to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        DF._check_float_tensor(x)
        if self.in_features is None and x.dim() >= 1:
            self._last_in_features = x[0].numel() if x.dim() > 1 else 1
        out = self._concrete_dropout(x) if self.training else x
        return self.layer(out) if self.layer is not None else out

    def regularizer(self) -> Tensor:
        """The paper's per-layer regulariser (0-d tensor), to add to the loss; see the class doc."""
        k = self.in_features or self._last_in_features
        if k is None:
            raise ValueError(
                "in_features is unknown: pass in_features= to ConcreteDropout or run forward once"
            )
        p = torch.sigmoid(self.p_logit)
        reg = self.dropout_regularizer * k * (p * torch.log(p) + (1 - p) * torch.log1p(-p))
        if self.layer is not None:
            sq = sum((w.pow(2).sum() for w in self.layer.parameters()), p.new_zeros(()))
            reg = reg + self.weight_regularizer * sq / (1 - p)
        return reg

    def extra_repr(self) -> str:
        return (
            f"p={self.p:.4g}, temperature={self.temperature}, "
            f"weight_regularizer={self.weight_regularizer}, "
            f"dropout_regularizer={self.dropout_regularizer}{_generator_repr(self.generator)}"
        )


class Standout(nn.Module):
    """Standout (Ba & Frey 2013, "adaptive dropout"): an input-dependent keep probability.

    Not to be confused with the "adaptive dropout" of this course's seed 000, which is a
    *schedule* that lowers one global rate over training (see :mod:`dropoutlib.schedules`).
    Standout instead gives every unit of every example its own keep probability, computed from
    the input by a sigmoid gate whose weights are tied to the layer's own weights::

        a = layer(x)                       # pre-activation, layer is an nn.Linear
        keep = sigmoid(alpha * a + beta)   # the standout gate
        m ~ Bernoulli(keep)
        y = activation(a) * m              # training
        y = activation(a) * keep           # eval: the expectation, as in the paper

    ``alpha`` and ``beta`` are learnable scalars (``learn_gate=True``) initialised to the given
    values; the paper tunes them as hyperparameters (``learn_gate=False``). A Bernoulli sample has
    no gradient, so while training the gate gets the gradient of the expected output (straight
    through: the forward value uses ``m``, the backward pass uses ``d y / d keep = activation(a)``).
    The gradient along the activation path is exactly 0 where a unit was dropped. There is no
    ``1 / keep`` rescaling: eval multiplies by ``keep`` instead.
    """

    def __init__(
        self,
        layer: nn.Linear,
        alpha: float = 1.0,
        beta: float = 0.0,
        *,
        activation: nn.Module | None = None,
        learn_gate: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if not isinstance(layer, nn.Linear):
            raise ValueError(f"layer must be an nn.Linear, got {type(layer).__name__}")
        for name, value in [("alpha", alpha), ("beta", beta)]:
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite real number, got {value!r}")
        if not isinstance(learn_gate, bool):
            raise ValueError(f"learn_gate must be a bool, got {learn_gate!r}")
        if activation is not None and not callable(activation):
            raise ValueError(f"activation must be callable, got {type(activation).__name__}")
        DF._check_generator(generator)
        self.layer = layer
        self.activation = activation if activation is not None else nn.ReLU()
        alpha_t = torch.tensor(float(alpha), dtype=layer.weight.dtype, device=layer.weight.device)
        beta_t = torch.tensor(float(beta), dtype=layer.weight.dtype, device=layer.weight.device)
        if learn_gate:
            self.alpha, self.beta = nn.Parameter(alpha_t), nn.Parameter(beta_t)
        else:
            self.register_buffer("alpha", alpha_t)
            self.register_buffer("beta", beta_t)
        self.learn_gate = learn_gate
        self.generator = generator

    def keep_prob(self, x: Tensor) -> Tensor:
        """The gate ``sigmoid(alpha * layer(x) + beta)``: each unit's keep probability."""
        return torch.sigmoid(self.alpha * self.layer(x) + self.beta)

    def forward(self, x: Tensor) -> Tensor:
        DF._check_float_tensor(x)
        a = self.layer(x)
        keep = torch.sigmoid(self.alpha * a + self.beta)
        h = self.activation(a)
        if not self.training:
            return h * keep
        m = (DF._uniform(keep.shape, keep, self.generator) < keep.detach().float()).to(h.dtype)
        return h * (m + (keep - keep.detach()))

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha.item():.4g}, beta={self.beta.item():.4g}, "
            f"learn_gate={self.learn_gate}{_generator_repr(self.generator)}"
        )
