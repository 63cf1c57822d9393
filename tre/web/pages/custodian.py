"""Custodian pages: my datasets (versions, schema, policy, ingest report, budget dashboard) and
the application queue with approve / approve with changes / reject."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from tre import governance as g
from tre.errors import NotFound, UserError
from tre.privacy.ledger import AllowanceStatus, CapStatus
from tre.web.chart import spending_svg
from tre.web.common import events_of, latest, parse_budget, people
from tre.web.console import Form, Svc, Who, parse_date, redirect, render
from tre.web.pages.researcher import LEGAL_BASES

APPROVE_FIELDS = {
    "reason": "reason",
    "columns": "columns",
    "budget": "rho",
    "allowance": "rho",
    "end_date": "end_date",
    "exact": "exact_outputs",
}


def register(router: APIRouter) -> None:
    """Add the custodian's pages."""

    @router.get("/datasets")
    def my_datasets(request: Request, who: Who, svc: Svc) -> Response:
        """The datasets the visitor looks after, with their latest version and cap."""
        who.require(g.Role.CUSTODIAN, "My datasets")
        with svc.db.read() as s:
            mine = [d for d in g.list_datasets(s) if who.actor.user_id in d.custodian_ids]
            caps: dict[str, CapStatus | None] = {}
            for d in mine:
                try:
                    caps[d.name] = svc.ledger.cap(s, d.name)
                except NotFound:
                    caps[d.name] = None
        rows = [
            (
                d,
                latest(svc, d.name),
                svc.catalog.versions(d.name) if latest(svc, d.name) else [],
                caps[d.name],
            )
            for d in mine
        ]
        return render(request, "datasets.html", title="My datasets", visitor=who, rows=rows)

    @router.get("/datasets/{name}")
    def dataset_page(
        request: Request, name: str, who: Who, svc: Svc, version: int | None = None
    ) -> Response:
        """One dataset: versions, schema, policy, ingest report and the budget dashboard."""
        who.require(g.Role.CUSTODIAN, "Dataset pages")
        now = svc.clock()
        with svc.db.read() as s:
            ds = g.get_dataset(s, name)
            if who.actor.user_id not in ds.custodian_ids:
                g.require(g.Decision(allowed=False, reason=f"you are not a custodian of {name}"))
            try:
                cap = svc.ledger.cap(s, name)
            except NotFound:
                cap = None
            projects = [
                p
                for p in g.list_projects(s, who.actor, now=now)
                if any(r.dataset == name for r in p.requests)
            ]
            allowances: list[tuple[g.ProjectView, AllowanceStatus | None]] = []
            for p in projects:
                try:
                    allowances.append((p, svc.ledger.allowance(s, p.id, name)))
                except NotFound:
                    allowances.append((p, None))
            commits = events_of(s, "budget.committed")
        points: list[tuple[datetime, float]] = []
        total = Decimal(0)
        for e in commits:
            for c in e.payload.get("charges", []):
                if c.get("dataset") == name:
                    total += Decimal(str(c.get("rho", "0")))
                    points.append(
                        (datetime.fromisoformat(e.occurred_at.replace("Z", "+00:00")), float(total))
                    )
        chart = None
        if cap is not None:
            start = min([p.created_at for p in projects] + [t for t, _ in points] + [now])
            # spending_svg escapes its one text (the title); the rest is numbers and dates.
            chart = Markup(  # noqa: S704
                spending_svg(
                    points,
                    cap=float(cap.cap.rho),
                    title=f"Cumulative ρ spent on {name} over time",
                    start=start,
                )
            )
        versions = svc.catalog.versions(name) if latest(svc, name) else []
        dv = svc.catalog.get(name, version) if versions else None
        report = dv.manifest.model_dump(mode="json").get("report") if dv else None
        return render(
            request,
            "dataset.html",
            title=f"Dataset {name}",
            visitor=who,
            ds=ds,
            dv=dv,
            versions=versions,
            cap=cap,
            allowances=allowances,
            chart=chart,
            points=points,
            policy=json.dumps(dv.manifest.policy, indent=2, default=str) if dv else None,
            report=report,
        )

    @router.get("/applications")
    def application_queue(request: Request, who: Who, svc: Svc) -> Response:
        """Requested datasets waiting for the visitor's decision, oldest first."""
        who.require(g.Role.CUSTODIAN, "The application queue")
        now = svc.clock()
        with svc.db.read() as s:
            pending = g.pending_requests(s, who.actor, now=now)
            projects = {
                r.project_id: g.get_project(s, who.actor, r.project_id, now=now) for r in pending
            }
        return render(
            request,
            "applications.html",
            title="Applications waiting for you",
            visitor=who,
            pending=pending,
            projects=projects,
        )

    def application_page(
        request: Request,
        who: Who,
        svc: Svc,
        project_id: int,
        errors: dict[str, dict[str, str]] | None = None,
        values: dict[str, Any] | None = None,
        status: int = 200,
    ) -> Response:
        now = svc.clock()
        with svc.db.read() as s:
            p = g.get_project(s, who.actor, project_id, now=now)
            names = people(
                s,
                {
                    *p.member_ids,
                    p.lead_id,
                    *(r.approval.decided_by for r in p.requests if r.approval),
                },
            )
        mine = {
            r.dataset
            for r in p.requests
            if r.state is g.RequestState.PENDING
            and g.decide(who.actor, g.Action.DECIDE_REQUEST, r, now=now)
        }
        catalogue = {r.dataset: latest(svc, r.dataset) for r in p.requests}
        return render(
            request,
            "application.html",
            title=f"Application {p.id}: {p.title}",
            visitor=who,
            status=status,
            p=p,
            names=names,
            mine=mine,
            catalogue=catalogue,
            legal_bases=LEGAL_BASES,
            errors=errors or {},
            values=values or {},
            pstatus=p.status(now.date()),
            may_revoke=bool(g.decide(who.actor, g.Action.REVOKE_PROJECT, p, now=now))
            and not p.state.is_final,
        )

    @router.get("/applications/{project_id}")
    def application(request: Request, project_id: int, who: Who, svc: Svc) -> Response:
        """An application with everything a custodian weighs, and the decision forms."""
        who.require(g.Role.CUSTODIAN, "Application pages")
        return application_page(request, who, svc, project_id)

    @router.post("/applications/{project_id}/{dataset}/approve")
    def approve(
        request: Request, project_id: int, dataset: str, who: Who, svc: Svc, data: Form
    ) -> Response:
        """Approve, possibly with changes (fewer columns, less budget, an earlier end date)."""
        who.require(g.Role.CUSTODIAN, "Approving applications")
        now = svc.clock()
        with svc.db.read() as s:
            p = g.get_project(s, who.actor, project_id, now=now)
        ask = next((r for r in p.requests if r.dataset == dataset), None)
        if ask is None:
            raise NotFound(f"project {project_id} did not ask for {dataset}")
        values = {k: v for k, v in data.items() if isinstance(v, str)}
        errs: dict[str, str] = {}
        reason = values.get("reason", "").strip()
        if not reason:
            errs["reason"] = "Give the reason for your decision (it is recorded and shown)."
        columns = [str(c) for c in data.getlist("columns")]
        if not columns:
            errs["columns"] = "Approve at least one column (or reject the request)."
        allowance = None
        try:
            allowance = parse_budget(values.get("rho"), values.get("delta"))
        except ValueError as exc:
            errs["rho"] = str(exc)
        end = None
        try:
            end = parse_date(values.get("end_date"))
        except ValueError:
            errs["end_date"] = "Use the form yyyy-mm-dd."
        if errs:
            return application_page(
                request, who, svc, project_id, {dataset: errs}, {dataset: values}, 422
            )
        exact = (values.get("exact_outputs") == "yes") if p.exact_outputs else None
        try:
            with svc.db.transaction() as s:
                g.approve_request(
                    s,
                    who.actor,
                    project_id,
                    dataset,
                    reason=reason,
                    columns=None if set(columns) == set(ask.columns) else columns,
                    allowance=None if allowance == ask.budget else allowance,
                    end_date=None if end == p.requested_end_date else end,
                    exact_outputs=exact,
                    budget=svc.ledger,
                    now=now,
                )
        except UserError as exc:
            if exc.status != 422:
                raise
            field = next(
                (f for k, f in APPROVE_FIELDS.items() if k in exc.reason or k in exc.message),
                "_form",
            )
            return application_page(
                request,
                who,
                svc,
                project_id,
                {dataset: {field: exc.message}},
                {dataset: values},
                422,
            )
        return redirect(f"/applications/{project_id}", f"Approved {dataset}.")

    @router.post("/applications/{project_id}/{dataset}/reject")
    def reject(
        request: Request, project_id: int, dataset: str, who: Who, svc: Svc, data: Form
    ) -> Response:
        """Reject a requested dataset (the whole application is rejected), with a reason."""
        who.require(g.Role.CUSTODIAN, "Rejecting applications")
        reason = str(data.get("reason") or "").strip()
        if not reason:
            return application_page(
                request,
                who,
                svc,
                project_id,
                {dataset: {"reject_reason": "Say why the application is rejected."}},
                None,
                422,
            )
        with svc.db.transaction() as s:
            g.reject_request(s, who.actor, project_id, dataset, reason=reason, now=svc.clock())
        return redirect(f"/applications/{project_id}", f"Rejected {dataset}.")
