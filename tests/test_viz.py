"""Figures and widgets: label tables in three languages, no font warnings, correct data drawn."""

import string
import types
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from render import render_strictly  # noqa: E402

from dropoutlib import viz  # noqa: E402

LANGS = ("en", "ru", "zh")


def _fields(text):
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_label_tables_match_across_languages():
    for lang in ("ru", "zh"):
        assert viz.LABELS[lang].keys() == viz.LABELS["en"].keys()
        for key, text in viz.LABELS["en"].items():
            assert _fields(viz.LABELS[lang][key]) == _fields(text), (lang, key)
    # Prose labels are translated (labels such as "x {shape}" are code and stay as they are).
    for key in ("input", "mask", "kept", "mean", "activation", "step", "loss", "train", "val"):
        assert viz.LABELS["ru"][key] != viz.LABELS["en"][key] != viz.LABELS["zh"][key], key


def test_bad_lang_names_the_argument_and_choices():
    with pytest.raises(ValueError, match=r"lang must be one of 'en', 'ru', 'zh', got 'fr'"):
        viz.label("train", "fr")
    with pytest.raises(ValueError, match="lang must be one of"):
        viz.plot_masks((0.5,), "EN")


@pytest.mark.parametrize("lang", LANGS)
def test_plot_masks_renders_without_font_warnings(lang):
    if lang == "zh" and not viz.has_cjk_font():
        pytest.skip("Noto Sans CJK SC is not installed (Debian package fonts-noto-cjk)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = viz.plot_masks((0.1, 0.5, 0.9), lang)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert viz.label("input", lang) in titles
    assert any(t.startswith("p = 0.9") for t in titles)
    render_strictly(fig)


def test_plot_masks_draws_inverted_dropout():
    fig = viz.plot_masks((0.25, 0.75), "en", shape=(20, 30), seed=3)
    x = viz.activation_map((20, 30), seed=3)
    (x_img,) = fig.axes[0].get_images()
    assert torch.equal(torch.as_tensor(x_img.get_array()), x)
    # Axes with images, row by row: input, masks (top row), outputs (bottom row).
    axes = [ax for ax in fig.axes if ax.get_images()]
    masks = [torch.as_tensor(axes[i].get_images()[0].get_array()) for i in (1, 2)]
    outputs = [torch.as_tensor(axes[i].get_images()[0].get_array()) for i in (3, 4)]
    for p, m, y in zip((0.25, 0.75), masks, outputs):
        assert set(m.unique().tolist()) <= {0.0, 1.0}
        torch.testing.assert_close(y, x * m / (1 - p), rtol=0, atol=0)  # viz._masks' expression
    # One uniform sample for all p: a larger p drops a superset of what a smaller p drops.
    assert bool((masks[1] <= masks[0]).all())
    plt.close(fig)


def test_masks_keep_rate_matches_one_minus_p():
    x = torch.ones(200, 200)
    for p, m, _ in viz.standard_dropout._masks(x, (0.1, 0.5, 0.8), seed=0):
        n = m.numel()
        assert abs(float(m.mean()) - (1 - p)) < 6 * (p * (1 - p) / n) ** 0.5  # 6 binomial SEs


def test_plot_masks_rejects_bad_rates():
    with pytest.raises(ValueError, match=r"p_values\[i\] must be in \[0, 1\], got 1.5"):
        viz.plot_masks((0.2, 1.5))
    with pytest.raises(ValueError, match="p_values must hold at least one"):
        viz.plot_masks(())


def _fake_result(p, train, val):
    steps = range(0, 100 * len(train), 100)
    history = [{"step": s, "train_loss": t, "val_loss": v} for s, t, v in zip(steps, train, val)]
    return types.SimpleNamespace(history=history, model_config={"dropout": p})


@pytest.mark.parametrize("lang", LANGS)
def test_plot_losses_draws_curves_and_gap(lang):
    if lang == "zh" and not viz.has_cjk_font():
        pytest.skip("Noto Sans CJK SC is not installed (Debian package fonts-noto-cjk)")
    results = {
        "dropout 0.2": _fake_result(0.2, [3.0, 2.5, 2.2], [3.1, 2.7, 2.6]),
        "dropout 0.0": _fake_result(0.0, [3.0, 2.3, 1.9], [3.1, 2.8, 2.9]),
    }
    fig = viz.plot_losses(results, lang)
    ax, ax_gap = fig.axes
    assert len(ax.get_lines()) == 4
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == f"p = 0.2 · {viz.label('train', lang)}"
    assert legend[1] == f"p = 0.2 · {viz.label('val', lang)}"
    assert legend[2] == f"p = 0 · {viz.label('train', lang)}"
    gaps = [line.get_ydata() for line in ax_gap.get_lines() if len(line.get_xdata()) == 3]
    assert len(gaps) == 2
    assert list(gaps[0]) == pytest.approx([0.1, 0.2, 0.4])
    assert list(gaps[1]) == pytest.approx([0.1, 0.5, 1.0])
    assert ax.get_xlabel() == viz.label("step", lang)
    render_strictly(fig)


def test_plot_losses_skips_missing_values_and_rejects_empty():
    r = _fake_result(0.1, [3.0, 2.0], [3.2, 2.4])
    r.history.append({"step": 200, "train_loss": 1.5, "val_loss": None})
    fig = viz.plot_losses({"run": r}, "en")
    train_line, val_line = fig.axes[0].get_lines()
    assert list(train_line.get_xdata()) == [0, 100, 200]
    assert list(val_line.get_xdata()) == [0, 100]
    plt.close(fig)
    with pytest.raises(ValueError, match="results must hold at least one run"):
        viz.plot_losses({}, "en")


def test_chinese_without_cjk_font_falls_back_to_english_once(monkeypatch):
    monkeypatch.setattr(viz.core, "has_cjk_font", lambda: False)
    monkeypatch.setattr(viz.core, "_warned_no_cjk", False)
    with pytest.warns(UserWarning, match="fonts-noto-cjk"):
        fig = viz.plot_masks((0.5,), "zh")
    assert viz.label("input", "en") in [ax.get_title() for ax in fig.axes]
    plt.close(fig)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plt.close(viz.plot_masks((0.5,), "zh"))  # warned once per process, not per figure


def test_rc_params_lists_only_installed_fonts():
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for lang in LANGS:
        families = viz.rc_params(lang)["font.family"]
        assert set(families) <= installed
    if viz.has_cjk_font():
        assert viz.rc_params("zh")["font.family"][0] == viz.CJK_FONT
        assert viz.rc_params("ru")["font.family"][0] == viz.BASE_FONT


def test_dropout_widget_redraws_on_slider_change():
    pytest.importorskip("ipywidgets")
    w = viz.dropout_widget("ru", shape=(8, 8), p=0.2)
    slider, image = w.children
    assert slider.description == viz.label("drop_rate", "ru")
    first = image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    slider.value = 0.7
    assert image.value != first and image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert repr(w) == "dropout_widget(p=0.70)"  # the same text output in every language


def test_glue_is_silent_outside_ipython(capsys, monkeypatch):
    calls = []
    myst_nb = pytest.importorskip("myst_nb")

    monkeypatch.setattr(myst_nb, "glue", lambda *a, **k: calls.append((a, k)))
    viz.glue("value", 0.25)
    assert capsys.readouterr().out == "" and calls == []
    monkeypatch.setattr(viz.core, "_in_ipython", lambda: True)
    viz.glue("value", 0.25)
    assert calls == [(("value", 0.25), {"display": False})]
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        viz.glue("", 1.0)


def test_plot_losses_clips_the_untrained_loss_but_keeps_every_point():
    results = {"a": _fake_result(0.2, [9.0, 5.3, 5.0], [9.0, 5.6, 5.4])}
    fig = viz.plot_losses(results, "en")
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert 5.4 < high < 9.0 and low < 5.0  # later points visible, the first one above the axis
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[9.0, 5.3, 5.0], [9.0, 5.6, 5.4]]
    plt.close(fig)


def test_number_groups_thousands_as_each_edition_writes_them():
    assert viz.number(431069, "en") == viz.number(431069, "zh") == "431,069"
    assert viz.number(431069, "ru") == "431\u202f069"
    assert viz.number(1234567.891, "ru", ",.2f") == "1\u202f234\u202f567.89"
    assert viz.number(12, "ru") == "12"
    with pytest.raises(ValueError, match="lang must be one of"):
        viz.number(1, "de")


def test_label_tables_must_be_complete_and_new():
    with pytest.raises(ValueError, match="labels must be given for"):
        viz.add_labels({"en": {"x_new": "x"}})
    with pytest.raises(ValueError, match="labels for 'ru' differ in keys"):
        viz.add_labels({"en": {"x_new": "x"}, "ru": {"y_new": "y"}, "zh": {"x_new": "x"}})
    with pytest.raises(ValueError, match="keys already defined in the labels: \\['step'\\]"):
        viz.add_labels({lang: {"step": "s"} for lang in viz.LANGS})
