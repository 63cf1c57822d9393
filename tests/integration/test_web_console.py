"""The console's pages through the ASGI app (no browser): refusals, CSRF, sessions, forms.

Each test gets a fresh SQLite control plane with a small cast (admin, custodian, researcher,
a researcher who is also an output checker, and a checker) and an approved-or-submitted project
built through governance itself; pages are driven with a cookie-keeping TestClient on
http://127.0.0.1 (a loopback host, so the console's cookies are not Secure-only).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import POLICY_DIR
from tre import governance as g
from tre.api import create_app
from tre.audit import read_events, verify
from tre.config import Settings
from tre.db import Database, utcnow
from tre.outputs import OutputService
from tre.privacy.ledger import Ledger
from tre.wire.grant import Budget

PASSWORD = "correct horse battery staple"
BASE = "http://127.0.0.1"


@dataclass
class Cast:
    """The people and the submitted project of a test."""

    db: Database
    settings: Settings
    project_id: int
    ids: dict[str, int]


def _seed(settings: Settings) -> tuple[int, dict[str, int]]:
    db = Database.from_settings(settings)
    db.upgrade()
    now = utcnow()
    today = now.date()
    ids: dict[str, int] = {}
    with db.transaction() as s:
        admin = g.bootstrap_admin(
            s, username="admin", display_name="Admin", password=PASSWORD, now=now
        ).as_actor()
        ids["admin"] = admin.user_id
        for name, roles in (
            ("cust", ["custodian"]),
            ("ada", ["researcher"]),
            ("rex", ["researcher", "output_checker"]),
            ("chk", ["output_checker"]),
        ):
            ids[name] = g.create_user(
                s,
                admin,
                username=name,
                display_name=name.title(),
                roles=roles,
                accredited_until=today + timedelta(days=300) if "researcher" in roles else None,
                password=PASSWORD,
                now=now,
            ).id
        g.register_dataset(
            s,
            admin,
            name="health",
            title="Health",
            custodian_ids=[ids["cust"]],
            cap=Budget(rho=Decimal(10)),
            budget=Ledger(),
            now=now,
        )
        project = g.apply(
            s,
            g.load_actor(s, ids["ada"]),
            g.Application(
                title="Admissions by region",
                lay_summary="Where do people go to hospital?",
                purpose="Count admissions by region.",
                public_benefit="Plan services.",
                legal_basis=g.LegalBasis.PUBLIC_TASK,
                datasets=(
                    g.DatasetAsk(
                        dataset="health", columns=("region", "age"), budget=Budget(rho=Decimal(2))
                    ),
                ),
                member_ids=(ids["rex"],),
                start_date=today,
                end_date=today + timedelta(days=200),
            ),
            now=now,
        )
    db.dispose()  # checkpoints the WAL: the file alone is the whole database
    return project.id, ids


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, dict[str, int]]:
    """One seeded control plane per module (argon2 hashing is slow); each test copies it."""
    root = tmp_path_factory.mktemp("web-template")
    settings = Settings(data_root=root / "data", key_dir=root / "keys", policy_dir=POLICY_DIR)
    project_id, ids = _seed(settings)
    return settings.data_root / "control.sqlite", project_id, ids


@pytest.fixture
def cast(settings: Settings, template: tuple[Path, int, dict[str, int]]) -> Iterator[Cast]:
    source, project_id, ids = template
    settings.data_root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, settings.data_root / "control.sqlite")
    db = Database.from_settings(settings)
    yield Cast(db=db, settings=settings, project_id=project_id, ids=ids)
    db.dispose()


def client(c: Cast, base: str = BASE) -> TestClient:
    return TestClient(create_app(c.settings, database=c.db), base_url=base)


def login(tc: TestClient, username: str, password: str = PASSWORD) -> None:
    page = tc.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = tc.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def csrf(tc: TestClient) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', tc.get("/console/").text)
    assert m is not None
    return m.group(1)


def refusals(c: Cast) -> list[dict[str, object]]:
    with c.db.read() as s:
        return [e.payload for e in read_events(s, limit=10_000, event_type="web.refused")]


PAGES = [
    "/console/",
    "/console/apply",
    "/console/projects",
    "/console/projects/1",
    "/console/queries",
    "/console/outputs",
    "/console/outputs/1",
    "/console/datasets",
    "/console/datasets/health",
    "/console/applications",
    "/console/applications/1",
    "/console/review",
    "/console/review/1",
    "/console/admin/users",
    "/console/admin/audit",
]


def test_logged_out_visitors_reach_no_page(cast: Cast) -> None:
    with client(cast) as tc:
        for path in PAGES:
            r = tc.get(path, follow_redirects=False)
            assert r.status_code == 303, path
            assert r.headers["location"] == f"/console/login?next={path}"


def test_logged_out_session_is_over_everywhere(cast: Cast) -> None:
    with client(cast) as tc:
        login(tc, "ada")
        cookie = tc.cookies.get("tre_console")
        assert tc.get("/console/projects").status_code == 200
        r = tc.post("/console/logout", data={"csrf_token": csrf(tc)}, follow_redirects=False)
        assert r.status_code == 303
    with client(cast) as other:  # the old cookie, replayed
        other.cookies.set("tre_console", cookie or "")
        r = other.get("/console/projects", follow_redirects=False)
        assert r.status_code == 303 and "/console/login" in r.headers["location"]


def test_cookies_are_httponly_strict_and_secure_off_loopback(cast: Cast) -> None:
    with client(cast, "https://tre.example.org") as tc:
        page = tc.get("/console/login")
        header = page.headers["set-cookie"]
        assert "HttpOnly" in header and "SameSite=strict" in header and "Secure" in header
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        r = tc.post(
            "/console/login",
            data={"username": "ada", "password": PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("__Host-tre_console=")
        assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
        assert "Path=/" in cookie


def test_wrong_password_and_login_without_token_are_refused_and_audited(cast: Cast) -> None:
    with client(cast) as tc:
        page = tc.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        r = tc.post(
            "/console/login",
            data={"username": "ada", "password": "wrong password!!", "csrf_token": token.group(1)},
        )
        assert r.status_code == 401
        assert "username or password is not right" in r.text
        r = tc.post("/console/login", data={"username": "ada", "password": PASSWORD})
        assert r.status_code == 403
        assert tc.get("/console/", follow_redirects=False).status_code == 303
    with cast.db.read() as s:
        failed = [e.payload["reason"] for e in read_events(s, event_type="web.login_failed")]
    assert failed == ["bad_credentials", "csrf"]
    assert PASSWORD not in str(failed)


@pytest.mark.parametrize(
    "path",
    ["/console/applications", "/console/datasets", "/console/admin/users", "/console/review"],
)
def test_researcher_cannot_see_other_roles_pages(cast: Cast, path: str) -> None:
    with client(cast) as tc:
        login(tc, "ada")
        r = tc.get(path)
        assert r.status_code == 403
        assert "Not allowed" in r.text and "your account does not hold that role" in r.text
        assert "Applications" not in re.sub(r"<main.*", "", r.text, flags=re.S)  # not in the nav
    assert refusals(cast)[-1] == {
        "method": "GET",
        "route": path,
        "user_id": cast.ids["ada"],
        "reason": "role_required",
        "status": 403,
    }


def test_researcher_cannot_open_an_application_page_of_another_project(cast: Cast) -> None:
    with client(cast) as tc:
        login(tc, "chk")
        assert tc.get(f"/console/applications/{cast.project_id}").status_code == 403


@pytest.mark.parametrize("token", [None, "forged-token-value"])
def test_missing_or_forged_csrf_token_is_refused_and_changes_nothing(
    cast: Cast, token: str | None
) -> None:
    data = {"reason": "Meets the policy", "columns": ["region"], "rho": "1", "delta": "0"}
    if token is not None:
        data["csrf_token"] = token
    with client(cast) as tc:
        login(tc, "cust")
        r = tc.post(f"/console/applications/{cast.project_id}/health/approve", data=data)
        assert r.status_code == 403
        assert "security token is missing or does not match" in r.text
    with cast.db.read() as s:
        project = g.get_project(
            s, g.load_actor(s, cast.ids["admin"]), cast.project_id, now=utcnow()
        )
    assert project.state is g.ProjectState.SUBMITTED
    last = refusals(cast)[-1]
    assert last["reason"] == "csrf" and last["method"] == "POST"
    assert last["route"] == "/console/applications/{project_id}/{dataset}/approve"


def test_custodian_approves_with_a_smaller_budget_and_a_stale_page_gets_a_clear_message(
    cast: Cast,
) -> None:
    with client(cast) as tc:
        login(tc, "cust")
        queue = tc.get("/console/applications")
        assert "Admissions by region" in queue.text
        page = tc.get(f"/console/applications/{cast.project_id}")
        assert "Where do people go to hospital?" in page.text and "Ada" in page.text
        form = {
            "csrf_token": csrf(tc),
            "reason": "Meets the policy; half the budget is enough.",
            "columns": ["region", "age"],
            "rho": "0.5",
            "delta": "0",
            "end_date": "",
        }
        r = tc.post(f"/console/applications/{cast.project_id}/health/approve", data=form)
        assert r.status_code == 200 and "Approved health." in r.text
        with cast.db.read() as s:
            allowance = Ledger().allowance(s, cast.project_id, "health")
        assert allowance.allowed == Budget(rho=Decimal("0.5"))
        # The same form again, from a page that still shows the request as pending.
        stale = tc.post(f"/console/applications/{cast.project_id}/health/approve", data=form)
        assert stale.status_code in (403, 409)
        assert "already" in stale.text.lower() or "not" in stale.text.lower()
        assert "Traceback" not in stale.text
        assert tc.get("/console/applications").text.count("No applications are waiting") == 1
    assert refusals(cast)[-1]["method"] == "POST"


def test_field_errors_are_shown_next_to_the_fields(cast: Cast) -> None:
    with client(cast) as tc:
        login(tc, "cust")
        r = tc.post(
            f"/console/applications/{cast.project_id}/health/approve",
            data={"csrf_token": csrf(tc), "reason": "", "columns": ["region"], "rho": "lots"},
        )
        assert r.status_code == 422
        assert 'id="reason-error"' in r.text and "Give the reason" in r.text
        assert "enter numbers" in r.text
        login(tc, "ada")
        r = tc.post("/console/apply", data={"csrf_token": csrf(tc), "title": "x"})
        assert r.status_code == 422
        assert 'id="title-error"' in r.text and 'id="purpose-error"' in r.text
        assert 'aria-invalid="true"' in r.text


def test_checker_cannot_review_their_own_request(cast: Cast) -> None:
    with client(cast) as tc:
        login(tc, "cust")
        tc.post(
            f"/console/applications/{cast.project_id}/health/approve",
            data={"csrf_token": csrf(tc), "reason": "ok", "columns": ["region", "age"], "rho": "2"},
        )
    outputs = OutputService(cast.db, cast.settings)
    with cast.db.read() as s:
        rex = g.load_actor(s, cast.ids["rex"])
    now = utcnow()
    req = outputs.create_request(rex, cast.project_id, title="Notes", now=now)
    outputs.add_item(
        rex,
        req.id,
        name="notes.txt",
        kind="text",
        content=b"Method notes.",
        context="Methods",
        now=now,
    )
    outputs.submit(rex, req.id, now=now)
    with client(cast) as tc:
        login(tc, "rex")
        page = tc.get(f"/console/review/{req.id}")
        assert page.status_code == 200 and "You cannot review this request" in page.text
        assert 'action="/console/review/' not in page.text.split("Your decision")[1]
        r = tc.post(
            f"/console/review/{req.id}/decide",
            data={"csrf_token": csrf(tc), "decision": "approve"},
        )
        assert r.status_code == 403
        assert "Not allowed" in r.text
        queue = tc.get("/console/review")
        assert "Nothing is waiting for your review" in queue.text
    assert refusals(cast)[-1]["route"] == "/console/review/{request_id}/decide"
    with cast.db.read() as s:
        assert verify(s).ok


def test_every_page_renders_for_its_role_and_is_in_the_navigation(cast: Cast) -> None:
    pid = cast.project_id
    visits = {
        "ada": ["/", "/apply", "/projects", f"/projects/{pid}", "/queries", "/outputs"],
        "cust": ["/datasets", "/datasets/health", "/applications", f"/applications/{pid}"],
        "chk": ["/review"],
        "admin": ["/admin/users", "/admin/audit"],
    }
    for who, paths in visits.items():
        with client(cast) as tc:
            login(tc, who)
            nav = tc.get("/console/").text.split("<main")[0]
            for path in paths:
                r = tc.get("/console" + path)
                assert r.status_code == 200, (who, path, r.text[:500])
                assert "<title>" in r.text and "<h1>" in r.text
                top = "/console" + "/".join(path.split("/")[:2])
                assert f'href="{top}"' in nav or path.count("/") > 1, (who, path)
    with client(cast) as tc:
        login(tc, "admin")
        audit = tc.get("/console/admin/audit").text
        assert "Chain verified" in audit and "web.login" in audit


def test_every_form_carries_the_sessions_csrf_token(cast: Cast) -> None:
    with client(cast) as tc:
        login(tc, "cust")
        token = csrf(tc)
        page = tc.get(f"/console/applications/{cast.project_id}").text
        forms = re.findall(r'<form method="post".*?</form>', page, flags=re.S)
        assert len(forms) >= 4  # approve, reject, revoke, log out
        for f in forms:
            assert f'name="csrf_token" value="{token}"' in f, f[:200]
