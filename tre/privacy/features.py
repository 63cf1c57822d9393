"""Enable OpenDP's contributed (not yet vetted) features in exactly one place."""

from __future__ import annotations

import opendp.prelude as dp

_ENABLED = False


def enable_opendp() -> None:
    """Turn on OpenDP's `contrib` features (needed by its measurements and Polars Context)."""
    global _ENABLED
    if not _ENABLED:
        dp.enable_features("contrib")
        _ENABLED = True
