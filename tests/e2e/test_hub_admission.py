"""Who the hub admits, decided from the API's `/me` and `/projects` answers (deny by default)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tre.hub.auth import admission
from tre.hub.spawner import lab_args, system_name

TODAY = date(2026, 5, 1)


def me(
    roles: list[str], until: str | None = "2027-01-01", disabled: bool = False
) -> dict[str, Any]:
    return {"user": {"id": 5, "roles": roles, "accredited_until": until, "disabled": disabled}}


def project(pid: int, status: str = "active", members: tuple[int, ...] = (5,)) -> dict[str, Any]:
    return {
        "id": pid,
        "title": f"P{pid}",
        "end_date": "2026-12-31",
        "status": status,
        "member_ids": list(members),
    }


@pytest.mark.parametrize(
    ("who", "projects", "refusal"),
    [
        (me(["researcher"]), [project(1)], None),
        (me(["researcher"], disabled=True), [project(1)], "disabled"),
        (me(["custodian"]), [project(1)], "only researchers"),
        (me(["researcher"], until=None), [project(1)], "accreditation is not valid"),
        (me(["researcher"], until="2026-04-30"), [project(1)], "ended on 2026-04-30"),
        (me(["researcher"]), [], "not a member of an active project"),
        (me(["researcher"]), [project(1, status="expired")], "not a member"),
        (me(["researcher"]), [project(1, status="not_started")], "not a member"),
        (me(["researcher"]), [project(1, members=(6,))], "not a member"),
    ],
)
def test_admission(
    who: dict[str, Any], projects: list[dict[str, Any]], refusal: str | None
) -> None:
    decided = admission(who, projects, TODAY)
    if refusal is None:
        assert decided.refusal is None and [p["id"] for p in decided.projects] == [1]
    else:
        assert decided.refusal is not None and refusal in decided.refusal and not decided.projects


def test_accreditation_ending_today_still_admits() -> None:
    assert admission(me(["researcher"], until="2026-05-01"), [project(2)], TODAY).refusal is None


def test_only_active_member_projects_are_offered() -> None:
    offered = admission(
        me(["researcher"]), [project(1), project(2, status="revoked"), project(3)], TODAY
    ).projects
    assert [p["id"] for p in offered] == [1, 3]


@pytest.mark.parametrize(
    ("username", "system"),
    [
        ("ada", "tre-ada"),
        ("root", "tre-root"),
        ("a.b-c", "tre-a_b-c"),
        ("x" * 64, "tre-" + "x" * 28),
    ],
)
def test_system_accounts_never_reuse_a_system_name(username: str, system: str) -> None:
    assert system_name(username) == system


def test_lab_is_offline_and_culled() -> None:
    args = lab_args(900)
    assert "--ServerApp.terminals_enabled=False" in args
    assert "--LabApp.news_url=None" in args
    assert "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate" in args
    assert "--ServerApp.shutdown_no_activity_timeout=900" in args
