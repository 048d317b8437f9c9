"""Chapter 09, dropout at scale: what dropout costs, from :mod:`dropoutlib.bench` results."""

from __future__ import annotations

import matplotlib.pyplot as plt

from dropoutlib.viz.core import LABELS, add_labels, figure_lang, label, rc_params

__all__ = ["plot_bench"]

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
