"""Chapter 09, dropout at scale: what dropout costs (:mod:`dropoutlib.bench` results), the masks
of data-parallel ranks (:func:`dropoutlib.parallel.mask_streams`), and dropout next to the other
regularisers (experiment ``regularisers-data-constrained``)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from dropoutlib.viz.core import LABELS, add_labels, figure_lang, label, number, rc_params

__all__ = ["plot_bench", "plot_rank_masks", "plot_regularisers", "plot_site_costs", "reg_name"]

_LABELS = {
    "en": {
        "bench_title": (
            "What dropout costs: measured on {device} ({threads} threads), torch {torch}, {date}"
        ),
        "bench_speed": "Forward + backward speed",
        "bench_speed_x": "fraction of copy bandwidth (1 = as fast as a copy)",
        "bench_memory": "Saved for backward",
        "bench_memory_x": "bytes per input element",
        "bench_steps": "babyGPT training step",
        "bench_steps_x": "step time ÷ fused attention at p = 0",
        "bench_size": "x {shape}",
        "bench_setting": "block_size {block}",
        "bench_case:heads, dropout 0.2": "per-head attention, p = 0.2",
        "bench_case:heads, dropout 0": "per-head attention, p = 0",
        "bench_case:heads, LearnedDropout FFN": "per-head, LearnedDropout",
        "bench_case:fused, dropout 0.2": "fused attention, p = 0.2",
        "bench_case:fused, dropout 0": "fused attention, p = 0",
        "bench_case:fused, no dropout modules": "fused, no dropout modules",
        "bench_case:fused, LearnedDropout FFN": "fused, LearnedDropout",
        "bench_variant:nn.Dropout (native)": "nn.Dropout (native)",
        "bench_variant:dropout (generator)": "dropout (own generator)",
        "site_title": "Dropout {p:g} at one site of babyGPT: {device}, torch {torch}, {date}",
        "site_time": "Training step time",
        "site_time_x": "step time ÷ the same model without dropout",
        "site_memory": "Saved for backward",
        "site_memory_x": "extra bytes per token (over no dropout)",
        "site_combo": "{attention}, block_size {block}",
        "site_attention:heads": "per-head",
        "site_attention:fused": "fused SDPA",
        "site:embd only": "embedding",
        "site:attn only": "attention weights",
        "site:resid only": "attention output",
        "site:ffn only": "FFN output",
        "site:all four": "all four",
        "ranks_title": "Dropout masks of {n} data-parallel ranks (gloo), p = {p:g}",
        "ranks_row:shared": "one shared seed",
        "ranks_row:per_rank": "a seed per rank",
        "ranks_rank": "rank {rank}",
        "ranks_agree": "agree on {agree:.0%} of elements",
        "ranks_x": "hidden unit",
        "ranks_y": "sequence in the micro-batch",
        "reg_title": (
            "Regularisers on babyGPT, data-constrained: {chars} characters, {epochs:.0f} epochs"
        ),
        "reg_curves": "Validation loss",
        "reg_bars": "Validation loss: best (light) and final (dark)",
        "reg:none": "none",
        "reg:dropout": "dropout {value:g}",
        "reg:weight_decay": "weight decay {value:g}",
        "reg:label_smoothing": "label smoothing {value:g}",
        "reg:grad_clip": "gradient clipping {value:g}",
        "reg:token_mask_rate": "token masking {value:g}",
        "col:regulariser": "regulariser",
        "col:val_split": "validation (whole split)",
        "col:train_split": "train (whole subset)",
        "col:best_val": "best validation",
        "col:best_step": "at step",
        "col:last_val": "last validation",
    },
    "ru": {
        "bench_title": (
            "Во что обходится dropout: {device} (потоков: {threads}), torch {torch}, {date}"
        ),
        "bench_speed": "Скорость прямого и обратного прохода",
        "bench_speed_x": "доля от скорости копирования (1 = как при копировании)",
        "bench_memory": "Сохраняется для обратного прохода",
        "bench_memory_x": "байт на элемент входа",
        "bench_steps": "Шаг обучения babyGPT",
        "bench_steps_x": "время шага ÷ слитое при p = 0",
        "bench_size": "x {shape}",
        "bench_setting": "block_size {block}",
        "bench_case:heads, dropout 0.2": "внимание по головам, p = 0.2",
        "bench_case:heads, dropout 0": "внимание по головам, p = 0",
        "bench_case:heads, LearnedDropout FFN": "по головам, LearnedDropout",
        "bench_case:fused, dropout 0.2": "слитое внимание, p = 0.2",
        "bench_case:fused, dropout 0": "слитое внимание, p = 0",
        "bench_case:fused, no dropout modules": "слитое, без модулей dropout",
        "bench_case:fused, LearnedDropout FFN": "слитое, LearnedDropout",
        "bench_variant:nn.Dropout (native)": "nn.Dropout (встроенный)",
        "bench_variant:dropout (generator)": "dropout (свой генератор)",
        "site_title": "Dropout {p:g} в одном месте babyGPT: {device}, torch {torch}, {date}",
        "site_time": "Время шага обучения",
        "site_time_x": "время шага ÷ та же модель без dropout",
        "site_memory": "Сохраняется для обратного прохода",
        "site_memory_x": "лишние байты на токен (сверх модели без dropout)",
        "site_combo": "{attention}, block_size {block}",
        "site_attention:heads": "по головам",
        "site_attention:fused": "слитое SDPA",
        "site:embd only": "эмбеддинги",
        "site:attn only": "веса внимания",
        "site:resid only": "выход внимания",
        "site:ffn only": "выход FFN",
        "site:all four": "все четыре",
        "ranks_title": "Маски dropout {n} процессов параллелизма по данным (gloo), p = {p:g}",
        "ranks_row:shared": "один общий seed",
        "ranks_row:per_rank": "свой seed у каждого процесса",
        "ranks_rank": "процесс {rank}",
        "ranks_agree": "совпадают в {agree:.0%} элементов",
        "ranks_x": "скрытый нейрон",
        "ranks_y": "последовательность в микробатче",
        "reg_title": (
            "Регуляризаторы на babyGPT в режиме ограниченных данных: "
            "символов {chars}, эпох {epochs:.0f}"
        ),
        "reg_curves": "Потери на валидации",
        "reg_bars": "Потери на валидации: лучшие (светлые) и итоговые (тёмные)",
        "reg:none": "без регуляризации",
        "reg:dropout": "dropout {value:g}",
        "reg:weight_decay": "weight decay {value:g}",
        "reg:label_smoothing": "сглаживание меток {value:g}",
        "reg:grad_clip": "обрезка градиента {value:g}",
        "reg:token_mask_rate": "маскирование токенов {value:g}",
        "col:regulariser": "регуляризатор",
        "col:val_split": "валидация (вся выборка)",
        "col:train_split": "обучение (всё подмножество)",
        "col:best_val": "лучшая валидация",
        "col:best_step": "на шаге",
        "col:last_val": "последняя валидация",
    },
    "zh": {
        "bench_title": "暂退法的代价：测于 {device}（{threads} 个线程），torch {torch}，{date}",
        "bench_speed": "前向 + 反向速度",
        "bench_speed_x": "相对复制带宽的比例（1 = 与复制一样快）",
        "bench_memory": "为反向传播保存的数据",
        "bench_memory_x": "每个输入元素的字节数",
        "bench_steps": "babyGPT 单步训练",
        "bench_steps_x": "单步时间 ÷ 融合注意力（p = 0）",
        "bench_size": "x {shape}",
        "bench_setting": "block_size {block}",
        "bench_case:heads, dropout 0.2": "逐头注意力，p = 0.2",
        "bench_case:heads, dropout 0": "逐头注意力，p = 0",
        "bench_case:heads, LearnedDropout FFN": "逐头，LearnedDropout",
        "bench_case:fused, dropout 0.2": "融合注意力，p = 0.2",
        "bench_case:fused, dropout 0": "融合注意力，p = 0",
        "bench_case:fused, no dropout modules": "融合，无暂退模块",
        "bench_case:fused, LearnedDropout FFN": "融合，LearnedDropout",
        "bench_variant:nn.Dropout (native)": "nn.Dropout（原生）",
        "bench_variant:dropout (generator)": "dropout（自带生成器）",
        "site_title": "在 babyGPT 的单个位置使用暂退概率 {p:g}：{device}，torch {torch}，{date}",
        "site_time": "单步训练时间",
        "site_time_x": "单步时间 ÷ 无暂退的同一模型",
        "site_memory": "为反向传播保存的数据",
        "site_memory_x": "每个词元多出的字节数（相对无暂退）",
        "site_combo": "{attention}，block_size {block}",
        "site_attention:heads": "逐头",
        "site_attention:fused": "融合 SDPA",
        "site:embd only": "嵌入",
        "site:attn only": "注意力权重",
        "site:resid only": "注意力输出",
        "site:ffn only": "FFN 输出",
        "site:all four": "全部四处",
        "ranks_title": "{n} 个数据并行进程的暂退掩码（gloo），p = {p:g}",
        "ranks_row:shared": "共用一个种子",
        "ranks_row:per_rank": "每个进程一个种子",
        "ranks_rank": "进程 {rank}",
        "ranks_agree": "{agree:.0%} 的元素相同",
        "ranks_x": "隐藏单元",
        "ranks_y": "微批量中的序列",
        "reg_title": "数据受限时 babyGPT 上的正则化方法：{chars} 个字符，{epochs:.0f} 个迭代周期",
        "reg_curves": "验证损失",
        "reg_bars": "验证损失：最佳（浅色）与最终（深色）",
        "reg:none": "无正则化",
        "reg:dropout": "暂退概率 {value:g}",
        "reg:weight_decay": "权重衰减 {value:g}",
        "reg:label_smoothing": "标签平滑 {value:g}",
        "reg:grad_clip": "梯度裁剪 {value:g}",
        "reg:token_mask_rate": "词元掩蔽 {value:g}",
        "col:regulariser": "正则化方法",
        "col:val_split": "验证（整个验证集）",
        "col:train_split": "训练（整个训练子集）",
        "col:best_val": "最佳验证损失",
        "col:best_step": "所在步数",
        "col:last_val": "最后一次验证损失",
    },
}
add_labels(_LABELS)


def _bench_name(kind: str, name: str, lang: str) -> str:
    """A variant or model name as shown: translated where it is prose, else the code name."""
    key = f"bench_{kind}:{name}"
    return label(key, lang) if key in LABELS[lang] else name


def plot_bench(results: dict, lang: str = "en"):
    """The benchmark of :mod:`dropoutlib.bench` in three panels, from its JSON (a dict).

    Left: forward + backward speed of each variant as a fraction of a plain copy of the same
    tensors (the memory-bandwidth limit), one bar per activation size. Middle: bytes each variant
    keeps for backward per input element. Right: babyGPT training-step time of each model,
    relative to fused attention at p = 0, per setting. The title names the device, torch version
    and date of the measurement. Parts missing from ``results`` leave their panel out.
    """
    panels = [k for k in ("throughput", "memory", "steps") if results.get(k)]
    if not panels:
        raise ValueError("results has none of 'throughput', 'memory', 'steps': nothing to plot")
    flang = figure_lang(lang)
    env = results.get("env", {})
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(
            1, len(panels), figsize=(5.2 * len(panels), 5.6), layout="constrained", squeeze=False
        )
        for ax, panel in zip(axes[0], panels):
            if panel == "throughput":
                sizes = results["throughput"]
                names = [r["name"] for r in sizes[0]["rows"] if r["name"] != "copy (reference)"]
                height = 0.8 / len(sizes)
                for i, size in enumerate(sizes):
                    rows = {r["name"]: r for r in size["rows"]}
                    ys = [k + i * height for k in range(len(names))]
                    shape = "×".join(map(str, size["shape"]))
                    ax.barh(
                        ys,
                        [rows[n]["fraction_of_copy"] for n in names],
                        height=height,
                        color=f"C{i}",
                        label=label("bench_size", flang, shape=shape),
                    )
                ax.set_yticks([k + 0.4 - height / 2 for k in range(len(names))])
                ax.set_yticklabels([_bench_name("variant", n, flang) for n in names])
                ax.axvline(1.0, color="0.4", lw=0.8, ls="--")
                ax.set_xscale("log")
                ax.set_xlabel(label("bench_speed_x", flang))
                ax.set_title(label("bench_speed", flang))
            elif panel == "memory":
                rows = results["memory"]["rows"]
                ax.barh(range(len(rows)), [r["bytes_per_element"] for r in rows], color="C2")
                ax.set_yticks(range(len(rows)))
                ax.set_yticklabels([_bench_name("variant", r["name"], flang) for r in rows])
                for k, r in enumerate(rows):
                    ax.annotate(
                        f"{r['bytes_per_element']:.2g}",
                        (r["bytes_per_element"], k),
                        xytext=(3, 0),
                        textcoords="offset points",
                        va="center",
                        fontsize="small",
                    )
                ax.set_xlabel(label("bench_memory_x", flang))
                ax.set_title(label("bench_memory", flang))
            else:
                settings = results["steps"]
                names = [r["name"] for r in settings[0]["rows"]]
                height = 0.8 / len(settings)
                for i, s in enumerate(settings):
                    med = {r["name"]: r["median_s"] for r in s["rows"]}
                    base = med["fused, dropout 0"]
                    ks = [k for k, n in enumerate(names) if n in med]
                    ax.barh(
                        [k + i * height for k in ks],
                        [med[names[k]] / base for k in ks],
                        height=height,
                        color=f"C{i + 3}",
                        label=label("bench_setting", flang, block=s["config"]["block_size"]),
                    )
                ax.set_yticks([k + 0.4 - height / 2 for k in range(len(names))])
                ax.set_yticklabels([_bench_name("case", n, flang) for n in names])
                ax.axvline(1.0, color="0.4", lw=0.8, ls="--")
                ax.set_xlabel(label("bench_steps_x", flang))
                ax.set_title(label("bench_steps", flang))
            ax.invert_yaxis()
            ax.grid(axis="x", alpha=0.3)
            if panel != "memory":
                ax.legend(fontsize="small")
        fig.suptitle(
            label(
                "bench_title",
                flang,
                device=env.get("device_name", "?"),
                threads=env.get("threads", "?"),
                torch=env.get("torch_version", "?"),
                date=str(env.get("date", "?"))[:10],
            )
        )
    return fig


# --------------------------------------------------------------------------------------------
# What each site costs (bench part "sites")


def plot_site_costs(results: dict, lang: str = "en"):
    """The ``sites`` part of a :mod:`dropoutlib.bench` results dict in two panels.

    Left: the training-step time of babyGPT with dropout at one site (or all four), divided by
    the same model's step without dropout; one bar per setting and attention path. Right: the
    extra bytes autograd keeps for backward per token. The title names the device, torch and
    date of the measurement.
    """
    settings = results.get("sites")
    if not settings:
        raise ValueError(
            "results has no 'sites' part: run `python -m dropoutlib bench --parts sites`"
        )
    flang = figure_lang(lang)
    env = results.get("env", {})
    names = [r["name"] for r in settings[0]["rows"] if r["name"] != "no dropout"]
    height = 0.8 / len(settings)
    with plt.rc_context(rc_params(flang)):
        fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
        for i, s in enumerate(settings):
            rows = {r["name"]: r for r in s["rows"]}
            combo = label(
                "site_combo",
                flang,
                attention=label(f"site_attention:{s['attention']}", flang),
                block=s["config"]["block_size"],
            )
            ys = [k + i * height for k in range(len(names))]
            ax_t.barh(
                ys,
                [rows[n]["ratio_to_none"] for n in names],
                height=height,
                color=f"C{i}",
                label=combo,
            )
            ax_m.barh(
                ys,
                [rows[n]["extra_bytes_per_token"] for n in names],
                height=height,
                color=f"C{i}",
                label=combo,
            )
        for ax, xlabel, title in (
            (ax_t, "site_time_x", "site_time"),
            (ax_m, "site_memory_x", "site_memory"),
        ):
            ax.set_yticks([k + 0.4 - height / 2 for k in range(len(names))])
            ax.set_yticklabels([label(f"site:{n}", flang) for n in names])
            ax.invert_yaxis()
            ax.set_xlabel(label(xlabel, flang))
            ax.set_title(label(title, flang))
            ax.grid(axis="x", alpha=0.3)
        ax_t.axvline(1.0, color="0.4", lw=0.8, ls="--")
        ax_m.set_xscale("symlog", linthresh=100)
        ax_t.legend(fontsize="small")
        fig.suptitle(
            label(
                "site_title",
                flang,
                p=results.get("settings", {}).get("p", 0.2),
                device=env.get("device_name", "?"),
                torch=env.get("torch_version", "?"),
                date=str(env.get("date", "?"))[:10],
            )
        )
    return fig


# --------------------------------------------------------------------------------------------
# Data parallelism: the masks of the ranks


def plot_rank_masks(shared: dict, per_rank: dict, lang: str = "en"):
    """The first-step masks of every rank, one row per seeding (two results of
    :func:`dropoutlib.parallel.mask_streams`): white = kept, black = dropped; each row's title
    says how often the ranks agree."""
    flang = figure_lang(lang)
    rows = (("shared", shared), ("per_rank", per_rank))
    n = shared["masks"].shape[0]
    with plt.rc_context(rc_params(flang)):
        fig, axes = plt.subplots(
            2, n, figsize=(3.2 * n + 1, 4.6), layout="constrained", squeeze=False
        )
        for r, (key, result) in enumerate(rows):
            for rank in range(n):
                ax = axes[r][rank]
                ax.imshow(
                    result["masks"][rank].float().numpy(),
                    cmap="gray",
                    vmin=0,
                    vmax=1,
                    interpolation="nearest",
                    aspect="auto",
                )
                title = label("ranks_rank", flang, rank=rank)
                if rank == 0:
                    title = f"{label(f'ranks_row:{key}', flang)}: {title}"
                ax.set_title(title, fontsize="small")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 1:
                    ax.set_xlabel(label("ranks_x", flang))
                if rank == 0:
                    ax.set_ylabel(label("ranks_y", flang))
            axes[r][n - 1].text(
                1.03,
                0.5,
                label("ranks_agree", flang, agree=result["agreement"]),
                transform=axes[r][n - 1].transAxes,
                rotation=90,
                va="center",
                fontsize="small",
            )
        fig.suptitle(label("ranks_title", flang, n=n, p=shared["p"]))
    return fig


# --------------------------------------------------------------------------------------------
# The other regularisers (experiment "regularisers-data-constrained")

_REG_FIELDS = ("weight_decay", "label_smoothing", "grad_clip", "token_mask_rate")
_REG_BASE = {"weight_decay": 0.01, "label_smoothing": 0.0, "grad_clip": 0.0, "token_mask_rate": 0.0}


def reg_name(result, lang: str = "en") -> str:
    """A run's regulariser in ``lang``: the fields that differ from the unregularised
    data-constrained run (dropout rate; weight decay other than AdamW's 0.01; label smoothing,
    gradient clipping, token masking other than 0), joined; "none" when nothing differs."""
    mc = getattr(result, "model_config", None) or {}
    tc = getattr(result, "train_config", None) or {}
    parts = []
    p = mc.get("dropout", 0.0)
    if isinstance(p, (int, float)) and not isinstance(p, bool) and p > 0:
        parts.append(label("reg:dropout", lang, value=p))
    for field in _REG_FIELDS:
        value = tc.get(field, _REG_BASE[field])
        if value != _REG_BASE[field]:
            parts.append(label(f"reg:{field}", lang, value=value))
    return " + ".join(parts) if parts else label("reg:none", lang)


def plot_regularisers(results: dict, lang: str = "en"):
    """The runs of ``regularisers-data-constrained``: validation loss over training (left) and
    each run's best and final validation loss (right). ``results`` maps labels to
    :class:`dropoutlib.train.RunResult`; names come from :func:`reg_name`."""
    from dropoutlib.viz.curves import _curve, _focus_after_first_eval

    if not results:
        raise ValueError("results must hold at least one run, got an empty dict")
    flang = figure_lang(lang)
    first = next(iter(results.values()))
    with plt.rc_context(rc_params(flang)):
        fig, (ax, ax_b) = plt.subplots(
            1, 2, figsize=(12, 4.8), layout="constrained", gridspec_kw={"width_ratios": [3, 2]}
        )
        names = []
        for i, result in enumerate(results.values()):
            name = reg_name(result, flang)
            names.append(name)
            ax.plot(*_curve(result.history, "val_loss"), "-", color=f"C{i}", label=name)
            vals = [h["val_loss"] for h in result.history]
            ax_b.barh(i, min(vals), color=f"C{i}", alpha=0.35)
            ax_b.barh(i, vals[-1], color=f"C{i}", height=0.4)
        _focus_after_first_eval(ax)
        ax.set_xlabel(label("step", flang))
        ax.set_ylabel(label("loss", flang))
        ax.set_title(label("reg_curves", flang))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        finals = [min(h["val_loss"] for h in r.history) for r in results.values()]
        lasts = [r.history[-1]["val_loss"] for r in results.values()]
        lo, hi = min(finals + lasts), max(finals + lasts)
        ax_b.set_xlim(lo - 0.15 * (hi - lo + 1e-6), hi + 0.1 * (hi - lo + 1e-6))
        ax_b.set_yticks(range(len(names)))
        ax_b.set_yticklabels(names)
        ax_b.invert_yaxis()
        ax_b.set_xlabel(label("loss", flang))
        ax_b.set_title(label("reg_bars", flang))
        ax_b.grid(axis="x", alpha=0.3)
        tc, mc = first.train_config, first.model_config
        if tc.get("train_tokens"):
            epochs = tc["max_iters"] * tc["batch_size"] * mc["block_size"] / tc["train_tokens"]
            chars = number(tc["train_tokens"], flang)
            fig.suptitle(label("reg_title", flang, chars=chars, epochs=epochs))
    return fig
