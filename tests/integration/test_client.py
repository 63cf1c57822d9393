"""The notebook client against a real API server (uvicorn subprocess) over ingested demo data.

Each answer is a polars DataFrame with `<aggregate>_hw95` columns; explain is free; a query is
charged before it is released and a repeat is free; dummy data comes from public metadata;
every refusal arrives as an exception carrying the server's reason and hint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import matplotlib
import polars as pl
import pytest
from matplotlib.container import BarContainer

import tre.client as tre
from tests.e2e.stack import Stack, running_stack
from tre.client import APIError, Client, NotConnected, TREClientError, connect

matplotlib.use("Agg")

REGIONS = [
    "North East",
    "North West",
    "Yorkshire and The Humber",
    "East Midlands",
    "West Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
]
BY_REGION = "SELECT region, COUNT(*) AS n FROM health GROUP BY region"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("demo")) as s:
        yield s


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[Client]:
    with Client(stack.api_url, stack.token(), progress=False) as c:
        yield c


def test_connect_reads_the_environment(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRE_API_URL", stack.api_url)
    monkeypatch.setenv("TRE_TOKEN", stack.token("ben"))
    monkeypatch.setattr(tre, "_default", None)
    assert tre.client().me()["user"]["username"] == "ben"
    assert tre.client().project_id == stack.state.project_id
    names = tre.datasets()["name"].to_list()
    assert names == ["benefits", "education", "health"]
    assert "TRE_TOKEN" not in repr(tre.client()) and "tre_tok_" not in repr(tre.client())


def test_connect_without_environment_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRE_API_URL", raising=False)
    monkeypatch.delenv("TRE_TOKEN", raising=False)
    with pytest.raises(NotConnected) as info:
        connect()
    assert "TRE_API_URL and TRE_TOKEN not set" in str(info.value)
    assert "JupyterHub" in str(info.value)


def test_datasets_and_schema_show_public_metadata_only(client: Client) -> None:
    ds = client.datasets()
    health = ds.filter(pl.col("name") == "health").row(0, named=True)
    assert health["rows"] > 1000 and 0 < health["people"] <= 1500
    assert health["rows_per_person_limit"] == 20
    schema = client.schema("health")
    cols = schema["column"].to_list()
    assert "region" in cols and "length_of_stay" in cols and "_tre_rank" not in cols
    region = schema.filter(pl.col("column") == "region").row(0, named=True)
    assert region["categories"].split(", ") == REGIONS
    los = schema.filter(pl.col("column") == "length_of_stay").row(0, named=True)
    assert (los["lower"], los["upper"]) == (0.0, 365.0)


def test_dummy_rows_follow_the_schema_and_never_hold_real_values(client: Client) -> None:
    df = client.dummy("health", 500, seed=1)
    assert df.height == 500
    schema = client.schema("health")
    assert df.columns == schema["column"].to_list()
    assert df["pid"].str.starts_with("dummy-").all()
    assert df["pid"].n_unique() < 500  # several rows per person, like the real data
    assert set(df["region"].to_list()) <= set(REGIONS)
    assert df["length_of_stay"].min() >= 0 and df["length_of_stay"].max() <= 365  # type: ignore[operator]
    assert df["cost"].dtype == pl.Float64 and df["length_of_stay"].dtype == pl.Int64
    # Placeholders for columns whose values are not public, never real codes or districts.
    assert df["postcode_district"].str.starts_with("postcode_district_").all()
    assert client.dummy("health", 500, seed=1).equals(df)
    assert not client.dummy("health", 500, seed=2).equals(df)
    with pytest.raises(TREClientError, match="1 to 1,000,000 rows"):
        client.dummy("health", 0)


def test_explain_is_free_and_query_is_charged_once(client: Client) -> None:
    before = client.budget().filter(pl.col("dataset") == "health").row(0, named=True)
    plan = client.explain(BY_REGION, epsilon=1.0)
    assert plan.epsilon == pytest.approx(1.0) and not plan.cached
    assert plan.groups == 9 and plan.expected_half_widths["n"] is not None
    assert any("health" in step for step in plan.plan)
    assert "ε=1" in str(plan)
    after_explain = client.budget().filter(pl.col("dataset") == "health").row(0, named=True)
    assert after_explain["rho_spent"] == before["rho_spent"]

    df = client.query(BY_REGION, epsilon=1.0)
    assert df.columns == ["region", "n", "n_hw95"]
    assert df["region"].to_list() == REGIONS
    assert df["n_hw95"].to_list() == [pytest.approx(plan.expected_half_widths["n"])] * 9
    assert client.last is not None and not client.last.cached
    assert client.last.epsilon == pytest.approx(1.0, rel=1e-3)
    spent = client.budget().filter(pl.col("dataset") == "health").row(0, named=True)
    assert spent["rho_spent"] - before["rho_spent"] == pytest.approx(client.last.rho, rel=1e-6)
    assert spent["epsilon_remaining"] < before["epsilon_remaining"]

    again = client.query(BY_REGION.lower(), epsilon=1.0)
    assert again.equals(df) and client.last.cached
    assert "spent nothing" in str(client.last)
    unchanged = client.budget().filter(pl.col("dataset") == "health").row(0, named=True)
    assert unchanged["rho_spent"] == spent["rho_spent"]

    history = client.history()
    committed = history.filter((pl.col("state") == "committed") & (pl.col("dataset") == "health"))
    assert committed.height >= 1
    assert committed["rho_spent"][0] == pytest.approx(
        client.last.rho if not client.last.cached else spent["rho_spent"] - before["rho_spent"],
        rel=1e-6,
    )
    pdf = df.to_pandas()
    assert list(pdf.columns) == ["region", "n", "n_hw95"] and len(pdf) == 9


def test_averages_by_group_and_plots_with_error_bars(client: Client) -> None:
    df = client.query(
        "SELECT admission_method, COUNT(*) AS episodes, SUM(length_of_stay) AS days "
        "FROM health GROUP BY admission_method",
        epsilon=1.0,
    )
    assert df.columns == ["admission_method", "episodes", "episodes_hw95", "days", "days_hw95"]
    ax = tre.plot(df, "admission_method", "days", title="Bed days")
    bars = next(c for c in ax.containers if isinstance(c, BarContainer))
    assert len(bars) == 4 and ax.get_title() == "Bed days"
    assert "95%" in ax.get_ylabel()
    assert bars.errorbar is not None  # the error bars are drawn
    segments = bars.errorbar.lines[2][0].get_segments()
    heights = [b.get_height() for b in bars]
    for seg, h, hw in zip(segments, heights, df["days_hw95"].to_list(), strict=True):
        assert seg[0][1] == pytest.approx(h - hw) and seg[1][1] == pytest.approx(h + hw)
    point = tre.plot(df, "admission_method", "episodes", kind="point")
    assert len(point.containers) == 1
    with pytest.raises(TREClientError, match="no column 'nope'"):
        tre.plot(df, "admission_method", "nope")


def test_refusals_carry_the_servers_reason_and_hint(client: Client) -> None:
    with pytest.raises(APIError) as info:
        client.query("SELECT pid FROM health", epsilon=0.5)
    err = info.value
    assert err.status == 422 and err.reason
    assert err.hint and err.hint in str(err) and err.reason in str(err)
    assert "<b>APIError</b>" in err._repr_html_()
    assert err._render_traceback_()[0].startswith("APIError: ")
    with pytest.raises(TREClientError, match="give epsilon or rho"):
        client.query(BY_REGION)
    with pytest.raises(APIError) as budget:
        client.query(BY_REGION.replace("COUNT(*)", "COUNT(*) + 0"), epsilon=99)
    assert budget.value.status in (409, 422)


def test_bad_unreachable_and_session_credentials(stack: Stack) -> None:
    bad = Client(stack.api_url, "tre_tok_" + "x" * 43, progress=False)
    with bad, pytest.raises(APIError) as info:
        bad.datasets()
    assert info.value.status == 401 and info.value.reason == "unauthenticated"
    nowhere = Client("http://127.0.0.1:9", "tre_tok_x", progress=False)
    with nowhere, pytest.raises(NotConnected, match="cannot reach the tre API"):
        nowhere.datasets()
    # A console session is the whole account: queries need a project token.
    session = Client(stack.api_url, stack.session("ada"), progress=False)
    with session, pytest.raises(APIError) as refused:
        session.query(BY_REGION, epsilon=0.5)
    assert refused.value.reason == "project_token_required"


def test_a_token_revoked_mid_session_stops_the_next_query(stack: Stack) -> None:
    token = stack.token("ben")
    with Client(stack.api_url, token, progress=False) as c:
        assert c.query(BY_REGION, epsilon=1.0).height == 9  # a repeat: free
        me = c.me()
        r = httpx.post(
            f"{stack.api_url}/tokens/{me['token_id']}/revoke",
            json={"reason": "laptop lost"},
            headers={"Authorization": f"Bearer {stack.session('ben')}"},
        )
        assert r.status_code == 200, r.text
        with pytest.raises(APIError) as info:
            c.query(BY_REGION, epsilon=1.0)
    assert info.value.status == 401 and "revoked" in info.value.message


def test_demo_setup_is_idempotent_and_keeps_credentials_private(
    stack: Stack, tmp_path: Path
) -> None:
    from tre.cli.demo import credentials_path, setup_demo

    path = credentials_path(stack.settings)
    assert path.stat().st_mode & 0o777 == 0o600
    assert (stack.settings.data_root.stat().st_mode & 0o777) == 0o700
    assert (stack.settings.key_dir.stat().st_mode & 0o777) == 0o700
    again = setup_demo(stack.settings, people=1500, api_url=stack.api_url)
    assert again.created == () and again.project_id == stack.state.project_id
    assert again.password("ada") == stack.state.password("ada")
    roles = {a.username: a.roles for a in again.accounts}
    assert sum("custodian" in r for r in roles.values()) == 3
    assert sum("output_checker" in r for r in roles.values()) == 2
    assert sum("researcher" in r for r in roles.values()) == 2


def _checker(stack: Stack, who: str, method: str, path: str, **kw: object) -> dict[str, object]:
    r = httpx.request(
        method,
        f"{stack.api_url}{path}",
        headers={"Authorization": f"Bearer {stack.session(who)}"},
        **kw,  # type: ignore[arg-type]
    )
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def test_an_output_request_from_the_notebook_is_reviewed_released_and_downloaded(
    client: Client, stack: Stack, tmp_path: Path
) -> None:
    df = client.query(BY_REGION, epsilon=1.0)  # a repeat: free
    assert client.last is not None
    query_id = client.last.query_id
    out = client.outputs
    req = out.create("Admissions by region")
    assert req.state == "draft" and req.project_id == stack.state.project_id
    out.add_table(req.id, "by_region", query_id, context="Episodes per region, DP ε=1.")
    ax = tre.plot(df, "region", "n")
    after = out.add_figure(
        req.id,
        "by_region_chart",
        ax,
        context="Bar chart of the table.",
        underlying="by_region.json",
    )
    names = {i.name: i for i in after.items}
    assert set(names) == {"by_region.json", "by_region_chart.png"}
    table = names["by_region.json"]
    assert table.provenance is not None and table.provenance.query == BY_REGION
    assert [(d.name, d.version) for d in table.provenance.datasets] == [("health", 1)]
    # A CSV copy carries no query provenance, so its counts are checked as record counts: a
    # noisy count can be negative (clamping at zero is the post-processing a researcher does) or
    # small, so the researcher asks for an exception, as they would for such a copy.
    copy = df.with_columns(pl.col("n").clip(lower_bound=0))
    csv = out.add_table(
        req.id,
        "by_region_copy",
        copy,
        context="The same as CSV.",
        exception="Differentially private counts (ε=1): small values are noise, not record counts.",
    )
    assert "by_region_copy.csv" in {i.name for i in csv.items}
    edited = out.add_context(req.id, "by_region_copy.csv", "The same table, as CSV, for reuse.")
    assert {i.name: i.context for i in edited.items}["by_region_copy.csv"].startswith("The same")
    assert out.submit(req.id).state == "submitted"
    assert out.status(req.id).state == "submitted" and out.list()[0].id == req.id
    with pytest.raises(APIError) as early:
        out.download(req.id, tmp_path)
    assert early.value.status == 409
    for checker in ("checker1", "checker2"):
        _checker(
            stack, checker, "POST", f"/outputs/{req.id}/decision", json={"decision": "approve"}
        )
    _checker(stack, "checker1", "POST", f"/outputs/{req.id}/release")
    assert out.status(req.id).state == "released"
    bundle = out.download(req.id, tmp_path)
    import zipfile

    with zipfile.ZipFile(bundle) as z:
        listed = z.namelist()
    assert any(n.endswith("by_region.json") for n in listed)
    assert any(n.endswith("by_region_chart.png") for n in listed)
    with pytest.raises(TREClientError, match="no answer with query id"):
        out.add_table(req.id, "x", "0000", context="nothing")
