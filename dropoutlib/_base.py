"""What every dropout variant shares: the check of the drop rate, and the base of the modules.

One place validates ``p`` so that every function and module of the library raises the same
error for the same mistake: a ``ValueError`` that names the argument, the value and the range.
Nothing is clamped silently.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

from torch import nn


def check_p(p, name: str = "p", *, allow_one: bool = True) -> float:
    """Return ``p`` as a float after checking it is a real, finite number in [0, 1].

    With ``allow_one=False`` the range is [0, 1): for variants where p = 1 is meaningless
    (Gaussian dropout's variance p / (1 - p) is infinite, Alpha dropout's affine map divides by 0).
    """
    upper = "1]" if allow_one else "1)"
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise ValueError(
            f"{name} must be a real number in [0, {upper}, got {p!r} of type {type(p).__name__}"
        )
    p = float(p)
    if not math.isfinite(p) or p < 0.0 or p > 1.0 or (p == 1.0 and not allow_one):
        raise ValueError(f"{name} must be in [0, {upper}, got {p!r}")
    return p


def check_known_fields(cls, d: dict) -> None:
    """Raise ValueError naming any key of ``d`` that is not a field of the dataclass ``cls``
    (configs read back from JSON: a typo must not be silently ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(names)}")


def add_translations(registry: dict[str, dict[str, str]], tables: dict, what: str) -> None:
    """Merge per-language string tables into ``registry`` (``{"en": {...}, "ru": {...}, ...}``):
    every language of the registry given, the same keys in each, none already taken. Figure
    labels (:func:`dropoutlib.viz.add_labels`) and checker hints
    (:func:`dropoutlib.checks.add_hints`) are registered this way, so no edition lacks a string."""
    if set(tables) != set(registry):
        raise ValueError(f"{what} must be given for {sorted(registry)}, got {sorted(tables)}")
    keys = set(tables["en"])
    for lang, table in tables.items():
        if set(table) != keys:
            raise ValueError(f"{what} for {lang!r} differ in keys: {sorted(set(table) ^ keys)}")
    taken = keys & set(registry["en"])
    if taken:
        raise ValueError(f"keys already defined in the {what}: {sorted(taken)}")
    for lang, table in tables.items():
        registry[lang].update(table)


class DropoutModule(nn.Module):
    """Base of dropoutlib's modules that have a drop rate ``p``.

    ``p`` is a validated property, so ``module.p = 1.5`` fails as loudly as the constructor does.
    Schedulers (:func:`dropoutlib.schedules.set_dropout_p`) find a model's dropout modules
    through this class and through ``torch.nn`` dropout modules.
    """

    allow_p_one: bool = True

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    @property
    def p(self) -> float:
        return self._p

    @p.setter
    def p(self, value) -> None:
        self._p = check_p(value, "p", allow_one=self.allow_p_one)

    def extra_repr(self) -> str:
        return f"p={self.p}"
