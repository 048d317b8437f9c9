"""Test setup shared by every test module.

Tests never touch the network: where ``../shared/data`` exists beside the checkout (here and in
CI) the corpus loader is pointed at it; elsewhere the loader's normal download and cache apply.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

if SHARED_DATA.is_dir() and "DROPOUTLIB_DATA" not in os.environ:
    os.environ["DROPOUTLIB_DATA"] = str(SHARED_DATA)
