"""Chapter 02's checker: a student's dropout-site finder, on models with both kinds of site."""

import numbers

import pytest
import torch
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from dropoutlib.checks import HINTS, check_dropout_sites
from dropoutlib.sites import is_rate_name


def correct(model):
    sites = {}
    for name, module in model.named_modules():
        if isinstance(module, _DropoutNd):
            sites[name] = float(module.p)
            continue
        for attr, value in vars(module).items():
            is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if is_rate_name(attr) and is_number and 0 <= value <= 1:
                sites[f"{name}.{attr}" if name else attr] = float(value)
    return sites


def with_the_library(model):
    from dropoutlib import dropout_sites

    return {s.name: s.p for s in dropout_sites(model, kind=["module", "float"])}


def only_nn_dropout(model):  # TRL's disable_dropout_in_model looks at these only
    return {n: m.p for n, m in model.named_modules() if isinstance(m, nn.Dropout)}


def modules_only(model):
    return {n: m.p for n, m in model.named_modules() if isinstance(m, _DropoutNd)}


def skips_zero(model):
    return {k: v for k, v in correct(model).items() if v > 0}


def by_name(model):
    sites = modules_only(model)
    for name, module in model.named_modules():
        if "dropout" in name.rsplit(".", 1)[-1]:
            sites[name] = getattr(module, "p", 0.0)  # an Identity named dropout is not a site
        for attr, value in vars(module).items():
            if "dropout" in attr and isinstance(value, (int, float)):  # bools are ints
                sites[f"{name}.{attr}" if name else attr] = float(value)
    return sites


def leading_dot(model):
    return {
        (k if "." in k or k in dict(model.named_modules()) else "." + k): v
        for k, v in correct(model).items()
    }


def as_list(model):
    return list(correct(model).items())


def switches_to_eval(model):
    model.eval()
    return correct(model)


def stub(model):
    raise NotImplementedError


@pytest.mark.parametrize("fn", [correct, with_the_library])
def test_accepts_correct_finders(fn, capsys):
    assert check_dropout_sites(fn) is True
    assert capsys.readouterr().out.startswith(f"✓ {fn.__name__}: 8/8")


@pytest.mark.parametrize(
    "fn, prop, hint_key",
    [
        (only_nn_dropout, "torch_classes", "sites_module_class"),
        (modules_only, "float_rates", "sites_missing_float"),
        (skips_zero, "zero_rates", "sites_zero"),
        (by_name, "no_false_sites", "sites_extra"),
        (leading_dot, "float_rates", "sites_missing_float"),
        (as_list, "runs", "sites_not_dict"),
        (switches_to_eval, "runs", "sites_changed"),
    ],
)
def test_rejects_typical_mistakes_and_names_the_property(fn, prop, hint_key, capsys):
    assert check_dropout_sites(fn) is False
    verdict, hint = capsys.readouterr().out.splitlines()
    assert verdict.startswith(f"✗ {fn.__name__}: {prop} (")
    first_words = HINTS["en"][hint_key].split("{")[0]
    assert first_words in hint


def test_stub_gets_a_friendly_message(capsys):
    assert check_dropout_sites(stub) is False
    out = capsys.readouterr().out
    assert "NotImplementedError" in out and "Traceback" not in out and "0/8" in out


@pytest.mark.parametrize("lang", ["en", "ru", "zh"])
def test_hints_in_every_language(lang, capsys):
    for fn in (stub, only_nn_dropout, modules_only, skips_zero, by_name, switches_to_eval):
        assert check_dropout_sites(fn, lang=lang) is False
    out = capsys.readouterr().out
    assert out.count(f"  {HINTS[lang]['hint']}: ") == 6
    assert "{" not in out  # every field filled in


def test_checker_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check_dropout_sites(correct, verbose=False)
    assert torch.equal(torch.rand(3), expected)
