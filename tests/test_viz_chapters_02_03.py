"""The figures of chapters 02 and 03: they render in every language without font warnings and
draw the numbers of the runs they are given."""

import types

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from render import render_strictly  # noqa: E402

from dropoutlib import viz  # noqa: E402
from dropoutlib.experiments.dropout_in_transformers import SITES  # noqa: E402

LANGS = ("en", "ru", "zh")


def fake_run(p=0.0, width=64, tokens=10_000, rise=0.1, floor=2.8, params=159_937):
    """A run whose validation loss bottoms at step 240 and then rises by ``rise``."""
    history = []
    for i, step in enumerate(range(0, 601, 60)):
        val = 4.2 if i == 0 else floor + 0.3 / i + (rise * (step - 240) / 360 if step > 240 else 0)
        history.append(
            {
                "step": step,
                "epoch": step * 512 / tokens,
                "train_loss": 4.2 - 0.2 * i,
                "val_loss": val,
            }  # fmt: skip
        )
    return types.SimpleNamespace(
        history=history,
        model_config={"dropout": p, "n_embd": width},
        train_tokens=tokens,
        num_params=params,
    )


def texts(fig):
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)]


@pytest.mark.parametrize("lang", LANGS)
def test_site_ablation(lang):
    results = {site: fake_run(rise=0.1 - 0.01 * i) for i, site in enumerate(SITES)}
    fig = viz.plot_site_ablation(results, lang)
    ax_curves, ax_points, ax_train = fig.axes
    assert len(ax_curves.get_lines()) == len(SITES)
    labels = [t.get_text() for t in ax_points.get_yticklabels()]
    trains = ax_train.collections[0].get_offsets()[:, 0]
    assert list(trains) == [r.history[-1]["train_loss"] for r in results.values()]
    assert labels == [viz.site_name(site, lang) for site in SITES]
    assert viz.site_name("attention weights", "ru") == "веса внимания"
    assert viz.site_name("unknown", lang) == "unknown"
    render_strictly(fig)


@pytest.mark.parametrize("lang", LANGS)
def test_regimes_mark_where_a_run_overfits(lang):
    regimes = {
        "most": {"a": fake_run(tokens=1_003_854, rise=0.0), "b": fake_run(0.2, rise=0.0)},
        "few": {"a": fake_run(rise=0.1), "b": fake_run(0.2, rise=0.01)},
    }
    fig = viz.plot_regimes(regimes, lang)
    left, right = fig.axes
    # a dotted line where the overfitting run turns (step 240), none on the left
    dotted = [line for line in right.get_lines() if line.get_linestyle() == ":"]
    assert [line.get_xdata()[0] for line in dotted] == [240]
    assert not [line for line in left.get_lines() if line.get_linestyle() == ":"]
    assert viz.label("overfit_from", lang, step=240) in texts(fig)
    render_strictly(fig)


@pytest.mark.parametrize("lang", LANGS)
def test_epochs_sweep_and_width(lang):
    epochs = {
        f"{t} {p}": fake_run(p, tokens=t, rise=0.1 - p / 2)
        for t in (1_003_854, 50_000, 10_000)
        for p in (0.0, 0.1, 0.2)
    }
    fig = viz.plot_epochs(epochs, lang)
    for ax in fig.axes:
        assert ax.get_xscale() == "log" and len(ax.get_lines()) == 3
        xs = sorted(ax.get_lines()[0].get_xdata())
        assert xs == pytest.approx([600 * 512 / t for t in (1_003_854, 50_000, 10_000)])
    render_strictly(fig)

    sweep = {f"p {p}": fake_run(p, rise=0.1 - p / 4) for p in (0.0, 0.1, 0.2, 0.3, 0.5)}
    fig = viz.plot_rate_sweep(sweep, lang)
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [0.0, 0.1, 0.2, 0.3, 0.5]
    render_strictly(fig)

    widths = {
        f"{w} {p}": fake_run(p, width=w, floor=2.8 + w / 1000, params=w * 100)
        for w in (16, 32, 64)
        for p in (0.0, 0.1, 0.2)
    }
    fig = viz.plot_width_rates(widths, lang)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0] == viz.label("width_line", lang, width=16, params=viz.number(1600, lang))
    stars = [line for line in fig.axes[0].get_lines() if line.get_marker() == "*"]
    assert len(stars) == 3
    render_strictly(fig)


def test_empty_results_are_refused():
    for plot in (viz.plot_site_ablation, viz.plot_epochs, viz.plot_rate_sweep):
        with pytest.raises(ValueError, match="results must"):
            plot({}, "en")
