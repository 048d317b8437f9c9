"""Paths, editions and configuration shared by the book tools.

Layout (DESIGN.md): ``_config.yml`` at the top holds what every edition shares; ``book/<lang>/``
holds one edition's ``_config.yml`` (overrides only), ``_toc.yml``, landing page and extra pages;
chapters live in ``chapters/<lang>/NN-slug.ipynb`` with the same file names in every language.
Every function takes the repository root as an argument so tests can run on a copy.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[2]
LANGS = ("en", "ru", "zh")

# code: folder name; sphinx: Sphinx `language`; html: BCP 47 tag for <html lang>; label: the
# language's own name, shown in the switcher.
EDITIONS = {
    "en": {"sphinx": "en", "html": "en", "label": "English"},
    "ru": {"sphinx": "ru", "html": "ru", "label": "Русский"},
    "zh": {"sphinx": "zh_CN", "html": "zh-CN", "label": "中文"},
}

CHAPTER_NAME = re.compile(r"^\d\d-[a-z0-9][a-z0-9-]*\.ipynb$")
NB_VERSION = 4


def chapter_paths(lang: str, root: Path = ROOT) -> list[Path]:
    """The chapters of one language, ``chapters/<lang>/NN-slug.ipynb``, in order."""
    folder = Path(root) / "chapters" / lang
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if CHAPTER_NAME.match(p.name))


def all_chapters(root: Path = ROOT) -> dict[str, list[Path]]:
    return {lang: chapter_paths(lang, root) for lang in LANGS}


def check_lang(lang: str) -> str:
    if lang not in EDITIONS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def load_yaml(path: Path) -> dict:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` updated by ``override``: mappings merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def shared_config(root: Path = ROOT) -> dict:
    return load_yaml(Path(root) / "_config.yml")


def edition_config(lang: str, root: Path = ROOT) -> dict:
    """The top ``_config.yml`` merged with ``book/<lang>/_config.yml``."""
    check_lang(lang)
    config = shared_config(root)
    override = Path(root) / "book" / lang / "_config.yml"
    if override.is_file():
        config = deep_merge(config, load_yaml(override))
    return config


def repository(root: Path = ROOT) -> tuple[str, str]:
    """(url, branch) of the repository, as set once in the top ``_config.yml``."""
    repo = shared_config(root).get("repository") or {}
    url, branch = repo.get("url"), repo.get("branch")
    if not url or not branch:
        raise ValueError("_config.yml: repository.url and repository.branch must both be set")
    return str(url).rstrip("/"), str(branch)


def install_url(root: Path = ROOT) -> str:
    """The pip requirement URL a chapter's install cell uses on Colab: ``git+<url>@<branch>``."""
    url, branch = repository(root)
    return f"git+{url}@{branch}"


def read_notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=NB_VERSION)


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write atomically (a temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    nbformat.write(nb, str(tmp))
    tmp.replace(path)


def cell_tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def parameters_cell(nb) -> tuple[int, nbformat.NotebookNode]:
    """The code cell tagged ``parameters`` (exactly one is required)."""
    found = [
        (i, c)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and "parameters" in cell_tags(c)
    ]
    if len(found) != 1:
        raise ValueError(f"expected exactly one code cell tagged 'parameters', found {len(found)}")
    return found[0]


def parameter_values(source: str) -> dict[str, object]:
    """Literal assignments ``name = value`` of a parameters cell."""
    import ast

    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
    return values
