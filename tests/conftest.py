"""Test setup shared by every test module.

Tests never touch the network: where ``../shared/data`` exists beside the checkout (here and in
CI) the corpus loader is pointed at it; elsewhere the loader's normal download and cache apply.
"""

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

if SHARED_DATA.is_dir() and "DROPOUTLIB_DATA" not in os.environ:
    os.environ["DROPOUTLIB_DATA"] = str(SHARED_DATA)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The suite's tensors and models are tiny: a second intra-op thread only adds
    synchronisation, and on a busy machine each hand-off can wait a whole scheduler slice
    (tens of times slower). Results agree to rounding whatever the thread count, but not always
    bit for bit: a reduction split over more threads adds in another order. So the tests that
    compare bit for bit with a subprocess (resume after SIGKILL, DDP ranks) run it with
    OMP_NUM_THREADS=1 too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def isolated_run_cache(tmp_path, monkeypatch):
    """A run cache of the test's own, and no profile override from the environment."""
    monkeypatch.setenv("DROPOUTLIB_CACHE", str(tmp_path / "runs"))
    monkeypatch.delenv("DROPOUTLIB_PROFILE", raising=False)
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def site() -> Path:
    """The book as ``make html`` builds it, in the real folders: ``book/_build/html`` with its
    staging under ``book/_build/work`` (of ``$BOOK_ROOT`` when set, else this checkout). Built
    once per session from the committed notebooks; the switcher bug that staging under
    ``book/_build`` once caused was invisible to a build staged elsewhere."""
    import sys

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from book.tools import build

    book = Path(os.environ.get("BOOK_ROOT", ROOT)).resolve()
    out, work = build.default_paths(book)
    build.build(out, root=book, work=work, log=lambda *a: None)
    return out
