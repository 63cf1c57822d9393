"""The release bundle: a zip of the approved files, an ACRO-compatible `results.json`,
`checksums.sha256` (sha256sum format) and a human-readable `SUMMARY.md`.

`results.json` follows ACRO 1.0.2's `finalise(..., "json")` shape (SDC_RULES.md §3.4):
`{"version", "tool", "results": {uid: {uid, status, type, properties, files: [{name, sdc:
{summary, cells}}], outcome, command, summary, timestamp, comments, exception}}}`, where
`sdc.cells` holds 0-based [row, column] positions in the file and the rule names are tre's
rule ids. tre adds a top-level `"tre"` object with the request and both (or all three)
reviewers' decisions. The zip is deterministic (fixed timestamps, sorted entries).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tre import __version__
from tre.outputs.files import sha256_bytes
from tre.outputs.types import CheckStatus, ItemKind, ItemView, OutputRequestView, ReviewView

ACRO_COMPATIBLE = "1.0.2"
RESULTS = "results.json"
CHECKSUMS = "checksums.sha256"
SUMMARY = "SUMMARY.md"
RESERVED_NAMES = frozenset({RESULTS.lower(), CHECKSUMS.lower(), SUMMARY.lower()})


@dataclass(frozen=True)
class BundleFacts:
    """What the bundle says about its release besides the request itself."""

    released_by: int
    released_at: datetime
    usernames: Mapping[int, str]
    project_title: str


def _acro_type(item: ItemView) -> str:
    if item.kind is ItemKind.TABLE:
        return "table"
    if item.kind is ItemKind.MODEL and item.check.report is not None:
        return "regression"
    return "custom"


def _outcome(item: ItemView) -> dict[str, dict[str, str]]:
    """ACRO's column-major outcome for the checked count column: "ok" or "rule; rule; "."""
    report = item.check.report
    if item.kind is not ItemKind.TABLE or report is None or not report.get("cells"):
        return {}
    col = str(report["cells"][0]["col"])
    return {
        col: {str(c["row"]): "".join(f"{r}; " for r in c["rules"]) or "ok" for c in report["cells"]}
    }


def _summary_text(item: ItemView) -> str:
    flagged = [f"{rule}: {n} cells flagged" for rule, n in item.check.summary.items() if n]
    return "; ".join([item.check.status.value, *flagged]) + "; "


def _who(usernames: Mapping[int, str], user_id: int) -> str:
    return usernames.get(user_id, f"user {user_id}")


def results_json(
    request: OutputRequestView, reviews: Sequence[ReviewView], facts: BundleFacts
) -> dict[str, Any]:
    """The ACRO-compatible machine-readable report of a released request."""
    results: dict[str, Any] = {}
    for i, item in enumerate(request.items):
        uid = f"output_{i}"
        comments = [item.context]
        for r in reviews:
            text = r.item_comments.get(item.name)
            if text:
                comments.append(f"Output Checker ({_who(facts.usernames, r.reviewer_id)}): {text}")
        prov = item.provenance
        results[uid] = {
            "uid": uid,
            "status": item.check.status.value,
            "type": _acro_type(item),
            "properties": {
                "method": "tre query" if prov and prov.query_id else "file",
                "kind": item.kind.value,
                "preset": request.preset,
                "underlying": item.underlying,
                "provenance": prov.model_dump(mode="json") if prov else None,
                "notes": list(item.check.notes),
            },
            "files": [
                {
                    "name": item.name,
                    "sha256": item.sha256,
                    "sdc": {"summary": dict(item.check.summary), "cells": dict(item.check.cells)},
                }
            ],
            "outcome": _outcome(item),
            "command": (prov.query or "") if prov else "",
            "summary": _summary_text(item),
            "timestamp": item.added_at.isoformat(),
            "comments": comments,
            "exception": item.exception or "",
        }
    return {
        "version": __version__,
        "tool": {"name": "tre", "version": __version__, "acro_compatible": ACRO_COMPATIBLE},
        "results": results,
        "tre": {
            "request_id": request.id,
            "project_id": request.project_id,
            "project": facts.project_title,
            "title": request.title,
            "author": _who(facts.usernames, request.author_id),
            "status": "released",
            "round": request.round,
            "preset": request.preset,
            "automatic_status": request.check_status.value,
            "reviews": [
                {
                    "reviewer": _who(facts.usernames, r.reviewer_id),
                    "reviewer_id": r.reviewer_id,
                    "decision": r.decision.value if r.decision else None,
                    "comment": r.comment,
                    "item_comments": dict(r.item_comments),
                    "decided_at": r.decided_at.isoformat() if r.decided_at else None,
                }
                for r in reviews
            ],
            "released_by": _who(facts.usernames, facts.released_by),
            "released_at": facts.released_at.isoformat(),
        },
    }


def summary_md(
    request: OutputRequestView, reviews: Sequence[ReviewView], facts: BundleFacts
) -> str:
    """A human-readable summary of the release."""
    who = facts.usernames
    lines = [
        f"# Output request {request.id}: {request.title}",
        "",
        f"- Project: {request.project_id} ({facts.project_title})",
        f"- Author: {_who(who, request.author_id)}",
        f"- Disclosure preset: {request.preset}",
        f"- Submission round: {request.round}",
        f"- Released by {_who(who, facts.released_by)} at {facts.released_at.isoformat()}",
        "",
        "## Reviews",
        "",
        "| reviewer | decision | decided at | comment |",
        "|---|---|---|---|",
    ]
    for r in reviews:
        decision = r.decision.value if r.decision else "—"
        comment = (r.comment or "").replace("\n", " ").replace("|", "\\|")
        decided = r.decided_at.isoformat() if r.decided_at else "—"
        lines.append(f"| {_who(who, r.reviewer_id)} | {decision} | {decided} | {comment} |")
    lines += ["", "## Files", ""]
    for item in request.items:
        lines += [
            f"### {item.name} ({item.kind.value})",
            "",
            f"- sha256: `{item.sha256}`",
            f"- automatic checks: **{item.check.status.value}**",
        ]
        lines += [f"  - {note}" for note in item.check.notes]
        if item.underlying:
            lines.append(f"- drawn from: {item.underlying}")
        if item.provenance and item.provenance.query_id:
            p = item.provenance
            datasets = ", ".join(f"{n} v{v}" for n, v in p.datasets) or "—"
            lines.append(f"- from tre query {p.query_id} ({p.mode or '?'} mode; {datasets})")
        lines.append(f"- context and controls: {item.context}")
        if item.exception:
            lines.append(f"- exception requested: {item.exception}")
        if item.check.status is not CheckStatus.PASS and not item.exception:
            lines.append("- released after the checkers' review of its automatic status")
        lines.append("")
    return "\n".join(lines)


def build_bundle(
    request: OutputRequestView,
    reviews: Sequence[ReviewView],
    contents: Mapping[str, bytes],
    facts: BundleFacts,
) -> bytes:
    """The zip bytes: files, results.json, SUMMARY.md, then checksums.sha256 of all of them."""
    entries: dict[str, bytes] = {item.name: contents[item.name] for item in request.items}
    entries[RESULTS] = (
        json.dumps(results_json(request, reviews, facts), indent=2, sort_keys=True) + "\n"
    ).encode()
    entries[SUMMARY] = summary_md(request, reviews, facts).encode()
    entries[CHECKSUMS] = "".join(
        f"{sha256_bytes(data)}  {name}\n" for name, data in sorted(entries.items())
    ).encode()
    stamp = facts.released_at.timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zf.writestr(info, entries[name])
    return buffer.getvalue()
