"""Researcher pages: apply, my projects (remaining budget, API tokens), my queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from tre import governance as g
from tre.errors import UserError
from tre.web.common import (
    allowance_rows,
    events_of,
    grantable,
    latest,
    parse_budget,
    people,
    user_ids_by_name,
)
from tre.web.console import Form, Svc, Who, parse_date, redirect, render

LEGAL_BASES = {
    "dea-2017-part-5": "Digital Economy Act 2017, Part 5 (research powers)",
    "consent": "Consent",
    "public-task": "Public task",
    "legitimate-interests": "Legitimate interests",
    "other": "Other (explain below)",
}
TEXT_FIELDS = ("title", "lay_summary", "purpose", "public_benefit")


def _catalogue(svc: Svc) -> list[dict[str, Any]]:
    with svc.db.read() as s:
        governed = g.list_datasets(s)
    out = []
    for d in governed:
        dv = latest(svc, d.name)
        if dv is not None:
            out.append({"name": d.name, "title": d.title, "columns": grantable(dv)})
    return out


def register(router: APIRouter) -> None:
    """Add the researcher's pages."""

    def apply_page(
        request: Request, who: Who, svc: Svc, values: dict[str, Any], errors: dict[str, str]
    ) -> Response:
        return render(
            request,
            "apply.html",
            title="Apply for a project",
            visitor=who,
            status=422 if errors else 200,
            datasets=_catalogue(svc),
            legal_bases=LEGAL_BASES,
            values=values,
            errors=errors,
        )

    @router.get("/apply")
    def apply_form(request: Request, who: Who, svc: Svc) -> Response:
        """The application form."""
        who.require(g.Role.RESEARCHER, "Applying for a project")
        today = svc.clock().date()
        values = {
            "start_date": today.isoformat(),
            "end_date": (today + timedelta(days=365)).isoformat(),
        }
        return apply_page(request, who, svc, values, {})

    @router.post("/apply")
    def apply(request: Request, who: Who, svc: Svc, data: Form) -> Response:
        """Submit an application; problems are shown next to their fields."""
        who.require(g.Role.RESEARCHER, "Applying for a project")
        values: dict[str, Any] = {k: v for k, v in data.items() if isinstance(v, str)}
        values["asked"] = set(data.getlist("ask"))
        values["cols"] = {d: set(map(str, data.getlist(f"cols_{d}"))) for d in values["asked"]}
        errors: dict[str, str] = {}
        for f in TEXT_FIELDS:
            if not values.get(f, "").strip():
                errors[f] = "This is required."
        if len(values.get("title", "").strip()) < 3:
            errors["title"] = "Give a title of at least 3 characters."
        basis = values.get("legal_basis", "")
        if basis not in LEGAL_BASES:
            errors["legal_basis"] = "Choose the legal basis."
        catalogue = {d["name"]: d for d in _catalogue(svc)}
        asks = []
        if not values["asked"]:
            errors["datasets"] = "Ask for at least one dataset."
        for name in sorted(values["asked"]):
            if name not in catalogue:
                errors["datasets"] = f"{name} is not in the catalogue."
                continue
            columns = [c for c in data.getlist(f"cols_{name}") if isinstance(c, str)]
            allowed = {c.name for c in catalogue[name]["columns"]}
            if not columns:
                errors[f"cols_{name}"] = f"Choose the columns of {name} you need."
            elif not set(columns) <= allowed:
                errors[f"cols_{name}"] = "Some columns cannot be requested."
            try:
                budget = parse_budget(values.get(f"rho_{name}"), values.get(f"delta_{name}"))
            except ValueError as exc:
                errors[f"rho_{name}"] = str(exc)
                continue
            asks.append(g.DatasetAsk(dataset=name, columns=tuple(columns), budget=budget))
        try:
            start = parse_date(values.get("start_date"))
            if start is None:
                errors["start_date"] = "Give a start date."
        except ValueError:
            errors["start_date"] = "Use the form yyyy-mm-dd."
            start = None
        try:
            end = parse_date(values.get("end_date"))
            if end is None:
                errors["end_date"] = "Give an end date."
        except ValueError:
            errors["end_date"] = "Use the form yyyy-mm-dd."
            end = None
        members = [m.strip() for m in values.get("members", "").replace(";", ",").split(",")]
        with svc.db.read() as s:
            found, missing = user_ids_by_name(s, [m for m in members if m])
        if missing:
            errors["members"] = f"No such account: {', '.join(missing)}."
        if errors:
            return apply_page(request, who, svc, values, errors)
        assert start is not None and end is not None
        try:
            application = g.Application(
                title=values["title"].strip(),
                lay_summary=values["lay_summary"].strip(),
                purpose=values["purpose"].strip(),
                public_benefit=values["public_benefit"].strip(),
                legal_basis=g.LegalBasis(basis),
                legal_basis_detail=values.get("legal_basis_detail", "").strip() or None,
                datasets=tuple(asks),
                member_ids=tuple(i for i in found.values() if i != who.actor.user_id),
                exact_outputs=values.get("exact_outputs") == "yes",
                start_date=start,
                end_date=end,
            )
        except ValidationError as exc:
            for e in exc.errors():
                loc = str(e["loc"][0]) if e["loc"] else "_form"
                msg = str(e["msg"]).removeprefix("Value error, ")
                errors["end_date" if loc in ("", "_form") and "date" in msg else loc] = msg
            if "legal_basis_detail" in str(exc):
                errors["legal_basis_detail"] = "Explain the legal basis."
            return apply_page(request, who, svc, values, errors)
        try:
            with svc.db.transaction() as s:
                project = g.apply(s, who.actor, application, now=svc.clock())
        except UserError as exc:
            if exc.status == 403:
                raise
            reason_field = {"member_not_eligible": "members", "end_date": "end_date"}
            errors = {reason_field.get(exc.reason, "_form"): exc.message}
            return apply_page(request, who, svc, values, errors)
        return redirect(f"/projects/{project.id}", "Application submitted to the custodians.")

    @router.get("/projects")
    def my_projects(request: Request, who: Who, svc: Svc) -> Response:
        """The visitor's projects with the remaining budget on each dataset."""
        who.require(g.Role.RESEARCHER, "My projects")
        now = svc.clock()
        with svc.db.read() as s:
            projects = [
                p
                for p in g.list_projects(s, who.actor, now=now)
                if who.actor.user_id in p.member_ids
            ]
            rows = [(p, allowance_rows(svc, s, p)) for p in projects]
        return render(request, "projects.html", title="My projects", visitor=who, rows=rows)

    @router.get("/projects/{project_id}")
    def project_page(request: Request, project_id: int, who: Who, svc: Svc) -> Response:
        """One project: its application, decisions, members, budgets and actions."""
        now = svc.clock()
        with svc.db.read() as s:
            p = g.get_project(s, who.actor, project_id, now=now)
            rows = allowance_rows(svc, s, p)
            names = people(
                s,
                {
                    *p.member_ids,
                    p.lead_id,
                    *(r.approval.decided_by for r in p.requests if r.approval),
                },
            )
            tokens = [t for t in g.list_tokens(s, who.actor) if t.project_id == p.id]
        may_revoke = bool(g.decide(who.actor, g.Action.REVOKE_PROJECT, p, now=now))
        may_token = bool(g.decide(who.actor, g.Action.ISSUE_TOKEN, p, now=now))
        return render(
            request,
            "project.html",
            title=f"Project {p.id}: {p.title}",
            visitor=who,
            p=p,
            pstatus=p.status(now.date()),
            rows=rows,
            names=names,
            tokens=tokens,
            legal_bases=LEGAL_BASES,
            may_revoke=may_revoke and not p.state.is_final,
            may_token=may_token,
            raw_token=None,
        )

    @router.post("/projects/{project_id}/tokens")
    def issue_token(request: Request, project_id: int, who: Who, svc: Svc, data: Form) -> Response:
        """Issue a project API token for notebooks; shown once on the page."""
        now = svc.clock()
        try:
            hours = float(str(data.get("hours") or "12"))
        except ValueError:
            hours = 12.0
        hours = min(max(hours, 1.0), 24.0 * 30)
        with svc.db.transaction() as s:
            issued = g.issue_token(
                s, who.actor, project_id, now=now, ttl=timedelta(hours=hours), label="console"
            )
        with svc.db.read() as s:
            p = g.get_project(s, who.actor, project_id, now=now)
            rows = allowance_rows(svc, s, p)
            names = people(s, {*p.member_ids, p.lead_id})
            tokens = [t for t in g.list_tokens(s, who.actor) if t.project_id == p.id]
        return render(
            request,
            "project.html",
            title=f"Project {p.id}: {p.title}",
            visitor=who,
            p=p,
            pstatus=p.status(now.date()),
            rows=rows,
            names=names,
            tokens=tokens,
            legal_bases=LEGAL_BASES,
            may_revoke=False,
            may_token=True,
            raw_token=issued.raw,
        )

    @router.post("/projects/{project_id}/revoke")
    def revoke(request: Request, project_id: int, who: Who, svc: Svc, data: Form) -> Response:
        """Revoke a project (a custodian of its data or an admin): access ends at once."""
        reason = str(data.get("reason") or "").strip()
        if not reason:
            from tre.errors import InvalidInput

            raise InvalidInput(
                "a revocation needs a reason", reason="reason_required", hint="Say why access ends."
            )
        with svc.db.transaction() as s:
            g.revoke_project(
                s, who.actor, project_id, reason=reason, budget=svc.ledger, now=svc.clock()
            )
        back = str(data.get("back") or f"/projects/{project_id}")
        return redirect(back if back.startswith("/") else "/", f"Project {project_id} revoked.")

    @router.get("/queries")
    def my_queries(request: Request, who: Who, svc: Svc) -> Response:
        """The visitor's queries: SQL, cost and time (from the audit log), newest first."""
        who.require(g.Role.RESEARCHER, "My queries")
        uid = who.actor.user_id
        with svc.db.read() as s:
            answered = [
                e for e in events_of(s, "query.answered") if e.payload.get("user_id") == uid
            ]
            refused = [e for e in events_of(s, "query.refused") if e.payload.get("user_id") == uid]
        rows = sorted(answered + refused, key=lambda e: e.seq, reverse=True)[:500]
        return render(request, "queries.html", title="My queries", visitor=who, rows=rows)
