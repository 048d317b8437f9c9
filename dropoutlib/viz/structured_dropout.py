"""Chapter 04, structured dropout: each variant's mask next to standard dropout's, validation
curves of a comparison, and LayerDrop's pruning curve.

:func:`structured_masks` draws the masks with :mod:`dropoutlib.functional` and a seeded
``torch.Generator`` (the same picture on every machine); :func:`plot_structured_mask` shows one
variant against standard dropout on the same tensor. :func:`plot_val_curves` and
:func:`plot_pruning` draw the experiment's results.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from dropoutlib.viz.core import add_labels, figure_lang, label, rc_params

__all__ = [
    "STRUCTURED_KINDS",
    "structured_masks",
    "plot_structured_mask",
    "plot_val_curves",
    "plot_pruning",
]

STRUCTURED_KINDS = (
    "dropconnect",
    "spatial",
    "locked",
    "token",
    "droppath",
    "drophead",
    "layerdrop",
)

# The toy batch the pictures use: B = 4 sequences of T = 8 characters, C = 16 channels;
# H = 4 heads of D = 4 dimensions; L = 3 blocks.
TOY_TEXT = ("to be or", "not to b", "e: that ", "is the q")
_C, _H, _D, _L = 16, 4, 4, 3

_LABELS = {
    "en": {
        "s04_standard": "standard dropout",
        "s04_dropconnect": "DropConnect",
        "s04_spatial": "spatial dropout",
        "s04_locked": "locked dropout",
        "s04_token": "embedding dropout (token types)",
        "s04_droppath": "DropPath",
        "s04_drophead": "DropHead",
        "s04_layerdrop": "LayerDrop",
        "s04_none": "no dropout",
        "s04_mask_title": "What {name} drops, against standard dropout\n(p = {p:g}; white: kept)",
        "s04_kept": "kept {kept:.0%}",
        "s04_sample": "sequence {b}",
        "s04_channel": "channel c (index)",
        "s04_position": "position t (character)",
        "s04_head_dim": "head h · dimension d (index)",
        "s04_block_position": "block ℓ · position t (index)",
        "s04_in_unit": "input unit (index)",
        "s04_out_unit": "output unit (index)",
        "s04_weight_title": "DropConnect: mask on W, kept {kept:.0%} (no activation is dropped)",
        "s04_val_title": "Validation loss in the data-constrained setting",
        "s04_best_title": "Best validation loss of each run",
        "s04_best": "best validation loss (nats per character)",
        "s04_pruning_title": "Pruning blocks at inference\n"
        "(lines: mean over the choices of blocks; bands: best to worst choice)",
        "s04_removed": "blocks removed at inference (of {n})",
        "s04_pruning_loss": "validation loss (nats per character)",
    },
    "ru": {
        "s04_standard": "стандартный dropout",
        "s04_dropconnect": "DropConnect",
        "s04_spatial": "пространственный dropout",
        "s04_locked": "locked dropout",
        "s04_token": "dropout эмбеддингов (типы токенов)",
        "s04_droppath": "DropPath",
        "s04_drophead": "DropHead",
        "s04_layerdrop": "LayerDrop",
        "s04_none": "без dropout",
        "s04_mask_title": "Что отключает {name} по сравнению со стандартным dropout\n"
        "(p = {p:g}; белое\u00a0— сохранено)",
        "s04_kept": "сохранено {kept:.0%}",
        "s04_sample": "последовательность {b}",
        "s04_channel": "канал c (индекс)",
        "s04_position": "позиция t (символ)",
        "s04_head_dim": "голова h · измерение d (индекс)",
        "s04_block_position": "блок ℓ · позиция t (индекс)",
        "s04_in_unit": "входной нейрон (индекс)",
        "s04_out_unit": "выходной нейрон (индекс)",
        "s04_weight_title": "DropConnect: маска на W, сохранено {kept:.0%} "
        "(активации не отключаются)",
        "s04_val_title": "Потери на валидации в режиме ограниченных данных",
        "s04_best_title": "Лучшие потери на валидации в каждом запуске",
        "s04_best": "лучшие потери на валидации (нат на символ)",
        "s04_pruning_title": "Обрезка блоков при инференсе\n"
        "(линии\u00a0— среднее по выбору блоков; полосы\u00a0— от лучшего выбора до худшего)",
        "s04_removed": "обрезано блоков при инференсе (из {n})",
        "s04_pruning_loss": "потери на валидации (нат на символ)",
    },
    "zh": {
        "s04_standard": "标准暂退法",
        "s04_dropconnect": "DropConnect",
        "s04_spatial": "空间暂退法",
        "s04_locked": "锁定暂退法",
        "s04_token": "嵌入暂退法（词元类型）",
        "s04_droppath": "DropPath",
        "s04_drophead": "DropHead",
        "s04_layerdrop": "LayerDrop",
        "s04_none": "无暂退法",
        "s04_mask_title": "{name} 丢弃了什么：与标准暂退法对比\n（p = {p:g}；白色为保留）",
        "s04_kept": "保留 {kept:.0%}",
        "s04_sample": "序列 {b}",
        "s04_channel": "通道 c（索引）",
        "s04_position": "位置 t（字符）",
        "s04_head_dim": "头 h · 维度 d（索引）",
        "s04_block_position": "块 ℓ · 位置 t（索引）",
        "s04_in_unit": "输入单元（索引）",
        "s04_out_unit": "输出单元（索引）",
        "s04_weight_title": "DropConnect：W 上的掩码，保留 {kept:.0%}（不丢弃任何激活）",
        "s04_val_title": "数据受限设置下的验证损失",
        "s04_best_title": "各次运行的最佳验证损失",
        "s04_best": "最佳验证损失（nat/字符）",
        "s04_pruning_title": "推理时对块剪枝\n"
        "（曲线：各种选块方式的均值；色带：从最好到最差的选法）",
        "s04_removed": "推理时剪枝去掉的块数（共 {n} 块）",
        "s04_pruning_loss": "验证损失（nat/字符）",
    },
}
add_labels(_LABELS)


def _toy_ids() -> tuple[torch.Tensor, list[str]]:
    chars = sorted(set("".join(TOY_TEXT)))
    ids = torch.tensor([[chars.index(c) for c in s] for s in TOY_TEXT])
    return ids, chars


def structured_masks(kind: str, p: float = 0.3, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """The masks (1 = kept, 0 = dropped) of standard dropout and of variant ``kind`` on the
    tensor that ``kind`` acts on, drawn by :mod:`dropoutlib.functional` from generators seeded
    with ``seed`` (the variant) and ``seed + 1`` (standard dropout).

    Returns ``{"standard": ..., "variant": ...}``, each ``(B, rows, cols)`` with B = 4 sequences:

    * ``"spatial"``, ``"locked"``, ``"token"``: a ``(B, T, C)`` activation (T = 8 characters of
      :data:`TOY_TEXT`, C = 16 channels); ``"token"`` drops the token types of those characters;
    * ``"drophead"``: the ``(B, H, T, D)`` attention output, drawn as ``(B, T, H * D)``;
    * ``"droppath"``, ``"layerdrop"``: the residual branches of L = 3 blocks, ``(L, B, T, C)``,
      drawn as ``(B, L * T, C)``;
    * ``"dropconnect"``: standard dropout on the layer's ``(B, T, C)`` input, and DropConnect's
      mask on the weight ``W`` ``(C, C)`` (as ``(1, C, C)``): it masks no activation.
    """
    from dropoutlib import functional as DF
    from dropoutlib._base import check_p

    if kind not in STRUCTURED_KINDS:
        raise ValueError(f"kind must be one of {STRUCTURED_KINDS}, got {kind!r}")
    p = check_p(p, "p", allow_one=False)
    g = torch.Generator().manual_seed(seed)
    g_std = torch.Generator().manual_seed(seed + 1)
    B, T = len(TOY_TEXT), len(TOY_TEXT[0])

    def kept(y: torch.Tensor) -> torch.Tensor:
        return (y != 0).float()

    if kind in ("spatial", "locked", "token", "dropconnect"):
        ones = torch.ones(B, T, _C)
        standard = kept(DF.dropout(ones, p, generator=g_std))
        if kind == "spatial":
            variant = kept(DF.spatial_dropout(ones, p, generator=g, channel_dim=-1))
        elif kind == "locked":
            variant = kept(DF.locked_dropout(ones, p, generator=g, time_dim=1))
        elif kind == "token":
            ids, chars = _toy_ids()
            variant = kept(DF.token_type_dropout(ones, ids, p, num_types=len(chars), generator=g))
        else:
            # y = I (M * W / q)^T = (M / q)^T: the rows of the identity read the mask out.
            y = DF.drop_connect(torch.eye(_C), p, weight=torch.ones(_C, _C), generator=g)
            variant = kept(y).T.unsqueeze(0)
        return {"standard": standard, "variant": variant}
    if kind == "drophead":
        ones = torch.ones(B, _H, T, _D)
        standard = kept(DF.dropout(ones, p, generator=g_std))
        variant = kept(DF.drop_head(ones, p, generator=g))
        as_rows = lambda m: m.permute(0, 2, 1, 3).reshape(B, T, _H * _D)  # noqa: E731
        return {"standard": as_rows(standard), "variant": as_rows(variant)}
    ones = torch.ones(_L, B, T, _C)
    standard = kept(DF.dropout(ones, p, generator=g_std))
    if kind == "droppath":
        variant = torch.stack([kept(DF.drop_path(ones[i], p, generator=g)) for i in range(_L)])
    else:  # layerdrop: one coin per block for the whole batch, LayerDrop's rule (u >= p runs)
        run = (torch.rand(_L, generator=g) >= p).float()
        variant = run[:, None, None, None] * ones
    as_rows = lambda m: m.permute(1, 0, 2, 3).reshape(B, _L * T, _C)  # noqa: E731
    return {"standard": as_rows(standard), "variant": as_rows(variant)}


def _name(kind: str, lang: str) -> str:
    return label(f"s04_{kind}", lang)


def plot_structured_mask(kind: str, lang: str = "en", *, p: float = 0.3, seed: int = 0):
    """Standard dropout's mask (top row) and variant ``kind``'s (bottom row) on the same tensor,
    one panel per sequence of the toy batch (:func:`structured_masks`); white = kept, black =
    dropped, with the kept fraction in each row's label. Lines separate heads (DropHead) and
    blocks (DropPath, LayerDrop); for the ``(B, T, C)`` kinds each row is labelled with its
    character (␣ for a space)."""
    masks = structured_masks(kind, p, seed=seed)
    flang = figure_lang(lang)
    std, var = masks["standard"], masks["variant"]
    B = std.shape[0]
    T = len(TOY_TEXT[0])
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(
            2, B, figsize=(2.6 * B + 0.8, 6.0), squeeze=False, layout="constrained"
        )
        for row, (mask, who) in enumerate(((std, "standard"), (var, kind))):
            for b in range(B):
                ax = axes[row, b]
                if kind == "dropconnect" and row == 1:
                    if b == 0:
                        ax.imshow(mask[0].numpy(), cmap="gray", vmin=0, vmax=1)
                        title = label("s04_weight_title", flang, kept=float(mask.mean()))
                        ax.set_title(title, fontsize="small", loc="left")
                        ax.set_xlabel(label("s04_in_unit", flang))
                        ax.set_ylabel(label("s04_out_unit", flang))
                    else:
                        ax.axis("off")
                    continue
                ax.imshow(mask[b].numpy(), cmap="gray", vmin=0, vmax=1, aspect="auto")
                if row == 0:
                    ax.set_title(label("s04_sample", flang, b=b + 1), fontsize="small")
                if kind == "drophead":
                    for h in range(1, _H):
                        ax.axvline(h * _D - 0.5, color="C1", lw=1)
                if kind in ("droppath", "layerdrop"):
                    for i in range(1, _L):
                        ax.axhline(i * T - 0.5, color="C1", lw=1)
                if kind in ("token", "spatial", "locked", "dropconnect"):
                    ax.set_yticks(range(T))
                    chars = ["␣" if c == " " else c for c in TOY_TEXT[b]]
                    ax.set_yticklabels(chars, fontsize="x-small")
                else:
                    ax.set_yticks([])
                ax.set_xticks([])
                if b == 0:
                    name = _name(who, flang)
                    text = name + "\n" + label("s04_kept", flang, kept=float(mask.mean()))
                    ylab = {
                        "droppath": "s04_block_position",
                        "layerdrop": "s04_block_position",
                    }.get(kind, "s04_position")
                    ax.set_ylabel(text + "\n" + label(ylab, flang), fontsize="small")
                if row == 1 or (kind == "dropconnect" and row == 0):
                    xlab = "s04_head_dim" if kind == "drophead" else "s04_channel"
                    ax.set_xlabel(label(xlab, flang), fontsize="small")
        fig.suptitle(label("s04_mask_title", flang, name=_name(kind, flang), p=p))
    return fig


def _display(name: str, lang: str) -> str:
    key = f"s04_{name}"
    from dropoutlib.viz.core import LABELS

    return label(key, lang) if key in LABELS[lang] else name


def plot_val_curves(results: dict, lang: str = "en", *, title: str | None = None):
    """Validation loss against step for each run (left) and each run's best validation loss
    (right, lowest first). ``results`` maps a run name to a
    :class:`~dropoutlib.train.RunResult`; names that are keys of this chapter's label table
    (``"none"``, ``"standard"``, ``"droppath"``, ...) are shown in ``lang``, others as they are.
    ``title`` (already in ``lang``, e.g. from :func:`dropoutlib.viz.label`) replaces the left
    panel's default title."""
    if not results:
        raise ValueError("results must hold at least one run, got an empty dict")
    flang = figure_lang(lang)
    with plt.rc_context(rc_params(flang)):
        fig, (ax, ax_best) = plt.subplots(
            1, 2, figsize=(11.5, 4.4), layout="constrained", gridspec_kw={"width_ratios": [3, 2]}
        )
        bests = []
        for i, (name, result) in enumerate(results.items()):
            hist = [h for h in result.history if h.get("val_loss") is not None]
            steps = [h["step"] for h in hist]
            vals = [h["val_loss"] for h in hist]
            shown = _display(name, flang)
            style = "--" if name in ("none", "standard") else "-"
            ax.plot(steps, vals, style, color=f"C{i}", label=shown, lw=1.6)
            bests.append((min(vals[1:] or vals), shown, f"C{i}"))
        later = [h["val_loss"] for r in results.values() for h in r.history[1:] if "val_loss" in h]
        if later:
            lo, hi = min(later), max(later)
            span = max(hi - lo, 1e-6)
            ax.set_ylim(lo - 0.05 * span, hi + 0.1 * span)
        ax.set_xlabel(label("step", flang))
        ax.set_ylabel(label("loss", flang))
        ax.set_title(title if title is not None else label("s04_val_title", flang))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        bests.sort()
        ax_best.barh(
            range(len(bests)), [b[0] for b in bests], color=[b[2] for b in bests], alpha=0.85
        )
        ax_best.set_yticks(range(len(bests)))
        ax_best.set_yticklabels([b[1] for b in bests], fontsize="small")
        ax_best.invert_yaxis()
        lo = min(b[0] for b in bests)
        hi = max(b[0] for b in bests)
        ax_best.set_xlim(lo - 0.2 * max(hi - lo, 0.01), hi + 0.1 * max(hi - lo, 0.01))
        ax_best.set_xlabel(label("s04_best", flang))
        ax_best.set_title(label("s04_best_title", flang))
        ax_best.grid(alpha=0.3, axis="x")
    return fig


def plot_pruning(curves: dict, lang: str = "en"):
    """LayerDrop's pruning curve: validation loss against the number of blocks removed at
    inference, one line per model (mean over the subsets of that size) with a band from the
    best to the worst subset. ``curves`` maps a run name (shown as :func:`plot_val_curves`
    shows it) to the list of :class:`dropoutlib.pruning.PruningPoint` of
    :func:`dropoutlib.pruning.pruning_curve`."""
    if not curves:
        raise ValueError("curves must hold at least one model's pruning curve")
    flang = figure_lang(lang)
    with plt.rc_context(rc_params(flang)):
        fig, ax = plt.subplots(figsize=(7.5, 4.4), layout="constrained")
        n = 0
        for i, (name, points) in enumerate(curves.items()):
            x = [pt.removed for pt in points]
            n = max(n, max(x))
            shown = _display(name, flang)
            ax.plot(x, [pt.mean for pt in points], "-o", color=f"C{i}", label=shown)
            ax.fill_between(
                x, [pt.best for pt in points], [pt.worst for pt in points], color=f"C{i}", alpha=0.2
            )
        ax.set_xticks(range(n + 1))
        ax.set_xlabel(label("s04_removed", flang, n=n))
        ax.set_ylabel(label("s04_pruning_loss", flang))
        ax.set_title(label("s04_pruning_title", flang))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig
