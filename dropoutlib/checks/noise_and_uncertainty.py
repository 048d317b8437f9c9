"""Chapter 05, noise and uncertainty: the checker of a student's MC-dropout prediction.

The student writes ``fn(model, x, n) -> (probs, predictive_entropy, mutual_information)``. The
checker runs it on a small classifier whose "dropout" module is scripted: in training mode it
adds the next of ``K`` fixed noise tensors (cycling), in eval mode it is the identity. With
``n = K`` passes the exact answer is known whichever pass the cycle starts at, so the checker can
compare to the last digit and still name the typical mistakes: dropout left off, ``model.train()``
(which also switches BatchNorm to batch statistics), logits averaged instead of probabilities,
entropies swapped, the mutual information's sign, the mode not restored.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib.checks.core import CheckFailed, add_hints, call, fn_name, run_checks

__all__ = ["check_mc_predict", "mc_predict_checks"]

_HINTS = {
    "en": {
        "n05_not_triple": "return three tensors (probs, predictive_entropy, mutual_information), "
        "got {got}",
        "n05_shapes": "for logits of shape {logits} expected probs {probs} and entropies {ent}, "
        "got {got}",
        "n05_not_probs": "probs must be probabilities: non-negative, each row summing to 1 "
        "(worst row sums to {worst:.4g}); average softmax outputs",
        "n05_dropout_off": "all your passes gave the same prediction (mutual information "
        "{mi:.2e}): dropout was off; keep the dropout modules in training mode during the "
        "passes (dropoutlib.mc_dropout)",
        "n05_batchnorm": "your passes used BatchNorm's batch statistics: model.train() switches "
        "every module, BatchNorm too; switch on the dropout modules only "
        "(dropoutlib.mc_dropout)",
        "n05_logits_mean": "probs is the softmax of the averaged logits; MC dropout averages the "
        "probabilities of the passes: mean of softmax, not softmax of mean",
        "n05_probs": "probs differ from the mean of the {n} passes' softmax by up to {err:.3g} "
        "(did you use exactly n passes?)",
        "n05_entropy_swapped": "predictive_entropy is the mean entropy of the passes; it is the "
        "entropy of the averaged prediction, H[mean p]",
        "n05_entropy_bits": "predictive_entropy is in bits; the course measures it in nats "
        "(natural logarithm)",
        "n05_entropy": "predictive_entropy differs from H[mean p] by up to {err:.3g}",
        "n05_mi_sign": "mutual_information has the wrong sign: it is H[mean p] - mean H[p], "
        "which is >= 0",
        "n05_mi": "mutual_information differs from H[mean p] - mean H[p] by up to {err:.3g}",
        "n05_one_pass": "with n = 1 there is a single pass and the mutual information must be 0; "
        "yours is up to {mi:.3g} (does your function use n?)",
        "n05_no_dropout": "for a model without dropout every pass agrees: probs must be the "
        "softmax of one pass and the mutual information 0 (error {err:.3g})",
        "n05_mode": "after your function the model's modes changed ({changed} modules): restore "
        "every module's training flag (model.eval() was on before the call)",
    },
    "ru": {
        "n05_not_triple": "верните три тензора (probs, predictive_entropy, mutual_information), "
        "а получено {got}",
        "n05_shapes": "для логитов формы {logits} ожидаются probs формы {probs} и энтропии формы "
        "{ent}, а получено {got}",
        "n05_not_probs": "probs должны быть вероятностями: неотрицательными, с суммой 1 в каждой "
        "строке (худшая строка даёт {worst:.4g}); усредняйте выходы softmax",
        "n05_dropout_off": "все проходы дали одно и то же предсказание (взаимная информация "
        "{mi:.2e}): dropout был выключен; держите модули dropout в режиме обучения во время "
        "проходов (dropoutlib.mc_dropout)",
        "n05_batchnorm": "проходы использовали статистики батча в BatchNorm: model.train() "
        "переключает все модули, в том числе BatchNorm; включайте только модули dropout "
        "(dropoutlib.mc_dropout)",
        "n05_logits_mean": "probs\u00a0— это softmax от усреднённых логитов; MC dropout "
        "усредняет вероятности проходов: среднее softmax, а не softmax среднего",
        "n05_probs": "probs отличаются от среднего softmax по {n} проходам на величину до "
        "{err:.3g} (проходов ровно n?)",
        "n05_entropy_swapped": "predictive_entropy\u00a0— средняя энтропия проходов, а нужна "
        "энтропия усреднённого предсказания H[mean p]",
        "n05_entropy_bits": "predictive_entropy посчитана в битах, а в курсе энтропию измеряют "
        "в натах (натуральный логарифм)",
        "n05_entropy": "predictive_entropy отличается от H[mean p] на величину до {err:.3g}",
        "n05_mi_sign": "у mutual_information не тот знак: это H[mean p] - mean H[p], величина >= 0",
        "n05_mi": "mutual_information отличается от H[mean p] - mean H[p] на величину до {err:.3g}",
        "n05_one_pass": "при n = 1 проход один, и взаимная информация должна быть равна 0; "
        "у вас она до {mi:.3g} (функция использует n?)",
        "n05_no_dropout": "у модели без dropout все проходы совпадают: probs должны равняться "
        "softmax одного прохода, а взаимная информация\u00a0— нулю (ошибка {err:.3g})",
        "n05_mode": "после вашей функции режимы модулей изменились (модулей: {changed}): "
        "верните каждому модулю его флаг training (до вызова был model.eval())",
    },
    "zh": {
        "n05_not_triple": "应返回三个张量 (probs, predictive_entropy, mutual_information)，"
        "实际得到 {got}",
        "n05_shapes": "对于形状为 {logits} 的 logits，probs 的形状应为 {probs}，熵的形状应为 "
        "{ent}，实际得到 {got}",
        "n05_not_probs": "probs 必须是概率：非负，且每行之和为 1（最差的一行之和为 "
        "{worst:.4g}）；请对 softmax 的输出取平均",
        "n05_dropout_off": "你的各次前向传播给出了完全相同的预测（互信息为 {mi:.2e}）："
        "暂退法没有打开；前向传播期间应让暂退模块处于训练模式（dropoutlib.mc_dropout）",
        "n05_batchnorm": "你的前向传播使用了 BatchNorm 的批量统计量：model.train() 会切换所有"
        "模块，包括 BatchNorm；只应打开暂退模块（dropoutlib.mc_dropout）",
        "n05_logits_mean": "probs 是平均 logits 的 softmax；蒙特卡洛暂退法平均的是各次传播的"
        "概率：先 softmax 再平均，而不是先平均再 softmax",
        "n05_probs": "probs 与 {n} 次传播的 softmax 均值最多相差 {err:.3g}（是否恰好用了 n "
        "次传播？）",
        "n05_entropy_swapped": "predictive_entropy 是各次传播熵的平均；它应当是平均预测的熵 "
        "H[mean p]",
        "n05_entropy_bits": "predictive_entropy 的单位是比特；本课程用 nat（自然对数）度量熵",
        "n05_entropy": "predictive_entropy 与 H[mean p] 最多相差 {err:.3g}",
        "n05_mi_sign": "mutual_information 的符号反了：它是 H[mean p] - mean H[p]，总是 >= 0",
        "n05_mi": "mutual_information 与 H[mean p] - mean H[p] 最多相差 {err:.3g}",
        "n05_one_pass": "n = 1 时只有一次传播，互信息必须为 0；你的最大为 {mi:.3g}"
        "（函数用到 n 了吗？）",
        "n05_no_dropout": "没有暂退法的模型每次传播都相同：probs 应等于一次传播的 softmax，"
        "互信息应为 0（误差 {err:.3g}）",
        "n05_mode": "调用你的函数之后模型的模式变了（{changed} 个模块）：请恢复每个模块的 "
        "training 标志（调用前是 model.eval()）",
    },
}
add_hints(_HINTS)

K = 4  # length of the scripted noise cycle = the number of passes the checker asks for
TOL = 1e-5


class _ScriptedDropout(nn.Dropout):
    """A stand-in dropout module: in training mode it adds the next of ``K`` fixed noise
    tensors (cycling), in eval mode it is the identity. An ``nn.Dropout`` to every tool, so
    :func:`dropoutlib.mc_dropout` and ``model.train()`` switch it like any dropout."""

    def __init__(self, script: torch.Tensor):
        super().__init__(0.5)
        self.script = script
        self.k = 0

    def forward(self, x):
        if not self.training:
            return x
        out = x + self.script[self.k % len(self.script)]
        self.k += 1
        return out


def _model(dropout: bool = True):
    g = torch.Generator().manual_seed(1234)
    n_in, hidden, classes, batch = 3, 8, 5, 6
    lin1, lin2 = nn.Linear(n_in, hidden), nn.Linear(hidden, classes)
    with torch.no_grad():
        for lin in (lin1, lin2):
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g))
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=g) * 0.3)
    layers = [lin1, nn.BatchNorm1d(hidden)]
    if dropout:
        layers.append(_ScriptedDropout(1.5 * torch.randn(K, batch, hidden, generator=g)))
    layers.append(lin2)
    model = nn.Sequential(*layers).eval()
    x = torch.randn(batch, n_in, generator=g)
    return model, x


def _reset(model):
    for m in model.modules():
        if isinstance(m, _ScriptedDropout):
            m.k = 0


def _entropy(p):
    return -(p * p.clamp_min(1e-30).log()).sum(-1)


@torch.no_grad()
def _passes(model, x, n, *, batchnorm_train=False):
    """The ``n`` passes' logits with only the scripted dropout on (or BatchNorm too)."""
    model = copy.deepcopy(model)
    _reset(model)
    model.eval()
    for m in model.modules():
        if isinstance(m, _ScriptedDropout) or (batchnorm_train and isinstance(m, nn.BatchNorm1d)):
            m.train()
    return torch.stack([model(x) for _ in range(n)])


def _answer(fn, model, x, n):
    _reset(model)
    out = call(fn, model, x, n)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        got = type(out).__name__ if not isinstance(out, (tuple, list)) else f"{len(out)} items"
        raise CheckFailed("n05_not_triple", got=got)
    if not all(isinstance(t, torch.Tensor) for t in out):
        raise CheckFailed("n05_not_triple", got=", ".join(type(t).__name__ for t in out))
    return [t.detach().double() for t in out]


def mc_predict_checks(fn):
    """The properties of ``fn(model, x, n) -> (probs, predictive_entropy, mutual_information)``
    as (name, check) pairs."""
    model, x = _model()
    logits = _passes(model, x, K).double()
    ps = F.softmax(logits, dim=-1)
    mean = ps.mean(0)
    predictive = _entropy(mean)
    mi = predictive - _entropy(ps).mean(0)
    state = {}

    def runs():
        state["out"] = _answer(fn, model, x, K)

    def shapes():
        probs, ent, info = state["out"]
        want = (tuple(mean.shape), tuple(predictive.shape))
        got = (tuple(probs.shape), tuple(ent.shape), tuple(info.shape))
        if got != (want[0], want[1], want[1]):
            raise CheckFailed(
                "n05_shapes", logits=tuple(logits.shape[1:]), probs=want[0], ent=want[1], got=got
            )

    def valid_probs():
        probs = state["out"][0]
        sums = probs.sum(-1)
        worst = float(sums[(sums - 1).abs().argmax()])
        if bool((probs < -TOL).any()) or abs(worst - 1.0) > TOL:
            raise CheckFailed("n05_not_probs", worst=worst)

    def mode_restored():
        _answer(fn, model, x, K)
        changed = sum(m.training for m in model.modules())
        if changed:
            model.eval()
            raise CheckFailed("n05_mode", changed=changed)

    def dropout_on():
        probs, _, info = state["out"]
        once = F.softmax(model(x).double(), dim=-1)
        if float(info.abs().max()) < TOL and torch.allclose(probs, once, atol=TOL):
            raise CheckFailed("n05_dropout_off", mi=float(info.abs().max()))

    def batchnorm_eval():
        probs = state["out"][0]
        bn = F.softmax(_passes(model, x, K, batchnorm_train=True).double(), dim=-1).mean(0)
        if torch.allclose(probs, bn, atol=TOL) and not torch.allclose(probs, mean, atol=TOL):
            raise CheckFailed("n05_batchnorm")

    def mean_of_probs():
        probs = state["out"][0]
        if torch.allclose(probs, mean, atol=TOL):
            return
        if torch.allclose(probs, F.softmax(logits.mean(0), dim=-1), atol=TOL):
            raise CheckFailed("n05_logits_mean")
        raise CheckFailed("n05_probs", n=K, err=float((probs - mean).abs().max()))

    def entropy():
        ent = state["out"][1]
        if torch.allclose(ent, predictive, atol=TOL):
            return
        if torch.allclose(ent, _entropy(ps).mean(0), atol=TOL):
            raise CheckFailed("n05_entropy_swapped")
        if torch.allclose(ent, predictive / math.log(2), atol=TOL):
            raise CheckFailed("n05_entropy_bits")
        raise CheckFailed("n05_entropy", err=float((ent - predictive).abs().max()))

    def mutual_information():
        info = state["out"][2]
        if torch.allclose(info, mi, atol=TOL):
            return
        if torch.allclose(info, -mi, atol=TOL):
            raise CheckFailed("n05_mi_sign")
        raise CheckFailed("n05_mi", err=float((info - mi).abs().max()))

    def one_pass():
        info = _answer(fn, model, x, 1)[2]
        if float(info.abs().max()) > TOL:
            raise CheckFailed("n05_one_pass", mi=float(info.abs().max()))

    def no_dropout():
        plain, xp = _model(dropout=False)
        probs, _, info = _answer(fn, plain, xp, K)
        with torch.no_grad():
            once = F.softmax(plain(xp).double(), dim=-1)
        err = max(float((probs - once).abs().max()), float(info.abs().max()))
        if err > TOL:
            raise CheckFailed("n05_no_dropout", err=err)

    return [
        ("runs", runs),
        ("shapes", shapes),
        ("valid_probs", valid_probs),
        ("mode_restored", mode_restored),
        ("dropout_on", dropout_on),
        ("batchnorm_eval", batchnorm_eval),
        ("mean_of_probs", mean_of_probs),
        ("entropy", entropy),
        ("mutual_information", mutual_information),
        ("one_pass", one_pass),
        ("no_dropout", no_dropout),
    ]


def check_mc_predict(fn, *, lang: str = "en", seed: int = 0, verbose: bool = True) -> bool:
    """Check a student's MC-dropout prediction ``fn(model, x, n)`` returning
    ``(probs, predictive_entropy, mutual_information)`` (Gal and Ghahramani 2016; the
    mutual information is BALD's, Houlsby et al. 2011).

    ``model(x)`` returns logits ``(..., V)`` and is handed over in eval mode; ``fn`` must run
    ``n`` passes with only the dropout modules in training mode, and return the mean of their
    softmax probabilities, its entropy ``H[mean p]`` and ``H[mean p] - mean H[p]``, in nats, with
    every module's mode as it was. Properties, in order: it runs and returns three tensors;
    shapes; valid probabilities; modes restored; dropout on; BatchNorm left in eval; mean of
    probabilities (not of logits); predictive entropy; mutual information; 0 for one pass; the
    plain prediction for a model without dropout. Prints the verdict (and a hint in ``lang``) and
    returns True when every property holds.
    """
    return run_checks(fn_name(fn), mc_predict_checks(fn), lang, seed, verbose, checker="mc_predict")
