"""Keep every chapter runnable on Colab from the repository set once in ``_config.yml``.

    python -m book.tools.colab --check   # exit 1 and list what disagrees
    python -m book.tools.colab --fix     # rewrite the chapters in place

For each ``chapters/<lang>/*.ipynb``:

* the install cell (the code cell that tests ``"google.colab"``) installs dropoutlib from
  ``git+<repository.url>@<repository.branch>``, and no code cell names another ``git+`` URL;
* every "Open in Colab" link in the prose points at this notebook in that repository and branch
  (``https://colab.research.google.com/github/<org>/<repo>/blob/<branch>/chapters/<lang>/<file>``);
* the metadata asks Colab for a GPU runtime (``accelerator: GPU``, ``colab.gpuType: T4``) and
  names the standard ``python3`` kernel.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from book.tools import common
from book.tools.common import LANGS, ROOT

GIT_URL_RE = re.compile(r"git\+https?://[^\s\"'#,)\]]+")
COLAB_LINK_RE = re.compile(r"https://colab\.research\.google\.com/github/[^\s\"')\]]+")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
GPU_TYPE = "T4"  # the free Colab GPU


def colab_link(path: Path, root: Path = ROOT) -> str:
    """The Colab URL of the committed notebook ``path`` (inside ``root``)."""
    url, branch = common.repository(root)
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?", url)
    if not match:
        raise ValueError(f"repository.url must be a https://github.com/ORG/REPO URL, got {url!r}")
    org, repo = match.groups()
    rel = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    colab = (common.shared_config(root).get("launch_buttons") or {}).get("colab_url", "")
    base = (colab or "https://colab.research.google.com").rstrip("/")
    return f"{base}/github/{org}/{repo}/blob/{branch}/{rel}"


def install_cells(nb) -> list[int]:
    return [
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "google.colab" in c.source
    ]


def check_notebook(nb, install_url: str, link: str | None = None) -> list[str]:
    """What disagrees with the configuration (an empty list when all is well)."""
    problems = []
    cells = install_cells(nb)
    if len(cells) != 1:
        problems.append(f"expected one install cell testing 'google.colab', found {len(cells)}")
    elif install_url not in GIT_URL_RE.findall(nb.cells[cells[0]].source):
        problems.append(f"the install cell does not install {install_url}")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for found in GIT_URL_RE.findall(cell.source):
                if found != install_url:
                    problems.append(f"cell {i} installs {found}, expected {install_url}")
        elif link is not None and cell.cell_type == "markdown":
            for found in COLAB_LINK_RE.findall(cell.source):
                if found != link:
                    problems.append(f"cell {i} links {found}, expected {link}")
    meta = nb.metadata
    if meta.get("accelerator") != "GPU":
        problems.append("metadata.accelerator is not 'GPU' (Colab would start a CPU runtime)")
    if (meta.get("colab") or {}).get("gpuType") != GPU_TYPE:
        problems.append(f"metadata.colab.gpuType is not {GPU_TYPE!r}")
    if (meta.get("kernelspec") or {}).get("name") != "python3":
        problems.append("metadata.kernelspec.name is not 'python3'")
    return problems


def fix_notebook(nb, install_url: str, link: str | None = None) -> bool:
    """Rewrite URLs and metadata in place; return whether anything changed."""
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = GIT_URL_RE.sub(install_url, cell.source)
        elif link is not None and cell.cell_type == "markdown":
            cell.source = COLAB_LINK_RE.sub(link, cell.source)
    nb.metadata["accelerator"] = "GPU"
    colab = dict(nb.metadata.get("colab") or {})
    colab["gpuType"] = GPU_TYPE
    colab.setdefault("provenance", [])
    nb.metadata["colab"] = colab
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    return nbformat.writes(nb) != before


def main(argv=None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.tools.colab", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--fix", action="store_true")
    args = parser.parse_args(argv)
    url = common.install_url(root)
    failed = 0
    for lang in LANGS:
        for path in common.chapter_paths(lang, root):
            nb = common.read_notebook(path)
            link = colab_link(path, root)
            if args.fix:
                if fix_notebook(nb, url, link):
                    common.write_notebook(nb, path)
                    print(f"[colab] updated {path.relative_to(root)}")
            problems = check_notebook(nb, url, link)
            for problem in problems:
                print(f"[colab] {path.relative_to(root)}: {problem}", file=sys.stderr)
            failed += bool(problems)
    print(f"[colab] install URL {url}: {'OK' if not failed else f'{failed} notebook(s) disagree'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
