"""Chapter 02, dropout inside a transformer: the checker of a student's site finder.

The exercise: ``list_dropout_sites(model) -> dict[str, float]``, every place where ``model``
drops, with its rate, found the way :func:`dropoutlib.dropout_sites` finds the sites of kinds
``"module"`` and ``"float"``:

* every ``torch.nn`` dropout module (the subclasses of ``torch.nn.modules.dropout._DropoutNd``:
  ``Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``, ``FeatureAlphaDropout``), named as
  ``model.named_modules()`` names it, with its ``p``;
* every float rate: a plain attribute (``vars(module)``) of any other module whose name passes
  :func:`dropoutlib.sites.is_rate_name` and whose value is a real number, not a bool, in [0, 1],
  named ``"<module name>.<attribute>"`` (just the attribute on the model itself).

A site with rate 0 is still a site. The test models hold both kinds: nanoGPT-style and
Llama-style attention, ``nn.MultiheadAttention``, babyGPT, and decoys that are not sites.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from dropoutlib.checks.core import CheckFailed, Term, add_hints, call, fn_name, run_checks

__all__ = ["check_dropout_sites", "dropout_sites_checks"]

_HINTS = {
    "en": {
        "sites_not_dict": "return a dict {{qualified name: rate}}, got {type}",
        "sites_bad_item": "every key must be a str (the qualified name) and every value a "
        "number (the rate); got {key!r}: {value!r}",
        "sites_missing_module": "{model}: the dropout module {name!r} is missing; walk "
        "model.named_modules() and keep the names it gives",
        "sites_module_class": "{model}: {name!r} is a {cls}, which is not a subclass of "
        "nn.Dropout: every torch dropout module derives from "
        "torch.nn.modules.dropout._DropoutNd",
        "sites_zero": "{model}: {name!r} has rate 0 and is still a site (a rate can be set "
        "later); list it with 0.0",
        "sites_missing_float": "{model}: the float rate {name!r} is missing: this model drops "
        "through a number passed to a function (F.dropout, SDPA's dropout_p), not a module; "
        "look at vars(module) too",
        "sites_wrong_rate": "{model}: {name!r} has rate {want}, your function gave {got}",
        "sites_extra": "{model}: {name!r} is not a dropout site ({why})",
        "sites_why_module": "a module that is not a dropout module, even if its name says dropout",
        "sites_why_attr": "its name or value does not make it a rate: a bool, None, a list, "
        "a keep probability or a name that is_rate_name rejects",
        "sites_why_inner": "an attribute of a dropout module itself: the module is the site",
        "sites_why_unknown": "nothing in the model drops there",
        "sites_changed": "{model}: your function changed {what}; it must only read the model",
        "sites_what_rate": "the rate of a site",
        "sites_what_mode": "the training/eval mode of a module",
    },
    "ru": {
        "sites_not_dict": "верните словарь {{полное имя: доля отключения}}, а получено {type}",
        "sites_bad_item": "ключи должны быть строками (полными именами), значения\u00a0— числами "
        "(долями отключения); получено {key!r}: {value!r}",
        "sites_missing_module": "{model}: нет модуля dropout {name!r}; обходите "
        "model.named_modules() и берите имена оттуда",
        "sites_module_class": "{model}: {name!r}\u00a0— это {cls}, он не наследует nn.Dropout: "
        "все модули dropout в torch происходят от torch.nn.modules.dropout._DropoutNd",
        "sites_zero": "{model}: у {name!r} доля отключения 0, но это всё равно место dropout "
        "(долю можно задать позже); включите его со значением 0.0",
        "sites_missing_float": "{model}: нет числовой доли отключения {name!r}: эта модель "
        "отключает элементы через число, переданное в функцию (F.dropout, dropout_p у SDPA), а "
        "не через модуль; просматривайте и vars(module)",
        "sites_wrong_rate": "{model}: у {name!r} доля отключения {want}, а ваша функция дала {got}",
        "sites_extra": "{model}: {name!r}\u00a0— не место dropout ({why})",
        "sites_why_module": "это модуль, но не модуль dropout, хотя в имени и есть dropout",
        "sites_why_attr": "ни имя, ни значение не делают его долей отключения: bool, None, "
        "список, вероятность сохранения или имя, которое отвергает is_rate_name",
        "sites_why_inner": "атрибут самого модуля dropout: место dropout\u00a0— сам модуль",
        "sites_why_unknown": "в этом месте модель ничего не отключает",
        "sites_changed": "{model}: ваша функция изменила {what}; модель нужно только читать",
        "sites_what_rate": "долю отключения одного из мест",
        "sites_what_mode": "режим обучения/оценки одного из модулей",
    },
    "zh": {
        "sites_not_dict": "应返回字典 {{完整名称: 暂退概率}}，实际返回了 {type}",
        "sites_bad_item": "键必须是字符串（完整名称），值必须是数（暂退概率）；"
        "实际得到 {key!r}: {value!r}",
        "sites_missing_module": "{model}：缺少暂退模块 {name!r}；请遍历 "
        "model.named_modules() 并使用它给出的名称",
        "sites_module_class": "{model}：{name!r} 是 {cls}，它不是 nn.Dropout 的子类："
        "torch 的所有暂退模块都派生自 torch.nn.modules.dropout._DropoutNd",
        "sites_zero": "{model}：{name!r} 的暂退概率为 0，但它仍是一个暂退位置"
        "（概率可以之后再设）；请以 0.0 列出",
        "sites_missing_float": "{model}：缺少浮点暂退概率 {name!r}：这个模型通过传给函数的"
        "一个数（F.dropout、SDPA 的 dropout_p）而不是模块来暂退；也要检查 vars(module)",
        "sites_wrong_rate": "{model}：{name!r} 的暂退概率是 {want}，你的函数给出 {got}",
        "sites_extra": "{model}：{name!r} 不是暂退位置（{why}）",
        "sites_why_module": "它是模块，但不是暂退模块，尽管名字里有 dropout",
        "sites_why_attr": "它的名称或取值不表示暂退概率：bool、None、列表、保留概率，"
        "或 is_rate_name 不接受的名称",
        "sites_why_inner": "这是暂退模块自身的属性：暂退位置是模块本身",
        "sites_why_unknown": "模型在这里不做暂退",
        "sites_changed": "{model}：你的函数修改了{what}；它只应读取模型",
        "sites_what_rate": "某个位置的暂退概率",
        "sites_what_mode": "某个模块的训练/评估模式",
    },
}
add_hints(_HINTS)


# ------------------------------------------------------------------------------------------------
# The test models: small, built on the CPU from a fixed seed (no weights matter, only structure)


class LlamaStyleAttention(nn.Module):
    """Attention as transformers' Llama writes it: the rate is a float copied at __init__ and
    passed to the attention function, and there is no dropout module at all."""

    def __init__(self, dim=8, attention_dropout=0.1):
        super().__init__()
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)
        self.attention_dropout = attention_dropout
        self.is_causal = True


class NanoGPTStyleAttention(nn.Module):
    """nanoGPT's attention: a float ``dropout`` for SDPA's dropout_p on the fast path, beside
    the modules ``attn_dropout`` (slow path) and ``resid_dropout``."""

    def __init__(self, dim=8, dropout=0.2):
        super().__init__()
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)
        self.n_head = 2
        self.dropout = dropout


class Decoys(nn.Module):
    """Attributes and modules that look like dropout and are not sites."""

    def __init__(self):
        super().__init__()
        self.dropout = nn.Identity()  # babyGPT puts an Identity where a rate is 0
        self.dropout_proj = nn.Linear(4, 4)
        self.use_dropout = True  # a flag
        self.keep_prob = 0.9  # the complement of a rate
        self.hidden_dropout = None  # "no classifier dropout" in transformers configs
        self.dropout_positions = [1, 2]
        self.dropout_regularizer = 0.5  # is_rate_name rejects it
        self.p = 0.5  # a rate only on a dropout module
        self.mask = torch.zeros(3)


def _models() -> dict[str, nn.Module]:
    from dropoutlib.model import BabyGPT, GPTConfig

    torch.manual_seed(0)
    models = {
        "mlp": nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 4)),
        "nested": nn.ModuleDict(
            {
                "encoder": nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3)),
                "heads": nn.ModuleList([nn.Sequential(nn.Dropout(0.2)) for _ in range(2)]),
            }
        ),
        "torch_classes": nn.Sequential(
            nn.Dropout1d(0.1),
            nn.Dropout2d(0.2),
            nn.Dropout3d(0.3),
            nn.AlphaDropout(0.4),
            nn.FeatureAlphaDropout(0.5),
        ),
        "zero_rates": nn.ModuleDict(
            {"drop": nn.Dropout(0.0), "attn": LlamaStyleAttention(attention_dropout=0)}
        ),
        "llama_style": nn.ModuleDict(
            {"layers": nn.ModuleList([LlamaStyleAttention() for _ in range(2)])}
        ),
        "multihead": nn.ModuleDict(
            {"mha": nn.MultiheadAttention(8, 2, dropout=0.2), "out": nn.Dropout(0.1)}
        ),
        "nanogpt_style": nn.ModuleDict({"attn": NanoGPTStyleAttention(), "drop": nn.Dropout(0.2)}),
        "decoys": nn.ModuleDict({"block": Decoys(), "real": nn.Dropout(0.1)}),
        "babygpt": BabyGPT(
            GPTConfig(
                vocab_size=11,
                block_size=8,
                n_embd=16,
                n_head=2,
                n_layer=2,
                dropout=0.2,
                embd_dropout=0.1,
                attention="fused",
            )
        ),
    }
    root_float = LlamaStyleAttention()
    root_float.dropout = 0.25  # a float on the model itself is named by its attribute alone
    models["root_float"] = root_float
    return models


def _expected(model: nn.Module) -> dict[str, float]:
    from dropoutlib.sites import dropout_sites

    return {s.name: s.p for s in dropout_sites(model, kind=["module", "float"])}


def _why(model: nn.Module, name: str):
    """Why ``name`` (listed by the student) is not a site of ``model``: a hint term."""
    modules = dict(model.named_modules())
    if name in modules:
        return Term("sites_why_module")
    owner, _, attr = name.rpartition(".")
    holder = modules.get(owner) if owner in modules else None
    if holder is not None and attr in vars(holder):
        from torch.nn.modules.dropout import _DropoutNd

        if isinstance(holder, _DropoutNd):
            return Term("sites_why_inner")
        return Term("sites_why_attr")
    if not owner and attr in vars(model):
        return Term("sites_why_attr")
    return Term("sites_why_unknown")


def _state(model: nn.Module):
    rates = {}
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                rates[f"{name}.{attr}"] = value
    return rates, [m.training for m in model.modules()]


def dropout_sites_checks(fn):
    """The properties of ``fn(model) -> {name: rate}``, as (name, check) pairs."""
    from torch.nn.modules.dropout import _DropoutNd

    def listed(key: str, model: nn.Module) -> dict:
        before_rates, before_modes = _state(model)
        out = call(fn, model)
        if not isinstance(out, dict):
            raise CheckFailed("sites_not_dict", type=type(out).__name__)
        for k, v in out.items():
            ok_value = isinstance(v, numbers.Real) and not isinstance(v, bool)
            if not isinstance(k, str) or not ok_value or not math.isfinite(v):
                raise CheckFailed("sites_bad_item", key=k, value=v)
        after_rates, after_modes = _state(model)
        if after_modes != before_modes:
            raise CheckFailed("sites_changed", model=key, what=Term("sites_what_mode"))
        if after_rates != before_rates:
            raise CheckFailed("sites_changed", model=key, what=Term("sites_what_rate"))
        return out

    def compare(key: str, model: nn.Module) -> None:
        got = listed(key, model)
        want = _expected(model)
        modules = dict(model.named_modules())
        for name, p in want.items():
            if name not in got:
                module = modules.get(name)
                if p == 0:
                    raise CheckFailed("sites_zero", model=key, name=name)
                if module is None:
                    raise CheckFailed("sites_missing_float", model=key, name=name)
                if isinstance(module, _DropoutNd) and not isinstance(module, nn.Dropout):
                    raise CheckFailed(
                        "sites_module_class", model=key, name=name, cls=type(module).__name__
                    )
                raise CheckFailed("sites_missing_module", model=key, name=name)
            if not math.isclose(got[name], p, rel_tol=0, abs_tol=1e-12):
                raise CheckFailed("sites_wrong_rate", model=key, name=name, want=p, got=got[name])
        for name in got:
            if name not in want:
                raise CheckFailed("sites_extra", model=key, name=name, why=_why(model, name))

    with torch.random.fork_rng(devices=[]):  # building them must not move the caller's RNG
        models = _models()

    def on(*keys):
        def check():
            for key in keys:
                compare(key, models[key])

        return check

    return [
        ("runs", lambda: listed("mlp", models["mlp"])),
        ("modules", on("mlp", "nested")),
        ("torch_classes", on("torch_classes")),
        ("float_rates", on("llama_style", "root_float")),
        ("zero_rates", on("zero_rates")),
        ("both_kinds", on("multihead", "nanogpt_style")),
        ("no_false_sites", on("decoys")),
        ("babygpt", on("babygpt")),
    ]


def check_dropout_sites(fn, *, lang: str = "en", seed: int = 0, verbose: bool = True) -> bool:
    """Check a student's ``fn(model) -> dict[str, float]`` that lists every dropout site of a
    model: the torch dropout modules and the float rates (see the module docstring), on models
    with both kinds of site (nanoGPT-style, Llama-style and ``nn.MultiheadAttention`` attention,
    babyGPT) and on decoys that are not sites. Properties, in order: it runs and returns a dict
    of names to numbers; modules by their ``named_modules`` names; every torch dropout class;
    float rates; rate-0 sites; both kinds in one model; no false sites; babyGPT. The model must
    come back unchanged. Prints the verdict (and a hint in ``lang``) and returns True when every
    property holds."""
    return run_checks(
        fn_name(fn), dropout_sites_checks(fn), lang, seed, verbose, checker="dropout_sites"
    )
