"""Chapter 05's library: calibration (ECE and reliability data), the MC curve over passes, the
rank mapping of a foreign text, the SELU stack, the chapter's figures and experiment specs."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from dropoutlib import viz  # noqa: E402
from dropoutlib.data import map_by_rank  # noqa: E402
from dropoutlib.experiments.noise_and_uncertainty import selu_stack_moments  # noqa: E402
from dropoutlib.uncertainty import Calibration, calibration, mc_curve, mc_predict  # noqa: E402


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------
# calibration


def test_calibration_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.55, 0.45], [0.5, 0.5], [0.0, 1.0]])
    targets = torch.tensor([0, 1, 1, 0, 1, 1])
    cal = calibration(probs, targets, n_bins=4)  # bins [0, .25) [.25, .5) [.5, .75) [.75, 1]
    assert isinstance(cal, Calibration)
    # confidences .9 .8 .7 .55 .5 1.0; correct: yes no yes yes no (argmax 0 on a tie) yes
    assert cal.count.tolist() == [0, 0, 3, 3]
    torch.testing.assert_close(cal.confidence[2:], torch.tensor([1.75 / 3, 2.7 / 3]).double())
    torch.testing.assert_close(cal.accuracy[2:], torch.tensor([2 / 3, 2 / 3]).double())
    assert math.isnan(cal.confidence[0]) and math.isnan(cal.accuracy[1])
    want = (abs(2 - 1.75) + abs(2 - 2.7)) / 6
    assert cal.ece == pytest.approx(want)
    assert cal.edges.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_calibration_of_a_calibrated_sampler_is_small_and_of_an_overconfident_one_large():
    g = gen(0)
    n, v = 200_000, 4
    probs = torch.softmax(torch.randn(n, v, generator=g) * 2, -1)
    targets = torch.multinomial(probs, 1, generator=g).squeeze(1)  # y ~ p: calibrated
    assert calibration(probs, targets).ece < 0.01
    sharp = torch.softmax(torch.log(probs) * 3, -1)  # overconfident
    assert calibration(sharp, targets).ece > 0.1


def test_calibration_errors_and_shapes():
    with pytest.raises(ValueError, match="targets must have shape"):
        calibration(torch.ones(3, 2) / 2, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_bins must be a positive int"):
        calibration(torch.ones(3, 2) / 2, torch.zeros(3, dtype=torch.long), n_bins=0)
    with pytest.raises(ValueError, match="targets must be a tensor of integer"):
        calibration(torch.ones(3, 2) / 2, torch.zeros(3))
    with pytest.raises(ValueError, match="probs must be a floating-point"):
        calibration(torch.ones(3, 2, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    cal = calibration(torch.ones(2, 5, 3) / 3, torch.zeros(2, 5, dtype=torch.long))
    assert int(cal.count.sum()) == 10


# ------------------------------------------------------------------------------------------------
# mc_curve


def test_mc_curve_points_equal_mc_predict_with_as_many_passes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4)).eval()
    x = torch.randn(10, 5)
    y = torch.randint(0, 4, (10,), generator=gen(1))
    points = mc_curve(model, x, y, [1, 3, 8], seed=5)
    assert [pt.n for pt in points] == [1, 3, 8]
    for pt in points:
        ref = mc_predict(model, x, pt.n, seed=5)
        nll = float(F.nll_loss(ref.probs.log(), y))
        assert pt.nll == pytest.approx(nll, abs=1e-5)
        assert pt.predictive_entropy == pytest.approx(float(ref.predictive_entropy.mean()), 1e-5)
        assert pt.mutual_information == pytest.approx(float(ref.mutual_information.mean()), 1e-4)
        assert pt.accuracy == pytest.approx(float((ref.probs.argmax(-1) == y).float().mean()))
    assert points[0].mutual_information == pytest.approx(0.0, abs=1e-6)
    assert not model.training


def test_mc_curve_rejects_bad_arguments():
    model = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5))
    x, y = torch.randn(4, 2), torch.zeros(4, dtype=torch.long)
    for ns in ([], [2, 2], [0, 1], [1.0]):
        with pytest.raises(ValueError, match="ns must"):
            mc_curve(model, x, y, ns)
    with pytest.raises(ValueError, match="targets must have shape"):
        mc_curve(model, x, torch.zeros(5, dtype=torch.long), [1])
    with pytest.raises(ValueError, match="targets must be a tensor of integer"):
        mc_curve(model, x, y.float(), [1])


# ------------------------------------------------------------------------------------------------
# map_by_rank


def test_map_by_rank_maps_frequency_ranks():
    source = torch.tensor([7, 7, 7, 3, 3, 9, 1, 1, 1, 1])  # ranks: 1, 7, 3, 9
    target = torch.tensor([0, 0, 2, 2, 2, 5])  # ranks: 2, 0, 5
    out = map_by_rank(source, target)
    want = {1: 2, 7: 0, 3: 5, 9: 2}  # the 4th rank wraps to the 1st
    assert out.tolist() == [want[int(t)] for t in source]
    assert out.dtype == target.dtype
    # ties broken by the smaller id
    assert map_by_rank(torch.tensor([4, 2]), torch.tensor([1, 0])).tolist() == [1, 0]
    with pytest.raises(ValueError, match="source must be a non-empty 1-D"):
        map_by_rank(torch.tensor([[1]]), target)
    with pytest.raises(ValueError, match="target must hold integer"):
        map_by_rank(source, target.float())


# ------------------------------------------------------------------------------------------------
# the SELU stack


def test_selu_stack_alpha_keeps_moments_standard_does_not():
    none = selu_stack_moments("none", depth=16, width=128, n=1024)
    alpha = selu_stack_moments("alpha", depth=16, width=128, n=1024, p=0.1)
    standard = selu_stack_moments("standard", depth=16, width=128, n=1024, p=0.1)
    assert len(none) == 16
    for moments in (none, alpha):
        m, v = moments[-1]
        assert abs(m) < 0.1 and abs(v - 1) < 0.15
    m, v = standard[-1]
    assert abs(v - 1) > 0.15 or abs(m) > 0.1
    assert selu_stack_moments("alpha", depth=2, seed=1) == selu_stack_moments(
        "alpha", depth=2, seed=1
    )
    with pytest.raises(ValueError, match="kind must be"):
        selu_stack_moments("gaussian")
    with pytest.raises(ValueError, match="depth must be a positive int"):
        selu_stack_moments("none", depth=0)


# ------------------------------------------------------------------------------------------------
# figures


@pytest.mark.parametrize("lang", ["en", "ru", "zh"])
def test_chapter_05_figures_render(lang):
    if lang == "zh" and not viz.has_cjk_font():
        pytest.skip("no CJK font")
    stats = {k: selu_stack_moments(k, depth=3, width=16, n=32) for k in ("none", "alpha")}
    figs = [viz.plot_selu_moments(stats, lang)]
    figs.append(viz.plot_concrete_rates({"embd": [0.1], "ffn": [0.2, 0.3]}, lang, start=0.2))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 4))
    pred = mc_predict(model, torch.randn(20, 3), 4, seed=0)
    figs.append(viz.plot_mc_uncertainty({"val": pred, "shuffled": pred}, lang, n=4))
    y = torch.zeros(20, dtype=torch.long)
    cal = calibration(pred.probs, y)
    figs.append(viz.plot_reliability({"deterministic": cal, "mc 4": cal}, lang))
    points = mc_curve(model, torch.randn(20, 3), y, [1, 2, 4], seed=0)
    figs.append(viz.plot_mc_curve(points, lang, deterministic=1.0))
    for fig in figs:
        assert fig.axes and all(ax.get_xlabel() for ax in fig.axes)
        plt.close(fig)
    legend = [t.get_text() for t in figs[3].axes[0].get_legend().get_texts()]
    assert any(viz.label("n05_mc", lang, n=4) in t for t in legend)


# ------------------------------------------------------------------------------------------------
# the experiments


def test_chapter_05_experiment_specs():
    import dropoutlib.experiments as E

    for profile in ("smoke", "cpu", "gpu"):
        standard = E.data_constrained(profile, model={"dropout": 0.2})
        rdrop = E.specs("r-drop", profile)
        assert rdrop["standard"] == standard
        assert rdrop["r-drop"].model == standard.model
        assert rdrop["r-drop"].train.r_drop_alpha == 1.0
        mc = E.specs("mc-dropout", profile)
        assert mc["standard"] == standard and mc["none"] == E.data_constrained(profile)
        concrete = E.specs("concrete-dropout", profile)["concrete"].model
        assert (concrete.embd_kind, concrete.resid_kind, concrete.ffn_kind) == ("concrete",) * 3
        assert concrete.rates("resid") == [0.2] * concrete.n_layer
        assert concrete.rates("attn") == [0.0] * concrete.n_layer
