"""Build the three editions of the book from the committed notebooks (no execution).

    python -m book.tools.build              # book/_build/html/{en,ru,zh} + root index.html
    python -m book.tools.build --student    # student notebooks + student edition, under
                                            # book/_build/student/{en,ru,zh}/*.ipynb and
                                            # book/_build/student/html/{en,ru,zh}

How an edition finds its chapters. A Jupyter Book 1 (Sphinx) project must have every page inside
its source folder, and the toc takes paths relative to it, so ``book/en/_toc.yml`` cannot point
at ``chapters/en/``; building from the repository root instead would make Sphinx scan the whole
tree (.venv included) and give pages URLs like ``chapters/en/01-x.html``. So the tool assembles
one *staging* folder per edition, ``book/_build/src/<lang>``, from

* ``_config.yml`` (top) deep-merged with ``book/<lang>/_config.yml``, plus what the tool knows:
  ``repository.path_to_book: chapters/<lang>`` (so the Colab button opens
  ``<repo>/blob/<branch>/chapters/<lang>/<page>.ipynb``, the committed notebook), the Sphinx
  language, and the language switcher's page lists;
* ``book/<lang>/*`` (toc, landing page, instructors page, ...);
* copies of ``chapters/<lang>/*.ipynb`` (pages at the edition's top level: ``en/01-x.html``).

Each edition is a separate Sphinx project built in its own process (Sphinx keeps translations
in process-wide state, so two languages in one process would mix), with warnings as errors and
a fresh environment every time, so "zero warnings" is checked on every build. The staging
folder is a build artefact: edit ``book/<lang>`` and ``chapters/<lang>``, never the copy.
"""

from __future__ import annotations

import argparse
import fnmatch
import html
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from book.tools import common
from book.tools.common import EDITIONS, LANGS, ROOT

TOOLS = Path(__file__).resolve().parent

ANNOUNCE_STUDENT = {
    "en": "Student edition: solutions are hidden.",
    "ru": "Издание для студентов: решения скрыты.",
    "zh": "学生版：解答已隐藏。",
}


def _prune_toc(node, files: set[str]):
    """Drop toc ``glob`` entries that match no file (Sphinx would warn), then empty parts."""
    if isinstance(node, list):
        out = [_prune_toc(item, files) for item in node]
        return [item for item in out if item is not None]
    if not isinstance(node, dict):
        return node
    if "glob" in node and not fnmatch.filter(sorted(files), node["glob"]):
        return None
    node = {k: _prune_toc(v, files) for k, v in node.items()}
    for key in ("parts", "chapters", "sections"):
        if key in node and node[key] == []:
            del node[key]
            if key in ("chapters", "sections") and set(node) <= {"caption", "numbered"}:
                return None  # a part left with nothing in it
    return node


def stage_files(lang: str, dest: Path, *, root: Path = ROOT, student: bool = False) -> None:
    """Copy an edition's pages and chapters into ``dest`` (emptied first) and write its toc."""
    from book.tools import student as student_tools

    src_book = Path(root) / "book" / lang
    if not (src_book / "_toc.yml").is_file():
        raise FileNotFoundError(f"{src_book / '_toc.yml'} is missing")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for item in src_book.iterdir():
        if item.name in ("_config.yml", "_toc.yml") or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, dest / item.name)
        else:
            shutil.copy2(item, dest / item.name)
    for path in common.chapter_paths(lang, root):
        if student:
            nb = student_tools.student_notebook(common.read_notebook(path), lang, keep_outputs=True)
            common.write_notebook(nb, dest / path.name)
        else:
            shutil.copy2(path, dest / path.name)
    files = {
        p.relative_to(dest).with_suffix("").as_posix()
        for p in dest.rglob("*")
        if p.suffix in (".md", ".ipynb")
    }
    toc = _prune_toc(common.load_yaml(src_book / "_toc.yml"), files)
    (dest / "_toc.yml").write_text(yaml.safe_dump(toc, allow_unicode=True, sort_keys=False))


def toc_docnames(src: Path) -> list[str]:
    """The documents a staged edition will build: toc files plus glob matches."""
    from sphinx_external_toc.parsing import parse_toc_yaml

    site_map = parse_toc_yaml(src / "_toc.yml")
    names = set(site_map.keys())
    # Parts relative to the staging folder: the staging folder itself lies under book/_build,
    # so a test on the absolute path would drop every page.
    relative = (p.relative_to(src) for p in src.rglob("*") if p.suffix in (".md", ".ipynb"))
    files = sorted(r.with_suffix("").as_posix() for r in relative if "_build" not in r.parts)
    for pattern in site_map.globs():
        names.update(fnmatch.filter(files, pattern))
    return sorted(names)


def edition_build_config(
    lang: str, editions: list[dict], *, root: Path = ROOT, student: bool = False
) -> dict:
    """The full Jupyter Book config of one edition (written to the staging folder)."""
    config = common.edition_config(lang, root)
    sphinx_language = EDITIONS[lang]["sphinx"]
    sconf = config.setdefault("sphinx", {}).setdefault("config", {}) or {}
    config["sphinx"]["config"] = sconf
    if sconf.setdefault("language", sphinx_language) != sphinx_language:
        raise ValueError(
            f"book/{lang}/_config.yml: sphinx.config.language must be {sphinx_language!r}, "
            f"got {sconf['language']!r}"
        )
    config.setdefault("repository", {})["path_to_book"] = f"chapters/{lang}"
    local = config["sphinx"].get("local_extensions") or {}
    local["langswitch"] = str(TOOLS)
    config["sphinx"]["local_extensions"] = local
    sconf["langswitch_current"] = lang
    sconf["langswitch_editions"] = editions
    search = sconf.get("html_search_options") or {}
    if search.get("dict") and not Path(search["dict"]).is_absolute():
        search["dict"] = str((Path(root) / "book" / lang / search["dict"]).resolve())
    if student:
        sconf["hide_solutions"] = True
        # The Colab button would open the committed notebook, solutions included; instructors
        # hand out book/_build/student/<lang>/*.ipynb instead (see the instructors page).
        config.setdefault("launch_buttons", {})["colab_url"] = ""
        config.setdefault("html", {})["announcement"] = ANNOUNCE_STUDENT[lang]
    return config


def stage(
    out_src: Path, *, root: Path = ROOT, langs=LANGS, student: bool = False
) -> dict[str, Path]:
    """Stage every edition under ``out_src/<lang>``; return {lang: folder}."""
    staged = {}
    for lang in langs:
        staged[lang] = Path(out_src) / lang
        stage_files(lang, staged[lang], root=root, student=student)
    editions = [
        {
            "code": lang,
            "label": EDITIONS[lang]["label"],
            "lang": EDITIONS[lang]["html"],
            "docnames": toc_docnames(src),
        }
        for lang, src in staged.items()
    ]
    for lang, src in staged.items():
        config = edition_build_config(lang, editions, root=root, student=student)
        (src / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
    return staged


def _sphinx_worker(src: str, out: str, doctrees: str) -> int:
    """Run in a child process: one edition, warnings are errors, fresh environment."""
    from jupyter_book.sphinx import build_sphinx

    result = build_sphinx(
        Path(src),
        Path(out),
        use_external_toc=True,
        noconfig=True,
        path_config=str(Path(src) / "_config.yml"),
        confoverrides={
            "external_toc_path": str(Path(src) / "_toc.yml"),
            "latex_individualpages": False,
        },
        doctreedir=Path(doctrees),
        builder="html",
        warningiserror=True,
        keep_going=True,
        freshenv=True,
        quiet=True,
    )
    return 0 if result == 0 else 1


def write_root_index(out_html: Path, titles: dict[str, str]) -> Path:
    """``out_html/index.html``: a page offering the editions, each in its own language."""
    items = "\n".join(
        f'    <li><a href="{lang}/index.html" hreflang="{EDITIONS[lang]["html"]}" '
        f'lang="{EDITIONS[lang]["html"]}"><span class="label">{EDITIONS[lang]["label"]}</span>'
        f'<span class="title">{html.escape(title)}</span></a></li>'
        for lang, title in titles.items()
    )
    alternates = "\n".join(
        f'  <link rel="alternate" hreflang="{EDITIONS[lang]["html"]}" href="{lang}/index.html">'
        for lang in titles
    )
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{html.escape(titles.get("en", next(iter(titles.values()))))}</title>
{alternates}
  <style>
    body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto;
           padding: 0 1rem; color: #222; }}
    h1 {{ font-size: 1.6rem; }}
    ul {{ list-style: none; padding: 0; }}
    li a {{ display: block; padding: 1rem 1.2rem; margin: 0.8rem 0; border: 1px solid #ccc;
           border-radius: 0.5rem; text-decoration: none; color: inherit; }}
    li a:hover {{ border-color: #2a6fdb; background: #f3f7ff; }}
    .label {{ display: block; font-weight: 600; font-size: 1.1rem; }}
    .title {{ display: block; color: #555; }}
  </style>
</head>
<body>
  <h1>Dropout in LLMs · Dropout в LLM · 大语言模型中的暂退法</h1>
  <p>Choose a language · Выберите язык · 选择语言</p>
  <ul>
{items}
  </ul>
</body>
</html>
"""
    out_html.mkdir(parents=True, exist_ok=True)
    path = out_html / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def build(
    out_html: Path,
    *,
    root: Path = ROOT,
    work: Path | None = None,
    langs=LANGS,
    student: bool = False,
    jobs: int = 3,
    log=print,
) -> Path:
    """Stage and build ``langs`` into ``out_html/<lang>``; return the root index.html."""
    out_html = Path(out_html)
    work = Path(work) if work else out_html.parent / ("student-work" if student else "work")
    staged = stage(work / "src", root=root, langs=langs, student=student)
    pending = {}
    for lang, src in staged.items():
        # Sphinx output first goes to work/sphinx/<lang>/html: MyST-NB writes its images next to
        # the output folder (../jupyter_execute), which must not be shared between editions.
        sphinx_dir = work / "sphinx" / lang
        if sphinx_dir.exists():
            shutil.rmtree(sphinx_dir)
        sphinx_dir.mkdir(parents=True)
        logfile = sphinx_dir / "sphinx.log"
        cmd = [
            sys.executable,
            "-m",
            "book.tools.build",
            "--sphinx-worker",
            str(src),
            str(sphinx_dir / "html"),
            str(sphinx_dir / "doctrees"),
        ]
        while len(pending) >= jobs:
            _reap(pending, log)
        fh = open(logfile, "w", encoding="utf-8")  # noqa: SIM115 (closed in _reap)
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=env)
        pending[lang] = (proc, fh, logfile, time.perf_counter())
    failed = []
    while pending:
        failed += _reap(pending, log)
    if failed:
        logs = "\n".join((work / "sphinx" / lang / "sphinx.log").read_text() for lang in failed)
        raise RuntimeError(
            f"Sphinx build failed for {', '.join(failed)} (warnings are errors):\n{logs}"
        )
    if out_html.exists():
        shutil.rmtree(out_html)
    out_html.mkdir(parents=True)
    for lang in staged:
        shutil.move(str(work / "sphinx" / lang / "html"), str(out_html / lang))
    titles = {
        lang: common.load_yaml(src / "_config.yml").get("title", "") for lang, src in staged.items()
    }
    return write_root_index(out_html, titles)


def _reap(pending: dict, log) -> list[str]:
    while True:
        for lang, (proc, fh, logfile, t0) in list(pending.items()):
            if proc.poll() is not None:
                fh.close()
                del pending[lang]
                seconds = time.perf_counter() - t0
                if proc.returncode != 0:
                    log(f"[book] {lang}: FAILED after {seconds:.1f} s (log: {logfile})")
                    return [lang]
                log(f"[book] {lang}: built in {seconds:.1f} s")
                return []
        time.sleep(0.1)


def default_paths(root: Path = ROOT, *, student: bool = False) -> tuple[Path, Path]:
    """(HTML output, work folder) of ``make html`` / ``make student`` in the checkout ``root``:
    ``book/_build/html`` and ``book/_build/work`` (student: ``book/_build/student/html`` and
    ``book/_build/work-student``)."""
    build_dir = Path(root) / "book" / "_build"
    if student:
        return build_dir / "student" / "html", build_dir / "work-student"
    return build_dir / "html", build_dir / "work"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.tools.build", description=__doc__)
    parser.add_argument("--student", action="store_true", help="student notebooks and edition")
    parser.add_argument("--out", type=Path, default=None, help="output folder of the HTML")
    parser.add_argument("--lang", action="append", choices=LANGS, help="only these editions")
    parser.add_argument("--jobs", type=int, default=3, help="editions built at once")
    parser.add_argument("--sphinx-worker", nargs=3, metavar=("SRC", "OUT", "DOCTREES"))
    args = parser.parse_args(argv)
    if args.sphinx_worker:
        return _sphinx_worker(*args.sphinx_worker)
    langs = tuple(args.lang) if args.lang else LANGS
    build_dir = ROOT / "book" / "_build"
    t0 = time.perf_counter()
    if args.student:
        from book.tools import student as student_tools

        written = student_tools.write_student_notebooks(build_dir / "student", langs=langs)
        print(f"[book] {len(written)} student notebooks under {build_dir / 'student'}/<lang>/")
    default_out, work = default_paths(ROOT, student=args.student)
    out = args.out or default_out
    if not any(common.chapter_paths(lang) for lang in langs):
        print("[book] note: no chapter in chapters/<lang>/ yet; building the other pages only")
    try:
        index = build(out, work=work, langs=langs, student=args.student, jobs=args.jobs)
    except RuntimeError as err:
        print(f"[book] {err}", file=sys.stderr)
        return 1
    print(f"[book] done in {time.perf_counter() - t0:.1f} s. Open the book:")
    print(f"    file://{index}")
    print(f"    or: python -m http.server -d {out} 8000   then http://localhost:8000/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
