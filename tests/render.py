"""Drawing a figure the way the book does, strictly: every warning an error, and no warning from
matplotlib's font manager (a missing glyph, say a CJK character without a CJK font)."""

from __future__ import annotations

import io
import logging
import warnings


def render_strictly(fig, dpi: int = 50) -> None:
    """Draw ``fig`` to PNG with every warning an error and font-manager logging captured; the
    figure is closed afterwards."""
    import matplotlib.pyplot as plt

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("matplotlib.font_manager")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fig.savefig(io.BytesIO(), format="png", dpi=dpi)
    finally:
        logger.removeHandler(handler)
        plt.close(fig)
    assert not [r for r in records if r.levelno >= logging.WARNING], records
