"""tre.outputs: output requests — gates, automatic disclosure checks, the two-person review
workflow, release bundles and audited downloads (layer 3, see docs/outputs.md).

`OutputService(db, settings, limits)` is the one entry point for the API and the CLI.
"""

from tre.outputs.bundle import build_bundle, results_json
from tre.outputs.service import OutputService
from tre.outputs.types import (
    ALLOWED_EXTENSIONS,
    CheckResult,
    CheckStatus,
    Download,
    ItemKind,
    ItemUpdate,
    ItemView,
    OutputLimits,
    OutputRequestView,
    Provenance,
    QueueEntry,
    RequestState,
    ReviewDecision,
    ReviewView,
)

__all__ = [
    "ALLOWED_EXTENSIONS",
    "CheckResult",
    "CheckStatus",
    "Download",
    "ItemKind",
    "ItemUpdate",
    "ItemView",
    "OutputLimits",
    "OutputRequestView",
    "OutputService",
    "Provenance",
    "QueueEntry",
    "RequestState",
    "ReviewDecision",
    "ReviewView",
    "build_bundle",
    "results_json",
]
