"""Fine-tuning: start from a finished run's weights, and LoRA adapters through PEFT.

* ``init_from``: the child run loads its parent's stored weights (checked against their sha256)
  before training; the optimizer starts fresh, as in any fine-tuning. The parent's key is part
  of the child's key. The two models must have the same architecture: rates and dropout kinds
  may differ (that is what fine-tuning with another dropout means), shapes may not.
* ``lora``: PEFT's ``LoraConfig`` on babyGPT's linear layers (``target_modules`` names such as
  ``query``, ``value`` (per-head attention), ``qkv`` (fused attention), ``proj``, ``net.0``,
  ``net.2``). PEFT freezes every base weight and adds ``W x + (alpha / r) B A dropout(x)``: its
  ``lora_dropout`` acts on the adapter's input only, the frozen path sees the undropped ``x``.
"""

from __future__ import annotations

import dataclasses

from torch import nn

__all__ = [
    "RATE_FIELDS",
    "add_lora",
    "build_model",
    "check_parent",
    "count_parameters",
    "lora_config",
]

# GPTConfig fields a fine-tuning run may change: rates, noise kinds without parameters, and the
# initialisation (overwritten by the parent's weights anyway). Everything else shapes weights.
RATE_FIELDS = (
    "dropout",
    "embd_dropout",
    "embd_kind",
    "attn_dropout",
    "attn_kind",
    "resid_dropout",
    "resid_kind",
    "ffn_dropout",
    "layerdrop",
    "init",
    "attention",  # heads <-> fused: BabyGPT.load_state_dict converts the weights
)


def lora_config(lora: dict):
    """PEFT's ``LoraConfig`` for a (validated) ``TrainConfig.lora`` dict."""
    try:
        from peft import LoraConfig
    except ImportError as err:  # pragma: no cover - peft is a dependency of the book extra
        raise ImportError("lora needs PEFT: pip install peft (the 'book' extra)") from err
    return LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=list(lora["target_modules"]),
        bias="none",
    )


def build_model(config, lora: dict | None = None) -> nn.Module:
    """``BabyGPT(config)``, with LoRA adapters injected when ``lora`` is given (then only the
    adapters require gradients). The returned module is the BabyGPT itself: its forward,
    ``generate`` and state dict work as usual, the adapters' weights included."""
    from dropoutlib.model import BabyGPT

    model = BabyGPT(config)
    return model if lora is None else add_lora(model, lora)


def add_lora(model: nn.Module, lora: dict) -> nn.Module:
    """Inject PEFT LoRA adapters into ``model`` (in place; returned for convenience): every base
    parameter is frozen, the adapters' ``A`` is drawn from the global RNG (Kaiming uniform) and
    ``B`` starts at zero, so the model computes exactly what it did before training."""
    from peft import get_peft_model

    try:
        return get_peft_model(model, lora_config(lora)).get_base_model()
    except ValueError as err:  # e.g. target modules not found
        linear = sorted(
            {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        )
        raise ValueError(
            f"lora['target_modules']={lora['target_modules']} do not fit this model ({err}); "
            f"its linear layers are named {linear}"
        ) from None


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def check_parent(parent, model_config) -> None:
    """Raise a ValueError naming the differing fields when ``parent`` (a RunResult) was not
    trained with the architecture of ``model_config``, or cannot be fine-tuned."""
    if parent.train_config.get("lora"):
        raise ValueError(
            f"init_from: run {parent.key[:12]} is a LoRA run; fine-tune from its base run instead"
        )
    child = dataclasses.asdict(model_config)
    differ = [
        f"{k} (parent {parent.model_config.get(k)!r}, this run {v!r})"
        for k, v in child.items()
        if k not in RATE_FIELDS and parent.model_config.get(k) != v
    ]
    if differ:
        raise ValueError(
            f"init_from: run {parent.key[:12]} has another architecture; its weights do not fit "
            f"this model. Differing GPTConfig fields: {'; '.join(differ)}"
        )
