"""What every figure shares: the label tables in English, Russian and Chinese, fonts, and glue.

Notebooks are identical in the three languages except for ``lang``; everything a reader sees in
a figure (titles, axis labels, legends) comes from :data:`LABELS`. Each chapter's figure module
adds its own strings with :func:`add_labels`, and every key must exist in all three languages.

Fonts: DejaVu Sans (matplotlib's default) covers Latin and Cyrillic; Chinese needs a CJK font.
``Noto Sans CJK SC`` (Debian/Ubuntu package ``fonts-noto-cjk``) is used where it is installed.
Where it is not (e.g. a fresh Colab runtime), Chinese figures fall back to English labels with
one warning instead of drawing empty boxes.
"""

from __future__ import annotations

import glob
import warnings

from matplotlib import font_manager

from dropoutlib._base import add_translations

__all__ = [
    "BASE_FONT",
    "CJK_FONT",
    "LABELS",
    "LANGS",
    "add_labels",
    "check_lang",
    "figure_lang",
    "glue",
    "has_cjk_font",
    "in_interactive_kernel",
    "label",
    "number",
    "rc_params",
]

LANGS = ("en", "ru", "zh")
CJK_FONT = "Noto Sans CJK SC"
BASE_FONT = "DejaVu Sans"

# The strings the shared figures use (training curves); chapter modules add theirs.
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "step": "training step",
        "loss": "cross-entropy (nats per character)",
        "train": "train",
        "val": "validation",
        "gap": "validation − train",
        "losses_title": "babyGPT v10 on Song ci",
        "gap_title": "Generalization gap",
    },
    "ru": {
        "step": "шаг обучения",
        "loss": "кросс-энтропия (нат на символ)",
        "train": "обучение",
        "val": "валидация",
        "gap": "валидация − обучение",
        "losses_title": "babyGPT v10 на сунских цы",
        "gap_title": "Разрыв обобщения",
    },
    "zh": {
        "step": "训练步数",
        "loss": "交叉熵（nat/字符）",
        "train": "训练",
        "val": "验证",
        "gap": "验证 − 训练",
        "losses_title": "宋词语料上的 babyGPT v10",
        "gap_title": "泛化差距",
    },
}

_CJK_PATTERNS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/**/NotoSansCJK*-Regular.*",
    "/usr/share/fonts/**/NotoSansCJKsc-Regular.otf",
)
_warned_no_cjk = False
_searched_cjk = False  # the font directories are searched once per process


def check_lang(lang) -> str:
    """Return ``lang`` if it is one of the book's languages, else raise a ValueError naming them."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(map(repr, LANGS))}, got {lang!r}")
    return lang


def label(key: str, lang: str, **fmt) -> str:
    """The reader-facing string ``key`` in ``lang``, formatted with ``fmt``."""
    text = LABELS[check_lang(lang)][key]
    return text.format(**fmt) if fmt else text


def has_cjk_font() -> bool:
    """True when matplotlib can draw Chinese with :data:`CJK_FONT` (registering it if needed).

    matplotlib caches its font list; a font installed after the cache was built is added here.
    """
    global _searched_cjk
    if any(f.name == CJK_FONT for f in font_manager.fontManager.ttflist):
        return True
    if _searched_cjk:
        return False
    _searched_cjk = True
    for pattern in _CJK_PATTERNS:
        for path in glob.glob(pattern, recursive=True):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    return any(f.name == CJK_FONT for f in font_manager.fontManager.ttflist)


def figure_lang(lang: str) -> str:
    """The language figures can be drawn in: ``lang``, or English for Chinese without a CJK font."""
    global _warned_no_cjk
    check_lang(lang)
    if lang == "zh" and not has_cjk_font():
        if not _warned_no_cjk:
            warnings.warn(
                f"font {CJK_FONT!r} not found: figure labels are drawn in English "
                "(install the fonts-noto-cjk package to get Chinese labels)",
                stacklevel=3,
            )
            _warned_no_cjk = True
        return "en"
    return lang


def rc_params(lang: str) -> dict:
    """matplotlib settings for ``lang``: concrete font families only, so findfont never warns."""
    families = [BASE_FONT]
    if has_cjk_font():
        # Chinese glyphs first for zh; for en/ru DejaVu first and CJK only as a per-glyph fallback.
        families = [CJK_FONT, BASE_FONT] if lang == "zh" else [BASE_FONT, CJK_FONT]
    return {"font.family": families, "axes.titlesize": "medium"}


def number(value, lang: str, spec: str = ",d") -> str:
    """``value`` formatted with ``spec`` (Python's format mini-language, grouping with ``,``) as
    each edition writes numbers: English and Chinese group thousands with a comma, Russian with
    a narrow no-break space (U+202F): ``number(431069, "ru") == "431\u202f069"``. Decimal points
    stay points in every edition, as the code prints them. Glue the result as text where a
    Russian sentence shows a large number."""
    text = format(value, spec)
    return text.replace(",", "\u202f") if check_lang(lang) == "ru" else text


def glue(name: str, value) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue:text}`` roles; invisible elsewhere.

    Uses ``myst_nb.glue(name, value, display=False)`` when myst-nb is installed (book builds,
    papermill runs) and does nothing where it is not (Colab), so prose numbers always come from
    the executed cell.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not _in_ipython():
        return  # plain Python: IPython's display() would print the raw bundle
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return
    _glue(name, value, display=False)


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def add_labels(tables: dict[str, dict[str, str]]) -> None:
    """Add a chapter's figure strings to :data:`LABELS`: ``{"en": {...}, "ru": {...}, "zh":
    {...}}`` with the same keys in every language, none of them already taken."""
    add_translations(LABELS, tables, "labels")


def in_interactive_kernel() -> bool:
    """True inside a Jupyter kernel (Jupyter, Colab, papermill), False in plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
