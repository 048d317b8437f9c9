"""Dropout variants as pure functions: one function per idea, no state.

Papers:
- Dropout: Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov, "Dropout: A Simple Way to
  Prevent Neural Networks from Overfitting", JMLR 2014 (and Hinton et al., arXiv:1207.0580).
- DropConnect: Wan, Zeiler, Zhang, LeCun, Fergus, "Regularization of Neural Networks using
  DropConnect", ICML 2013.
- Spatial dropout: Tompson, Goroshin, Jain, LeCun, Bregler, "Efficient Object Localization Using
  Convolutional Networks", CVPR 2015.
- Locked (variational) dropout and embedding dropout: Gal & Ghahramani, "A Theoretically Grounded
  Application of Dropout in Recurrent Neural Networks", NeurIPS 2016; Merity, Keskar, Socher,
  "Regularizing and Optimizing LSTM Language Models" (AWD-LSTM), ICLR 2018.
- DropPath (stochastic depth): Huang, Sun, Liu, Sedra, Weinberger, "Deep Networks with Stochastic
  Depth", ECCV 2016.
- DropHead: Zhou, Ge, Xu, Wei, Zhou, "Scheduled DropHead: A Regularization Method for Transformer
  Models", Findings of EMNLP 2020.
- Gaussian dropout: Srivastava et al. 2014, section 10 ("Multiplicative Gaussian Noise").
- Alpha dropout: Klambauer, Unterthiner, Mayr, Hochreiter, "Self-Normalizing Neural Networks",
  NeurIPS 2017.

Conventions shared by every function here:
- ``p`` is the drop probability and ``q = 1 - p`` the keep probability; scaling is "inverted"
  (done while training), so evaluation is the identity.
- Signature ``(x, p, training=True, *, generator=None, ...)``. ``training`` must be a bool: like
  ``torch.nn.functional.dropout`` the functions cannot see ``module.eval()``, so modules pass
  ``training=self.training``.
- With ``training=False`` or ``p == 0`` the input itself is returned: no copy, no random numbers
  drawn. With ``p == 1`` (where allowed) the output is zeros, still connected to the graph.
- With a ``torch.Generator`` the random numbers come from it (on the generator's device, then moved
  to ``x``'s device), so a seed reproduces the mask exactly; without one the global RNG of ``x``'s
  device is used. Masks are drawn in float32 and cast, so float16 and bfloat16 inputs get the same
  mask as float32 ones for the same seed.
- Every rate goes through :func:`dropoutlib._base.check_p`; shapes and types are checked with
  ``ValueError`` messages that name the argument, what was received and what is expected.

``seeded_dropout`` (masks regenerated from a seed, :mod:`dropoutlib.seeded`) is importable from
here too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from dropoutlib._base import check_p

__all__ = [
    "dropout",
    "drop_connect",
    "spatial_dropout",
    "locked_dropout",
    "embedding_dropout",
    "token_type_dropout",
    "drop_path",
    "drop_head",
    "gaussian_dropout",
    "alpha_dropout",
    "SELU_ALPHA",
    "SELU_SCALE",
]

# SELU constants (Klambauer et al. 2017, eq. 2); the same values as torch.nn.SELU.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# ---------------------------------------------------------------------------------------------
# Checks and random numbers shared by the variants


def _check_training(training) -> None:
    if not isinstance(training, bool):
        raise ValueError(
            f"training must be a bool (pass training=self.training from a module), "
            f"got {training!r} of type {type(training).__name__}"
        )


def _check_float_tensor(x, name: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


def _check_common(x, p, training, generator, *, allow_one: bool = True) -> float:
    """Validate the arguments every variant shares; return ``p`` as a float."""
    p = check_p(p, "p", allow_one=allow_one)
    _check_training(training)
    _check_float_tensor(x)
    _check_generator(generator)
    return p


def _check_dim(dim, ndim: int, name: str) -> int:
    """Return ``dim`` normalised to [0, ndim) or raise naming the argument."""
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise ValueError(f"{name} must be an int, got {dim!r} of type {type(dim).__name__}")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name} must be in [{-ndim}, {ndim - 1}] for a {ndim}-D input, got {dim}")
    return dim % ndim


def _shape(x: Tensor) -> tuple[int, ...]:
    return tuple(x.shape)


def _uniform(shape, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Float32 U[0, 1) numbers on ``x``'s device, from ``generator`` or the global RNG."""
    if generator is None:
        return torch.rand(shape, device=x.device)
    return torch.rand(shape, generator=generator, device=generator.device).to(x.device)


def _keep_mask(shape, q: float, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Boolean mask, True with probability ``q`` independently per entry."""
    return _uniform(shape, x, generator) < q


def _inverted_noise(shape, q: float, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Mask / q in ``x``'s dtype: 0 where dropped, 1/q where kept (0 < q < 1)."""
    return _keep_mask(shape, q, x, generator).to(x.dtype).div_(q)


def _zeros(x: Tensor) -> Tensor:
    """All-zero output that stays in the graph (gradient exactly 0), like ``F.dropout(x, 1)``."""
    return x * 0.0


# ---------------------------------------------------------------------------------------------
# The variants


def dropout(x: Tensor, p: float = 0.5, training: bool = True, *, generator=None) -> Tensor:
    """Inverted (Bernoulli) dropout, Srivastava et al. 2014.

    ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` per element while training;
    ``y = x`` at eval.

    Without a generator this calls ``torch.nn.functional.dropout`` (the fused native kernel on
    GPU). With a generator the mask is drawn from it, so the same seed gives the same output.
    """
    p = _check_common(x, p, training, generator)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _zeros(x)
    if generator is None:
        return F.dropout(x, p, training=True)
    return x * _inverted_noise(x.shape, 1.0 - p, x, generator)


def drop_connect(
    x: Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    weight: Tensor,
    bias: Tensor | None = None,
    generator=None,
    per_sample: bool = False,
) -> Tensor:
    """A linear layer whose weights are dropped (DropConnect), Wan et al. 2013.

    ``y = x (M * W / (1 - p))^T + b`` with ``M ~ Bernoulli(1 - p)`` of ``W``'s shape, a fresh
    mask every call; ``y = x W^T + b`` at eval. The bias is not dropped.

    Design choice: the function takes the layer's input ``x`` (shape ``(*, in_features)``) and the
    ``weight`` ``(out_features, in_features)`` and ``bias`` as keywords, and returns the linear
    output, so it keeps the ``(x, p, training)`` signature of the other variants. By default one
    mask is drawn per call and shared by every example of the batch, as in AWD-LSTM's WeightDrop.
    ``per_sample=True`` draws one mask per example as in the paper (``x`` is then
    ``(B, *, in_features)``); it materialises ``B * out_features * in_features`` weights, so keep
    it for small layers. To drop the weights of another layer (a convolution, an LSTM's ``W_hh``)
    apply :func:`dropout` to the weight itself.
    """
    p = _check_common(x, p, training, generator)
    _check_float_tensor(weight, "weight")
    if weight.dim() != 2:
        raise ValueError(
            f"weight must be 2-D (out_features, in_features), got shape {_shape(weight)}"
        )
    if x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"x must have shape (*, in_features) with in_features={weight.shape[1]} "
            f"(weight shape {_shape(weight)}), got shape {_shape(x)}"
        )
    if bias is not None:
        _check_float_tensor(bias, "bias")
        if _shape(bias) != (weight.shape[0],):
            raise ValueError(
                f"bias must have shape ({weight.shape[0]},) to match weight {_shape(weight)}, "
                f"got shape {_shape(bias)}"
            )
    if not isinstance(per_sample, bool):
        raise ValueError(f"per_sample must be a bool, got {per_sample!r}")
    if per_sample and x.dim() < 2:
        raise ValueError(
            f"x must be (batch, *, in_features) with per_sample=True, got shape {_shape(x)}"
        )
    if not training or p == 0.0:
        return F.linear(x, weight, bias)
    if p == 1.0:
        return F.linear(x, _zeros(weight), bias)
    if not per_sample:
        return F.linear(x, weight * _inverted_noise(weight.shape, 1.0 - p, weight, generator), bias)
    masked = weight * _inverted_noise((x.shape[0], *weight.shape), 1.0 - p, weight, generator)
    y = torch.einsum("b...i,boi->b...o", x, masked)  # one (out, in) weight per example
    return y + bias if bias is not None else y


def spatial_dropout(
    x: Tensor, p: float = 0.5, training: bool = True, *, generator=None, channel_dim: int = -1
) -> Tensor:
    """Spatial (channel) dropout, Tompson et al. 2015: whole channels dropped at every position.

    ``y[b, ..., c, ...] = x[b, ..., c, ...] * m[b, c] / (1 - p)`` with ``m ~ Bernoulli(1 - p)``
    per (sample, channel), shared over all other dimensions.

    ``channel_dim`` says where the channels are: ``-1`` (default) for the sequence layout
    ``(B, T, C)`` used by language models, where a channel is dropped for every ``T``; ``1`` for
    the convolution layout ``(B, C, *spatial)``, as ``torch.nn.Dropout1d/2d/3d``. Dimension 0 is
    always the batch. For a 3-D ``(B, T, C)`` input this is the same mask as
    :func:`locked_dropout` with ``time_dim=1``; they differ on 4-D and larger inputs.
    """
    p = _check_common(x, p, training, generator)
    if x.dim() < 3:
        raise ValueError(
            f"x must have at least 3 dimensions (batch, positions..., channels) so that a "
            f"channel spans several positions, got shape {_shape(x)}"
        )
    cdim = _check_dim(channel_dim, x.dim(), "channel_dim")
    if cdim == 0:
        raise ValueError("channel_dim must not be 0: dimension 0 is the batch")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _zeros(x)
    shape = [1] * x.dim()
    shape[0], shape[cdim] = x.shape[0], x.shape[cdim]
    return x * _inverted_noise(shape, 1.0 - p, x, generator)


def locked_dropout(
    x: Tensor, p: float = 0.5, training: bool = True, *, generator=None, time_dim: int = 1
) -> Tensor:
    """Locked (variational) dropout, Gal & Ghahramani 2016; AWD-LSTM's LockedDropout.

    ``y[:, t] = x[:, t] * m / (1 - p)`` with one mask ``m ~ Bernoulli(1 - p)`` per sequence and
    feature, reused at every time step.

    Batch-first by default: ``x`` is ``(B, T, C)`` and ``time_dim=1``. For the ``(T, B, C)``
    layout of AWD-LSTM pass ``time_dim=0`` (getting this wrong shares the mask across the batch
    instead of across time). The mask has ``x``'s shape with ``time_dim`` set to 1.
    """
    p = _check_common(x, p, training, generator)
    if x.dim() < 3:
        raise ValueError(
            f"x must have at least 3 dimensions, e.g. (batch, time, features), "
            f"got shape {_shape(x)}"
        )
    tdim = _check_dim(time_dim, x.dim(), "time_dim")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _zeros(x)
    shape = list(x.shape)
    shape[tdim] = 1
    return x * _inverted_noise(shape, 1.0 - p, x, generator)


def embedding_dropout(
    indices: Tensor,
    p: float = 0.1,
    training: bool = True,
    *,
    weight: Tensor,
    generator=None,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Embedding (word-type) dropout, Gal & Ghahramani 2016; AWD-LSTM's ``embedded_dropout``.

    ``y = embedding(indices, W * m / (1 - p))`` with ``m ~ Bernoulli(1 - p)`` per row of ``W``
    (per token type): a dropped token is zero at every position of every sequence in the call.

    ``indices`` are integer token ids of any shape, ``weight`` is ``(num_embeddings, dim)``; the
    other keywords are those of ``torch.nn.functional.embedding`` (``padding_idx=None`` means no
    padding row; it is passed through unchanged, avoiding AWD-LSTM's ``-1`` trap). The mask is
    applied to the looked-up rows, ``embedding(indices, W) * (m / (1 - p))[indices]``, which equals
    the formula above without building a dropped copy of the whole matrix. ``max_norm`` therefore
    acts on the stored weight before the mask.
    """
    p = check_p(p, "p")
    _check_training(training)
    _check_generator(generator)
    if not isinstance(indices, Tensor):
        raise ValueError(f"indices must be a torch.Tensor, got {type(indices).__name__}")
    if indices.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"indices must be an int64 or int32 tensor, got dtype {indices.dtype}")
    _check_float_tensor(weight, "weight")
    if weight.dim() != 2:
        raise ValueError(
            f"weight must be 2-D (num_embeddings, embedding_dim), got shape {_shape(weight)}"
        )
    lookup = F.embedding(
        indices, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse
    )
    if not training or p == 0.0:
        return lookup
    if p == 1.0:
        return _zeros(lookup)
    row_noise = _inverted_noise((weight.shape[0],), 1.0 - p, weight, generator)
    return lookup * row_noise[indices].unsqueeze(-1)


def token_type_dropout(
    x: Tensor,
    indices: Tensor,
    p: float = 0.1,
    training: bool = True,
    *,
    num_types: int,
    generator=None,
) -> Tensor:
    """Embedding (word-type) dropout on vectors already looked up: whole token types dropped.

    ``y[..., :] = x[..., :] * m[indices[...]] / (1 - p)`` with one ``m[v] ~ Bernoulli(1 - p)``
    per token type ``v`` (``num_types`` of them), drawn once per call: a dropped type is zero at
    every position of every sequence where it occurs. ``x`` is ``(*, C)``, the embeddings of
    ``indices`` ``(*)``. This is :func:`embedding_dropout` applied after the lookup, for a model
    that looks its tokens up itself (babyGPT's ``embd_kind="token"``); for the same generator
    state both draw the same row mask. Compare :func:`dropout` on the same vectors, which drops
    coordinates of single occurrences, and :func:`locked_dropout`, which drops coordinates of a
    whole sequence.
    """
    p = _check_common(x, p, training, generator)
    if not isinstance(indices, Tensor) or indices.dtype not in (torch.int64, torch.int32):
        got = indices.dtype if isinstance(indices, Tensor) else type(indices).__name__
        raise ValueError(f"indices must be an int64 or int32 tensor, got {got}")
    if x.dim() < 1 or _shape(x)[:-1] != _shape(indices):
        raise ValueError(
            f"x must have shape (*indices.shape, C) = {(*_shape(indices), 'C')}, got {_shape(x)}"
        )
    if isinstance(num_types, bool) or not isinstance(num_types, int) or num_types < 1:
        raise ValueError(f"num_types must be a positive int, got {num_types!r}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _zeros(x)
    type_noise = _inverted_noise((num_types,), 1.0 - p, x, generator)
    return x * type_noise[indices].unsqueeze(-1)


def drop_path(
    x: Tensor, p: float = 0.1, training: bool = True, *, generator=None, scale_by_keep: bool = True
) -> Tensor:
    """DropPath (stochastic depth), Huang et al. 2016, per sample as in timm.

    ``y[b] = x[b] * m[b] / (1 - p)`` with one ``m[b] ~ Bernoulli(1 - p)`` per sample; without
    ``scale_by_keep`` the ``1 / (1 - p)`` factor is left out.

    Apply it to the output of a residual branch, ``x + drop_path(f(x), p, training)``, so a dropped
    sample passes through the block unchanged. The paper drops the branch for the whole
    mini-batch; per-sample dropping regularises the same way but saves no compute
    (see :class:`dropoutlib.LayerDrop` for whole-batch skipping).
    """
    p = _check_common(x, p, training, generator)
    if not isinstance(scale_by_keep, bool):
        raise ValueError(f"scale_by_keep must be a bool, got {scale_by_keep!r}")
    if x.dim() < 1:
        raise ValueError(f"x must have a batch dimension (at least 1-D), got shape {_shape(x)}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _zeros(x)
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    keep = _keep_mask(shape, 1.0 - p, x, generator).to(x.dtype)
    if scale_by_keep:
        keep = keep.div_(1.0 - p)
    return x * keep


def drop_head(x: Tensor, p: float = 0.1, training: bool = True, *, generator=None) -> Tensor:
    """DropHead, Zhou et al. 2020: whole attention heads dropped per sample.

    ``y[b, h] = x[b, h] * xi[b, h] * H / sum_h' xi[b, h']`` with ``xi[b, h] ~ Bernoulli(1 - p)``.

    ``x`` is the per-head attention output ``(B, H, T, D)``, before the heads are merged (the
    output of ``F.scaled_dot_product_attention``). Rescaling follows the paper: each sample is
    multiplied by ``H / (number of heads it kept)``, so the heads' total weight stays exactly
    ``H``. A sample that drew no head at all is redrawn (as in the reference implementation), so
    every sample keeps at least one head: the realised keep rate is ``(1 - p) / (1 - p**H)`` and
    ``E[y] = x`` holds exactly. Hence ``p = 1`` is rejected.
    """
    p = _check_common(x, p, training, generator, allow_one=False)
    if x.dim() != 4:
        raise ValueError(
            f"x must be 4-D (batch, heads, time, head_dim), got shape {_shape(x)}; "
            f"apply drop_head before the heads are merged"
        )
    if not training or p == 0.0:
        return x
    batch, heads = x.shape[0], x.shape[1]
    keep = _keep_mask((batch, heads), 1.0 - p, x, generator)
    dead = ~keep.any(dim=1)
    while bool(dead.any()):  # redraw samples that lost every head
        keep[dead] = _keep_mask((int(dead.sum()), heads), 1.0 - p, x, generator)
        dead = ~keep.any(dim=1)
    scale = keep.float() * (heads / keep.sum(dim=1, keepdim=True).float())
    return x * scale.to(x.dtype)[:, :, None, None]


def gaussian_dropout(x: Tensor, p: float = 0.5, training: bool = True, *, generator=None) -> Tensor:
    """Multiplicative Gaussian noise, Srivastava et al. 2014 (section 10).

    ``y = x * e`` with ``e ~ N(1, p / (1 - p))`` per element while training; ``y = x`` at eval.

    The variance ``p / (1 - p)`` equals that of inverted Bernoulli dropout's ``m / (1 - p)``, so
    ``p`` means the same as for :func:`dropout`. ``p = 1`` (infinite variance) is an error.
    """
    p = _check_common(x, p, training, generator, allow_one=False)
    if not training or p == 0.0:
        return x
    std = math.sqrt(p / (1.0 - p))
    if generator is None:
        noise = torch.randn(x.shape, device=x.device)
    else:
        noise = torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)
    return x * noise.mul_(std).add_(1.0).to(x.dtype)


def alpha_dropout(x: Tensor, p: float = 0.5, training: bool = True, *, generator=None) -> Tensor:
    """Alpha dropout for SELU networks, Klambauer et al. 2017.

    ``y = a * (x * m + alpha' * (1 - m)) + b`` with ``m ~ Bernoulli(q)``, ``q = 1 - p``,
    ``alpha' = -SELU_SCALE * SELU_ALPHA``, ``a = (q * (1 + p * alpha'^2)) ** -0.5`` and
    ``b = -a * alpha' * p``.

    Dropped units are set to SELU's negative saturation value ``alpha'`` instead of 0. For an
    input with mean 0 and variance 1, ``x * m + alpha' * (1 - m)`` has mean ``p * alpha'`` and
    variance ``q + p * q * alpha'^2 = q * (1 + p * alpha'^2)``; the affine map ``a * . + b``
    brings them back to 0 and 1. Kept units have gradient ``a``, dropped ones 0. ``p = 1`` (``a``
    infinite) is an error.
    """
    p = _check_common(x, p, training, generator, allow_one=False)
    if not training or p == 0.0:
        return x
    q = 1.0 - p
    alpha_prime = -SELU_SCALE * SELU_ALPHA
    a = 1.0 / math.sqrt(q * (1.0 + p * alpha_prime**2))
    keep = _keep_mask(x.shape, q, x, generator).to(x.dtype)
    # a * (x m + alpha' (1 - m)) + b with b = -a alpha' p  ==  x (a m) + a alpha' (q - m)
    return x * (keep * a) + (q - keep) * (a * alpha_prime)


def __getattr__(name: str):
    # seeded_dropout lives in dropoutlib/seeded.py; imported lazily to avoid an import cycle.
    if name == "seeded_dropout":
        from dropoutlib.seeded import seeded_dropout

        return seeded_dropout
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
