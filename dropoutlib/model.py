"""babyGPT v10: the character-level GPT the course studies, with every dropout site configurable.

babyGPT (simpx/buildyourownllm, ``babygpt_v10_dropout.py``) is Karpathy's "Let's build GPT"
model built up in small steps; v10 adds dropout at three sites per layer, the same three as
Karpathy's gpt.py:

1. the attention weights, after the softmax (``Head.dropout``);
2. the output of the attention projection, before the residual add (``MultiHeadAttention.dropout``);
3. the output of the feed-forward network, before the residual add (``FeedForward.dropout``).

There is no dropout on the embeddings. With the default :class:`GPTConfig` this file builds
exactly that model: same modules, same creation order (so ``torch.manual_seed(42)`` gives the
original's initial weights), default PyTorch initialisation, ``nn.Dropout`` at the three sites.

On top of the faithful model every site can be changed on its own: its rate (one for all
layers, one per layer, or a rule over depth), its kind (standard, locked, DropHead, DropPath,
Gaussian, Concrete, LearnedDropout or DropConnect at the FFN), an embedding-dropout site (with
whole token types as one kind), and LayerDrop over whole blocks. ``attention="fused"`` swaps
the per-head modules for one QKV projection and ``F.scaled_dot_product_attention`` (the fast
path); it loads the same weights and gives the same eval output.

Shapes: B batch, T time (<= block_size), C = n_embd channels, H heads, D = C / H head size.
"""

from __future__ import annotations

import math
import numbers
import re
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib._base import check_known_fields, check_p

__all__ = [
    "GPTConfig",
    "Head",
    "MultiHeadAttention",
    "FusedAttention",
    "FeedForward",
    "Block",
    "BabyGPT",
    "convert_attention",
]

# The kinds each site accepts. "standard" is torch's nn.Dropout (see _make_site_dropout).
SITE_KINDS = {
    "embd": ("standard", "locked", "gaussian", "token", "concrete"),
    "attn": ("standard", "drophead", "gaussian"),
    "resid": ("standard", "locked", "droppath", "gaussian", "concrete"),
    "ffn": ("standard", "locked", "droppath", "gaussian", "learned", "dropconnect", "concrete"),
}
# Attention-site kinds the fused path can do: SDPA's own dropout_p on the attention weights, or
# DropHead on its (B, H, T, D) output. Noise on the weights other than Bernoulli needs the
# weights, which SDPA never materialises.
FUSED_ATTN_KINDS = ("standard", "drophead")
ATTENTIONS = ("heads", "fused")
INITS = ("pytorch", "gpt2")


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_choice(value, name: str, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _resolve_rates(value, name: str, n_layer: int, *, allow_one: bool = True) -> list[float]:
    """One rate per layer from a rate spec: a number (every layer), a list of ``n_layer``
    numbers, ``{"base": b, "step": s}`` (layer i gets b + i s, seed 000's rule) or
    ``{"first": a, "last": b}`` (linear in depth from a to b, stochastic depth's rule)."""
    if isinstance(value, dict):
        from dropoutlib.schedules import interpolate_rates, layerwise_rates

        keys = set(value)
        try:
            if keys == {"base", "step"}:
                rates = layerwise_rates(n_layer, value["base"], value["step"])
            elif keys == {"first", "last"}:
                rates = interpolate_rates(n_layer, value["first"], value["last"])
            else:
                raise ValueError(
                    f"a rule must have keys {{'base', 'step'}} or {{'first', 'last'}}, "
                    f"got {sorted(keys)}"
                )
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        return [check_p(r, f"{name}[{i}]", allow_one=allow_one) for i, r in enumerate(rates)]
    if isinstance(value, (list, tuple)):
        if len(value) != n_layer:
            raise ValueError(
                f"{name} must have one rate per layer (n_layer={n_layer}), got {len(value)}"
            )
        return [check_p(r, f"{name}[{i}]", allow_one=allow_one) for i, r in enumerate(value)]
    return [check_p(value, name, allow_one=allow_one)] * n_layer


def _normalise_rate(value):
    """The JSON form of a rate spec: float, list of floats or dict (tuples become lists), so
    equal configs serialise (and hash, in the run cache) equally."""

    def number(v):
        is_real = isinstance(v, numbers.Real) and not isinstance(v, bool)
        return float(v) if is_real else v  # anything else is left for check_p to reject

    if isinstance(value, dict):
        return {k: number(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [number(v) for v in value]
    return number(value)


@dataclass
class GPTConfig:
    """Everything that defines a model. Defaults = babyGPT v10 (use :meth:`v10` / :meth:`v11`).

    JSON-serialisable through ``dataclasses.asdict``; :meth:`from_dict` reads it back.

    Rates: ``dropout`` is the global rate. The per-layer sites ``attn_dropout``,
    ``resid_dropout`` and ``ffn_dropout`` use it when left at ``None``, or take their own spec.
    A spec is a number (all layers), a list of ``n_layer`` numbers,
    ``{"base": b, "step": s}`` (layer i: b + i s, :func:`dropoutlib.schedules.layerwise_rates`)
    or ``{"first": a, "last": b}`` (linear from a to b,
    :func:`dropoutlib.schedules.interpolate_rates`).
    ``embd_dropout`` is one number; 0 (v10) means there is no module there at all, so
    schedulers that set every dropout module leave it off.

    Kinds (what drops at a site):
      * ``embd_kind``: ``"standard"`` | ``"locked"`` | ``"gaussian"`` | ``"concrete"`` on
        ``tok_emb + pos_emb``; ``"token"``: embedding (word-type) dropout, whole token types
        of ``tok_emb`` only (:class:`dropoutlib.TokenTypeDropout`).
      * ``attn_kind``: ``"standard"`` (dropout on the attention weights, v10), ``"drophead"``
        (whole heads of the (B, H, T, D) attention output), ``"gaussian"`` (heads path only).
      * ``resid_kind``: ``"standard"`` | ``"locked"`` | ``"droppath"`` | ``"gaussian"`` on the
        attention branch after its projection.
      * ``ffn_kind``: same as resid, plus ``"learned"``: LearnedDropout(n_embd, n_head,
        **learned_dropout) in place of a fixed rate (``ffn_dropout`` must then stay None), and
        ``"dropconnect"``: DropConnect on the weights of both FFN linear layers
        (:class:`dropoutlib.DropConnectLinear`, one mask per forward) instead of dropout on the
        FFN output.
      * ``"concrete"`` (embd, resid, ffn): :class:`dropoutlib.ConcreteDropout` with the site's
        rate as the initial value of a rate learned per layer (``in_features = n_embd``); the
        rate must be in (0, 1). The trainer adds its regulariser to the loss
        (:mod:`dropoutlib.train.objective`).
    ``layerdrop``: probability of skipping each whole block while training (Fan et al. 2019).
    """

    vocab_size: int
    block_size: int = 8
    n_embd: int = 32
    n_head: int = 4
    n_layer: int = 3
    dropout: float | list | dict = 0.2
    bias: bool = True  # biases of proj, FFN, LayerNorms and lm_head (key/query/value never)
    init: str = "pytorch"  # "pytorch": torch defaults, as babyGPT; "gpt2": gpt.py's N(0, 0.02)
    attention: str = "heads"  # "heads": babyGPT's per-head modules; "fused": one QKV + SDPA

    embd_dropout: float = 0.0
    embd_kind: str = "standard"
    attn_dropout: float | list | dict | None = None
    attn_kind: str = "standard"
    resid_dropout: float | list | dict | None = None
    resid_kind: str = "standard"
    ffn_dropout: float | list | dict | None = None
    ffn_kind: str = "standard"
    layerdrop: float = 0.0
    learned_dropout: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_embd", "n_head", "n_layer"):
            setattr(self, name, _check_positive_int(getattr(self, name), name))
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd must be divisible by n_head, "
                f"got n_embd={self.n_embd}, n_head={self.n_head}"
            )
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be True or False, got {self.bias!r}")
        _check_choice(self.init, "init", INITS)
        _check_choice(self.attention, "attention", ATTENTIONS)
        for site, kinds in SITE_KINDS.items():
            _check_choice(getattr(self, f"{site}_kind"), f"{site}_kind", kinds)
        if self.attention == "fused" and self.attn_kind not in FUSED_ATTN_KINDS:
            raise ValueError(
                f"attn_kind={self.attn_kind!r} needs the attention weights, which "
                f'attention="fused" never builds; use attention="heads", or attn_kind one of '
                f"{', '.join(map(repr, FUSED_ATTN_KINDS))}"
            )

        for name in ("dropout", "attn_dropout", "resid_dropout", "ffn_dropout"):
            setattr(self, name, _normalise_rate(getattr(self, name)))
        _resolve_rates(self.dropout, "dropout", self.n_layer)
        for site in ("attn", "resid", "ffn"):
            self.rates(site)  # validates the spec and, for Gaussian noise, p < 1
        self.embd_dropout = check_p(
            self.embd_dropout,
            "embd_dropout",
            allow_one=self.embd_kind not in ("gaussian", "concrete"),
        )
        for site in ("attn", "resid", "ffn"):
            if getattr(self, f"{site}_kind") == "concrete" and 0.0 in self.rates(site):
                raise ValueError(
                    f'{site}_kind="concrete" learns its rate from an initial value in (0, 1), '
                    f"got {site} rates {self.rates(site)}"
                )
        self.layerdrop = check_p(self.layerdrop, "layerdrop")

        if not isinstance(self.learned_dropout, dict):
            raise ValueError(f"learned_dropout must be a dict, got {self.learned_dropout!r}")
        self.learned_dropout = dict(self.learned_dropout)
        if self.ffn_kind == "learned" and self.ffn_dropout is not None:
            raise ValueError(
                'ffn_dropout must be None with ffn_kind="learned": LearnedDropout learns its '
                f"mask and has no rate, got ffn_dropout={self.ffn_dropout!r}"
            )
        if self.ffn_kind != "learned" and self.learned_dropout:
            raise ValueError(
                f'learned_dropout options are used only with ffn_kind="learned", got '
                f"ffn_kind={self.ffn_kind!r} and learned_dropout={self.learned_dropout!r}"
            )
        if self.ffn_kind == "learned":
            # Catch a misspelt option now, not when a model is built; values are checked by
            # LearnedDropout itself (building one here would draw from the global RNG).
            import inspect

            from dropoutlib.learned import LearnedDropout

            allowed = set(inspect.signature(LearnedDropout).parameters) - {"n_embd", "n_head"}
            unknown = sorted(set(self.learned_dropout) - allowed)
            if unknown:
                raise ValueError(
                    f"learned_dropout has unknown option(s) {unknown}; allowed: {sorted(allowed)}"
                )

    def rates(self, site: str) -> list[float]:
        """The ``n_layer`` drop rates of ``site`` ("attn", "resid" or "ffn"), layer 0 first.
        For ``ffn_kind="learned"`` these are unused (the module learns its mask)."""
        _check_choice(site, "site", ("attn", "resid", "ffn"))
        spec = getattr(self, f"{site}_dropout")
        name = f"{site}_dropout"
        if spec is None:
            spec, name = self.dropout, "dropout"
        allow_one = getattr(self, f"{site}_kind") not in ("gaussian", "concrete")
        return _resolve_rates(spec, name, self.n_layer, allow_one=allow_one)

    @classmethod
    def v10(cls, vocab_size: int, **overrides) -> GPTConfig:
        """babyGPT v10: n_embd 32, 4 heads, 3 layers, context 8, dropout 0.2 at 3 sites."""
        base = dict(block_size=8, n_embd=32, n_head=4, n_layer=3, dropout=0.2)
        return cls(vocab_size=vocab_size, **{**base, **overrides})

    @classmethod
    def v11(cls, vocab_size: int, **overrides) -> GPTConfig:
        """babyGPT v11 = the scale of Karpathy's gpt.py: n_embd 384, 6 heads, 6 layers,
        context 256, dropout 0.2."""
        base = dict(block_size=256, n_embd=384, n_head=6, n_layer=6, dropout=0.2)
        return cls(vocab_size=vocab_size, **{**base, **overrides})

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        """Inverse of ``dataclasses.asdict`` (also after a JSON round trip)."""
        check_known_fields(cls, d)
        return cls(**d)


# ------------------------------------------------------------------------------------------------
# The dropout at one site


def _make_site_dropout(kind: str, p: float, n_embd: int | None = None) -> nn.Module:
    """The module for a site of a fixed-rate kind.

    "standard" is ``torch.nn.Dropout``, not ``dropoutlib.Dropout``: it is what babyGPT uses, it
    consumes the global RNG exactly as the original does (a seeded run reproduces the
    original's masks), and every tool already knows it (``model.eval()``, dropoutlib's
    schedulers, which find ``_DropoutNd``). The other kinds come from :mod:`dropoutlib.layers`.
    """
    if kind == "standard":
        return nn.Dropout(p)
    from dropoutlib import layers

    if kind == "locked":
        return layers.LockedDropout(p)  # one mask per sequence, shared over time; (B, T, C)
    if kind == "droppath":
        return layers.DropPath(p)  # the whole residual branch, per sample
    if kind == "drophead":
        return layers.DropHead(p)  # whole heads, per sample; (B, H, T, D)
    if kind == "gaussian":
        return layers.GaussianDropout(p)  # multiplicative N(1, p / (1 - p)) noise
    if kind == "concrete":
        return layers.ConcreteDropout(p, in_features=n_embd)  # p learned, p is its start
    raise ValueError(f"no fixed-rate dropout module for kind {kind!r}")


# ------------------------------------------------------------------------------------------------
# The model


class Head(nn.Module):
    """One head of causal self-attention; dropout site 1 acts on its softmaxed weights."""

    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        head_size = config.n_embd // config.n_head
        # Created in babyGPT's order (key, query, value) so a seeded init matches the original.
        self.key = nn.Linear(config.n_embd, head_size, bias=False)
        self.query = nn.Linear(config.n_embd, head_size, bias=False)
        self.value = nn.Linear(config.n_embd, head_size, bias=False)
        # A buffer, not a parameter: the causal mask is fixed. Persistent, as in the original.
        self.register_buffer("tril", torch.tril(torch.ones(config.block_size, config.block_size)))
        drops_weights = config.attn_kind in ("standard", "gaussian")
        p = config.rates("attn")[layer]
        self.dropout = _make_site_dropout(config.attn_kind, p) if drops_weights else nn.Identity()

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)  # (B, T, D)
        q = self.query(x)  # (B, T, D)
        v = self.value(x)  # (B, T, D)
        # Scaled by 1/sqrt(D) so the softmax does not saturate as D grows.
        wei = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))  # (B, T, T)
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # no peeking ahead
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)  # site 1: randomly cut who-attends-to-whom links
        return wei @ v  # (B, T, D)


class MultiHeadAttention(nn.Module):
    """``n_head`` :class:`Head` modules side by side, concatenated, projected back to C.

    Dropout site 2 (``self.dropout``) acts on the projection's output, before the residual add.
    With ``attn_kind="drophead"`` whole heads are dropped (``self.head_dropout``) before the
    projection instead of links inside them.
    """

    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        self.heads = nn.ModuleList([Head(config, layer) for _ in range(config.n_head)])
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = _make_site_dropout(
            config.resid_kind, config.rates("resid")[layer], config.n_embd
        )
        self.drop_heads = config.attn_kind == "drophead"
        if self.drop_heads:
            self.head_dropout = _make_site_dropout("drophead", config.rates("attn")[layer])

    def forward(self, x):
        if self.drop_heads:
            out = torch.stack([h(x) for h in self.heads], dim=1)  # (B, H, T, D)
            out = self.head_dropout(out)
            out = out.transpose(1, 2).flatten(2)  # (B, T, H*D), the same order as torch.cat
        else:
            out = torch.cat([h(x) for h in self.heads], dim=-1)  # (B, T, C)
        return self.dropout(self.proj(out))  # site 2


class FusedAttention(nn.Module):
    """The same attention as :class:`MultiHeadAttention`, computed in one go: one QKV
    projection and ``F.scaled_dot_product_attention`` (flash / memory-efficient kernels).

    ``qkv.weight`` is the heads' query, key and value weights stacked ``[q_0..q_{H-1},
    k_0..k_{H-1}, v_0..v_{H-1}]`` (see :func:`convert_attention`).

    The attention-weight rate lives in ``self.attn_dropout`` (an ``nn.Dropout`` that is never
    called, only read), so schedulers can change it like any other site. SDPA applies dropout
    whenever ``dropout_p > 0`` whatever the module's mode, so ``dropout_p`` is taken as 0 unless
    ``self.attn_dropout`` is in training mode: evaluation can never drop (the bug nanoGPT fixed in
    its PR #240 and the Learned Dropout baselines kept). Reading the mode of the dropout module,
    not of this block, lets :func:`dropoutlib.uncertainty.mc_dropout` (which switches on dropout
    modules only) sample attention dropout here exactly as it does with ``attention="heads"``.
    """

    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        p_attn = config.rates("attn")[layer]
        self.drop_heads = config.attn_kind == "drophead"
        self.attn_dropout = nn.Dropout(0.0 if self.drop_heads else p_attn)
        if self.drop_heads:
            self.head_dropout = _make_site_dropout("drophead", p_attn)
        self.dropout = _make_site_dropout(
            config.resid_kind, config.rates("resid")[layer], config.n_embd
        )

    @property
    def attn_dropout_p(self) -> float:
        return self.attn_dropout.p

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))
        p_attn = self.attn_dropout_p if self.attn_dropout.training else 0.0
        out = F.scaled_dot_product_attention(  # (B, H, T, D); scale 1/sqrt(D) as in Head
            q, k, v, is_causal=True, dropout_p=p_attn
        )
        if self.drop_heads:
            out = self.head_dropout(out)
        out = out.transpose(1, 2).reshape(B, T, C)
        return self.dropout(self.proj(out))  # site 2


class FeedForward(nn.Module):
    """Linear(C, 4C), ReLU, Linear(4C, C), then dropout site 3.

    (babyGPT and gpt.py spell the class ``FeedFoward``.) The layers keep the original's
    ``net.0`` / ``net.2`` names; the dropout sits outside ``net`` because LearnedDropout takes a
    second input (the embedding).
    """

    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias),
            nn.ReLU(),
            nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias),
        )
        self.learned = config.ffn_kind == "learned"
        if self.learned:
            from dropoutlib.learned import LearnedDropout  # optional part of the library

            self.dropout = LearnedDropout(config.n_embd, config.n_head, **config.learned_dropout)
        elif config.ffn_kind == "dropconnect":
            # DropConnect drops weights, not activations: both linear layers draw a mask over
            # their weight at every forward (sharing the parameters built above, so names and a
            # seeded init are those of the standard model), and the output site does nothing.
            from dropoutlib.layers import DropConnectLinear

            p = config.rates("ffn")[layer]
            for i in (0, 2):
                self.net[i] = DropConnectLinear.from_linear(self.net[i], p)
            self.dropout = nn.Identity()
        else:
            self.dropout = _make_site_dropout(
                config.ffn_kind, config.rates("ffn")[layer], config.n_embd
            )

    def forward(self, x, embed=None):
        x = self.net(x)
        return self.dropout(x, embed) if self.learned else self.dropout(x)  # site 3


class Block(nn.Module):
    """Transformer block, pre-LayerNorm: ``x + sa(ln1(x))``, then ``x + ffwd(ln2(x))``.

    ``embed`` (the embedding output) is passed down to the FFN for LearnedDropout with
    ``input="embed"``; the other kinds ignore it.
    """

    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        attention = FusedAttention if config.attention == "fused" else MultiHeadAttention
        self.sa = attention(config, layer)
        self.ffwd = FeedForward(config, layer)
        self.ln1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.ln2 = nn.LayerNorm(config.n_embd, bias=config.bias)

    def forward(self, x, embed=None):
        x = x + self.sa(self.ln1(x))
        x = x + self.ffwd(self.ln2(x), embed)
        return x


class BabyGPT(nn.Module):
    """babyGPT v10: token + position embeddings, ``n_layer`` blocks, final LayerNorm, and a
    linear head to vocabulary logits (with bias, no weight tying)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.block_size = config.block_size
        self.token_embedding_table = nn.Embedding(config.vocab_size, config.n_embd)
        # The original spells it "postion_embedding_table".
        self.position_embedding_table = nn.Embedding(config.block_size, config.n_embd)
        # v10 has no embedding dropout: rate 0 builds nothing, not even an nn.Dropout(0).
        # embd_kind="token" drops whole token types of tok_emb (before pos_emb is added).
        self._drop_token_types = config.embd_kind == "token" and config.embd_dropout > 0
        if self._drop_token_types:
            from dropoutlib.layers import TokenTypeDropout

            self.embd_dropout = TokenTypeDropout(config.embd_dropout, config.vocab_size)
        elif config.embd_dropout > 0:
            self.embd_dropout = _make_site_dropout(
                config.embd_kind, config.embd_dropout, config.n_embd
            )
        else:
            self.embd_dropout = nn.Identity()
        # A ModuleList rather than babyGPT's nn.Sequential (same state-dict keys, blocks.0...)
        # so the forward can pass the embedding along. With LayerDrop the container is a
        # dropoutlib.LayerDrop, which skips whole blocks while training (keys blocks.blocks.0...;
        # load_state_dict accepts either form).
        blocks = [Block(config, i) for i in range(config.n_layer)]
        if config.layerdrop > 0:
            from dropoutlib.layers import LayerDrop

            self.blocks = LayerDrop(config.layerdrop, blocks)
        else:
            self.blocks = nn.ModuleList(blocks)
        self.ln_final = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=config.bias)
        self._pass_embed = config.ffn_kind == "learned"
        if config.init == "gpt2":
            self.apply(self._init_gpt2)

    @staticmethod
    def _init_gpt2(module):
        # gpt.py's _init_weights: N(0, 0.02) weights, zero biases; LayerNorms keep (1, 0).
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Number of parameters, embeddings and lm_head included (what babyGPT / gpt.py print)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx, targets=None):
        """``idx`` (B, T) token ids -> ``(logits (B, T', V), loss)``, ``T' = min(T, block_size)``.

        Like babyGPT, only the last ``block_size`` tokens are used (``targets`` is cropped the
        same way). ``loss`` is the mean cross-entropy over every position, ``None`` without
        targets. Unlike babyGPT, logits keep their (B, T', V) shape when targets are given.
        """
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.is_floating_point():
            raise ValueError(
                "idx must be a 2-D tensor of integer token ids (batch, time), got "
                f"{tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__}"
            )
        if idx.size(1) == 0:
            raise ValueError("idx must hold at least one token per sequence, got time length 0")
        if targets is not None and targets.shape != idx.shape:
            raise ValueError(
                f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}"
            )
        T = min(idx.size(1), self.block_size)
        idx = idx[:, -T:]

        tok_emb = self.token_embedding_table(idx)  # (B, T, C)
        pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))  # (T, C)
        if self._drop_token_types:
            x = self.embd_dropout(tok_emb, idx) + pos_emb  # whole token types dropped
        else:
            x = self.embd_dropout(tok_emb + pos_emb)
        embed = x if self._pass_embed else None
        if isinstance(self.blocks, nn.ModuleList):
            for block in self.blocks:
                x = block(x, embed)
        else:
            x = self.blocks(x, embed)  # LayerDrop: runs each block or skips it
        logits = self.lm_head(self.ln_final(x))  # (B, T, V)

        loss = None
        if targets is not None:
            targets = targets[:, -T:]
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k=None,
        generator: torch.Generator | None = None,
    ):
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T) and return (B, T + n).

        Sampling always runs in eval mode (every dropout off): the model is switched to eval
        for the call and put back in the mode it was in. (The original babyGPT sampled right
        after training, still in train mode, so its samples had dropout on.) Each step sees
        the last ``block_size`` tokens. ``temperature`` (> 0) divides the logits; ``top_k``
        (1..vocab_size) keeps the k most likely tokens; ``generator`` makes the draws
        reproducible.
        """
        if (
            isinstance(max_new_tokens, bool)
            or not isinstance(max_new_tokens, numbers.Integral)
            or max_new_tokens < 0
        ):
            raise ValueError(
                f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}"
            )
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, numbers.Real)
            or not math.isfinite(temperature)
            or temperature <= 0
        ):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        V = self.config.vocab_size
        if top_k is not None and (
            isinstance(top_k, bool)
            or not isinstance(top_k, numbers.Integral)
            or not 1 <= top_k <= V
        ):
            raise ValueError(f"top_k must be None or an integer in [1, {V}], got {top_k!r}")
        if (
            not isinstance(idx, torch.Tensor)
            or idx.dim() != 2
            or idx.is_floating_point()
            or idx.size(1) == 0
        ):
            raise ValueError(
                "idx must be a non-empty 2-D tensor of integer token ids (batch, time)"
            )

        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                logits, _ = self(idx[:, -self.block_size :])
                logits = logits[:, -1, :] / temperature  # (B, V): only the last position
                if top_k is not None:
                    kth = torch.topk(logits, top_k).values[:, -1, None]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = F.softmax(logits, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1, generator=generator)
                idx = torch.cat((idx, idx_next), dim=1)
        finally:
            self.train(was_training)
        return idx

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict`` that also accepts the other attention layout: a
        "heads" state dict loads into a fused model and back (see :func:`convert_attention`)."""
        state_dict = convert_attention(
            state_dict,
            self.config.attention,
            n_head=self.config.n_head,
            block_size=self.config.block_size,
        )
        # With or without LayerDrop the blocks are the same; only the container's keys differ.
        nested = not isinstance(self.blocks, nn.ModuleList)
        state_dict = OrderedDict(
            (re.sub(r"^blocks\.(blocks\.)?(?=\d)", "blocks.blocks." if nested else "blocks.", k), v)
            for k, v in state_dict.items()
        )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


# ------------------------------------------------------------------------------------------------
# Weight conversion between the two attention layouts

_HEAD_WEIGHT = re.compile(r"^(?P<prefix>.*?)heads\.(?P<h>\d+)\.(?P<kind>key|query|value)\.weight$")
_QKV_WEIGHT = re.compile(r"^(?P<prefix>.*\bsa\.)qkv\.weight$")


def convert_attention(state_dict, to: str, *, n_head: int | None = None, block_size=None):
    """Convert a BabyGPT state dict between ``attention="heads"`` and ``"fused"`` layouts.

    heads -> fused: each block's ``sa.heads.{h}.{query,key,value}.weight`` (D, C) are stacked
    into ``sa.qkv.weight`` (3C, C) as ``[q_0..q_{H-1}, k_0.., v_0..]``; the ``tril`` buffers
    are dropped (SDPA's ``is_causal`` replaces them). fused -> heads: the inverse, which needs
    ``n_head`` and rebuilds ``tril`` with ``block_size`` (taken from the position embedding
    when not given). A state dict already in the ``to`` layout is returned as a copy.
    """
    _check_choice(to, "to", ATTENTIONS)
    out = OrderedDict()
    if to == "fused":
        groups: dict[str, dict[int, dict[str, torch.Tensor]]] = {}
        for key, value in state_dict.items():
            m = _HEAD_WEIGHT.match(key)
            if m:
                heads = groups.setdefault(m["prefix"], {})
                heads.setdefault(int(m["h"]), {})[m["kind"]] = value
            elif re.match(r"^.*?heads\.\d+\.tril$", key):
                continue
            else:
                out[key] = value
        for prefix, heads in groups.items():
            order = sorted(heads)
            if order != list(range(len(order))) or any(len(heads[h]) != 3 for h in order):
                raise ValueError(f"incomplete heads under {prefix!r}: got heads {order}")
            if n_head is not None and len(order) != n_head:
                raise ValueError(f"{prefix!r} has {len(order)} heads, expected n_head={n_head}")
            out[prefix + "qkv.weight"] = torch.cat(
                [heads[h][kind] for kind in ("query", "key", "value") for h in order], dim=0
            )
        return out

    if n_head is None:
        raise ValueError('convert_attention(..., to="heads") needs n_head')
    n_head = _check_positive_int(n_head, "n_head")
    if block_size is None:
        pos = [v for k, v in state_dict.items() if k.endswith("position_embedding_table.weight")]
        if len(pos) != 1:
            raise ValueError('convert_attention(..., to="heads") needs block_size')
        block_size = pos[0].shape[0]
    for key, value in state_dict.items():
        m = _QKV_WEIGHT.match(key)
        if not m:
            out[key] = value
            continue
        three_c, C = value.shape
        if three_c != 3 * C or C % n_head != 0:
            raise ValueError(
                f"{key} has shape {tuple(value.shape)}, not (3C, C) with C % n_head == 0"
            )
        D = C // n_head
        q, k, v = value.split(C, dim=0)
        tril = torch.tril(torch.ones(block_size, block_size, device=value.device))
        for h in range(n_head):
            rows = slice(h * D, (h + 1) * D)
            out[f"{m['prefix']}heads.{h}.key.weight"] = k[rows]
            out[f"{m['prefix']}heads.{h}.query.weight"] = q[rows]
            out[f"{m['prefix']}heads.{h}.value.weight"] = v[rows]
            out[f"{m['prefix']}heads.{h}.tril"] = tril
    return out
