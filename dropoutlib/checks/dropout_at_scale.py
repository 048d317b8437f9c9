"""Chapter 09, dropout at scale: the checker of a student's memory-free (seeded) dropout.

``fn(x, p, seed) -> y`` is inverted dropout whose mask is a function of ``seed`` alone, drawn
from a generator of its own, and whose backward draws the same mask again instead of keeping
it: autograd saves nothing the size of ``x`` (:mod:`dropoutlib.seeded`; the Triton tutorial
"Low-Memory Dropout"; FlashAttention).
"""

from __future__ import annotations

import math

import torch

from dropoutlib.checks.core import (
    CheckFailed,
    Z,
    add_hints,
    call_tensor,
    fn_name,
    gradient_check,
    input_unchanged_check,
    positive,
    run_checks,
    shape_dtype_check,
)

__all__ = ["check_seeded_dropout", "seeded_dropout_checks"]

_HINTS = {
    "en": {
        "sd_shape_dtype": "x of shape {shape} and dtype {dtype} gave shape {got_shape}, dtype "
        "{got_dtype}: dropout keeps both",
        "sd_input_unchanged": "your function modified its input x in place; build a new tensor",
        "sd_not_binary": "at p = {p} the output holds values that are neither 0 nor "
        "x/(1-p) = x·{factor}: each element is dropped or kept and scaled by 1/(1-p)",
        "sd_keep_rate_swapped": "at p = {p} you keep {rate:.3f} of the elements, about p: p is "
        "the probability to DROP",
        "sd_keep_rate": "at p = {p} you keep {rate:.4f} of the elements; expected 1-p = "
        "{q:.4f} ± {tol:.4f}",
        "sd_same_seed": "two calls with the same seed gave different masks: the mask must be "
        "a function of the seed (a torch.Generator seeded with it)",
        "sd_other_seed": "seeds {a} and {b} gave the same mask: the seed must choose the mask",
        "sd_global_rng": "your function changed torch's global random state: torch.manual_seed "
        "inside dropout resets the stream every other random operation of training draws from; "
        "use a torch.Generator of your own, seeded with seed",
        "sd_no_gradient": "no gradient reached x: build the output with differentiable "
        "operations, or write backward in a torch.autograd.Function",
        "sd_gradient": "the gradient w.r.t. x must be mask/(1-p) times the upstream gradient, "
        "with the same mask as the forward; yours differs by up to {err:.3g}",
        "sd_saved": "autograd keeps {bytes:.3g} bytes per element of x for backward ({what}): "
        "x * mask saves the mask; write a torch.autograd.Function that saves only p and the "
        "seed and draws the mask again in backward",
        "sd_stashed": "the backward node keeps a tensor of {numel} elements as the attribute "
        "ctx.{name}: keep only p and the seed on ctx, and draw the mask again in backward",
    },
    "ru": {
        "sd_shape_dtype": "x формы {shape} с типом {dtype} дал форму {got_shape} и тип "
        "{got_dtype}: dropout не меняет ни форму, ни тип",
        "sd_input_unchanged": "функция изменила свой вход x на месте; создайте новый тензор",
        "sd_not_binary": "при p = {p} в выходе есть значения, не равные ни 0, ни "
        "x/(1-p) = x·{factor}: каждый элемент либо отключается, либо сохраняется и "
        "умножается на 1/(1-p)",
        "sd_keep_rate_swapped": "при p = {p} сохраняется доля {rate:.3f}, примерно p: p\u00a0— "
        "это вероятность ОТКЛЮЧИТЬ элемент",
        "sd_keep_rate": "при p = {p} сохраняется доля {rate:.4f}; ожидается 1-p = "
        "{q:.4f} ± {tol:.4f}",
        "sd_same_seed": "два вызова с одним и тем же seed дали разные маски: маска должна "
        "зависеть только от seed (torch.Generator, инициализированный им)",
        "sd_other_seed": "seed {a} и {b} дали одну и ту же маску: маску должен выбирать seed",
        "sd_global_rng": "функция изменила глобальное состояние генератора torch: "
        "torch.manual_seed внутри dropout сбрасывает поток, из которого берут случайные числа "
        "все остальные операции обучения; заведите свой torch.Generator с этим seed",
        "sd_no_gradient": "градиент не дошёл до x: стройте выход дифференцируемыми операциями "
        "или напишите backward в torch.autograd.Function",
        "sd_gradient": "градиент по x должен равняться mask/(1-p), умноженному на входящий "
        "градиент, с той же маской, что и в прямом проходе; у вас расхождение до {err:.3g}",
        "sd_saved": "autograd хранит для обратного прохода {bytes:.3g} байт на элемент x "
        "({what}): x * mask сохраняет маску; напишите torch.autograd.Function, которая "
        "сохраняет только p и seed и заново генерирует маску в backward",
        "sd_stashed": "узел обратного прохода хранит тензор из {numel} элементов в атрибуте "
        "ctx.{name}: оставьте на ctx только p и seed, а маску сгенерируйте заново в backward",
    },
    "zh": {
        "sd_shape_dtype": "形状为 {shape}、类型为 {dtype} 的输入 x 得到了形状 {got_shape}、类型 "
        "{got_dtype}：暂退法不改变形状和类型",
        "sd_input_unchanged": "你的函数原地修改了输入 x；请创建一个新张量",
        "sd_not_binary": "p = {p} 时输出中有既不是 0 也不是 x/(1-p) = x·{factor} 的值："
        "每个元素要么丢弃，要么保留并乘以 1/(1-p)",
        "sd_keep_rate_swapped": "p = {p} 时你保留的元素比例为 {rate:.3f}，约等于 p："
        "p 是“丢弃”的概率",
        "sd_keep_rate": "p = {p} 时你保留的元素比例为 {rate:.4f}；应为 1-p = {q:.4f} ± {tol:.4f}",
        "sd_same_seed": "相同的种子两次调用得到了不同的掩码：掩码应只由种子决定"
        "（用该种子初始化的 torch.Generator）",
        "sd_other_seed": "种子 {a} 和 {b} 得到了同一个掩码：掩码应随种子而变",
        "sd_global_rng": "你的函数改变了 torch 的全局随机状态：在暂退法内部调用 "
        "torch.manual_seed 会重置训练中其他随机操作共用的随机数流；"
        "请用你自己的、以种子 seed 初始化的 torch.Generator",
        "sd_no_gradient": "梯度没有传到 x：请用可微运算构造输出，"
        "或在 torch.autograd.Function 中写出 backward",
        "sd_gradient": "对 x 的梯度应为 mask/(1-p) 乘以上游梯度，且掩码与前向传播相同；"
        "你的梯度与之最多相差 {err:.3g}",
        "sd_saved": "autograd 为反向传播保存了每个 x 元素 {bytes:.3g} 字节（{what}）："
        "x * mask 会保存掩码；请写一个 torch.autograd.Function，只保存 p 和种子，"
        "并在 backward 中重新生成掩码",
        "sd_stashed": "反向传播节点把一个含 {numel} 个元素的张量存为属性 ctx.{name}："
        "ctx 上只保留 p 和种子，在 backward 中重新生成掩码",
    },
}
add_hints(_HINTS)

P = 0.25
N = 200_000
SHAPES_DTYPES = (((1000,), torch.float32), ((4, 8, 16), torch.float64))


def _positive(shape, dtype=torch.float64) -> torch.Tensor:
    return positive(shape, dtype)


def _saved_bytes(fn, x: torch.Tensor, p: float, seed: int) -> tuple[float, int, torch.Tensor]:
    """Bytes per element of x that autograd packs while ``fn`` runs (x's own storage aside,
    deduplicated by storage), the number of such tensors, and the output."""
    input_ptr = x.untyped_storage().data_ptr()
    storages: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr != input_ptr and t.numel() > 1:
            storages[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = call_tensor(fn, x, p, seed)
    return sum(storages.values()) / x.numel(), len(storages), y


def seeded_dropout_checks(fn):
    """The properties of seeded dropout ``fn(x, p, seed)``, as (name, check) pairs."""

    def runs():
        call_tensor(fn, _positive((8, 8)), P, 0)

    shape_dtype = shape_dtype_check(
        lambda x: call_tensor(fn, x, P, 1),
        lambda: (_positive(s, d) for s, d in SHAPES_DTYPES),
        "sd_shape_dtype",
    )
    input_unchanged = input_unchanged_check(
        lambda x: call_tensor(fn, x, P, 2), lambda: _positive((64, 64)), "sd_input_unchanged"
    )

    def kept_scaled():
        x = _positive((N,))
        y = call_tensor(fn, x, P, 3).detach()
        factor = 1.0 / (1.0 - P)
        ok = (y == 0) | torch.isclose(y, x * factor, rtol=1e-6, atol=0.0)
        if not bool(ok.all()):
            raise CheckFailed("sd_not_binary", p=P, factor=f"{factor:.4g}")

    def keep_rate():
        for p in (0.2, 0.7):
            rate = float((call_tensor(fn, _positive((N,)), p, 4) != 0).double().mean())
            q = 1.0 - p
            tol = Z * math.sqrt(p * q / N)
            if abs(rate - q) > tol:
                if abs(rate - p) <= tol:
                    raise CheckFailed("sd_keep_rate_swapped", p=p, rate=rate)
                raise CheckFailed("sd_keep_rate", p=p, rate=rate, q=q, tol=tol)

    def same_seed():
        x = _positive((1000,))
        a = call_tensor(fn, x, P, 5) != 0
        torch.rand(17)  # the global generator moves on between the calls, as in training
        b = call_tensor(fn, x, P, 5) != 0
        if not torch.equal(a, b):
            raise CheckFailed("sd_same_seed")

    def other_seed():
        x = _positive((1000,))
        a = call_tensor(fn, x, P, 6) != 0
        b = call_tensor(fn, x, P, 7) != 0
        if torch.equal(a, b):  # chance for a correct function: about 0.625**1000
            raise CheckFailed("sd_other_seed", a=6, b=7)

    def global_rng():
        x = _positive((1000,))
        before = torch.get_rng_state()
        call_tensor(fn, x, P, 8)
        if not torch.equal(before, torch.get_rng_state()):
            raise CheckFailed("sd_global_rng")

    gradient = gradient_check(
        lambda x: call_tensor(fn, x, P, 9),
        lambda: _positive((50, 40)),
        lambda y, x: (y != 0).to(y.dtype) / (1.0 - P),  # the forward's own mask
        "sd_",
    )

    def saves_nothing():
        x = _positive((64, 256)).requires_grad_()
        per_element, tensors, y = _saved_bytes(fn, x, P, 10)
        if per_element > 0:
            raise CheckFailed("sd_saved", bytes=per_element, what=f"{tensors} tensor(s)")
        node = y.grad_fn
        for name, value in vars(node).items() if node is not None else ():
            if isinstance(value, torch.Tensor) and value.numel() > 1:
                raise CheckFailed("sd_stashed", numel=value.numel(), name=name)

    return [
        ("runs", runs),
        ("shape_dtype", shape_dtype),
        ("input_unchanged", input_unchanged),
        ("kept_scaled", kept_scaled),
        ("keep_rate", keep_rate),
        ("same_seed", same_seed),
        ("other_seed", other_seed),
        ("global_rng", global_rng),
        ("gradient", gradient),
        ("saves_nothing", saves_nothing),
    ]


def check_seeded_dropout(fn, *, lang: str = "en", seed: int = 0, verbose: bool = True) -> bool:
    """Check a student's memory-free dropout ``fn(x, p, seed) -> Tensor``.

    ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` drawn from ``seed`` alone, and a
    backward that draws ``m`` again: nothing the size of x is kept for backward (the Triton
    tutorial "Low-Memory Dropout"; FlashAttention, Dao et al. 2022). Properties, in order: it
    runs; shape and dtype kept; x not modified; every element 0 or x/(1-p); keep rate 1-p within
    6 standard errors; the same seed gives the same mask, another seed another mask; torch's
    global random state is left alone; the gradient is m/(1-p) with the forward's mask; autograd
    saves no tensor for backward. Prints the verdict (and a hint in ``lang`` on failure) and
    returns True when every property holds.
    """
    return run_checks(
        fn_name(fn), seeded_dropout_checks(fn), lang, seed, verbose, checker="seeded_dropout"
    )
