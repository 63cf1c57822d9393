"""The console's whole story in headless Chromium against a real uvicorn server.

A researcher applies; the custodian approves with a smaller budget; the researcher issues a
project token on the console and runs a query through the API; the researcher submits an
output request (the query's table and a figure drawn from it); two output checkers review it
blind; one releases it; the researcher downloads the bundle. Then the refusals: a checker
cannot review their own request, a researcher cannot see the custodian's pages, a forged or
missing CSRF token is refused, and a logged-out session reaches no page. Screenshots of the
key pages go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import REPO, Stack, running_stack

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "test-artifacts" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BY_REGION = "SELECT region, COUNT(*) AS n FROM health GROUP BY region"
TITLE = "Hospital admissions by region (console story)"

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    if os.environ.get("TRE_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"TRE_REQUIRE_BROWSER=1 but {CHROMIUM} is missing")
    pytest.skip(
        f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium); "
        "set TRE_REQUIRE_BROWSER=1 to make its absence a failure",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("web"), people=1500) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


class Person:
    """One person's browser context, logged in to the console."""

    def __init__(self, browser: Browser, stack: Stack, username: str):
        self.stack = stack
        self.username = username
        self.context: BrowserContext = browser.new_context(
            base_url=stack.api_url, viewport={"width": 1366, "height": 900}, accept_downloads=True
        )
        self.page: Page = self.context.new_page()

    def login(self) -> Person:
        p = self.page
        p.goto("/console/")
        expect(p).to_have_title(re.compile("Log in"))
        p.get_by_label("Username").fill(self.username)
        p.get_by_label("Password").fill(self.stack.state.password(self.username))
        p.get_by_role("button", name="Log in").click()
        expect(p).to_have_title(re.compile("Console home"))
        return self

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def csrf(self) -> str:
        self.page.goto("/console/")
        return str(self.page.locator("input[name=csrf_token]").first.input_value())

    def close(self) -> None:
        self.context.close()


def _figure_png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(["a", "b"], [1, 2])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def test_the_whole_story(stack: Stack, browser: Browser, tmp_path: Path) -> None:
    # 1. A researcher applies.
    ada = Person(browser, stack, "ada").login()
    p = ada.page
    ada.shot("01-researcher-home")
    p.get_by_role("navigation").get_by_role("link", name="Apply", exact=True).click()
    p.get_by_label("Project title").fill(TITLE)
    p.get_by_label("Lay summary").fill("Which regions have the most hospital admissions?")
    p.get_by_label("Purpose").fill("Count admissions by region to plan services.")
    p.get_by_label("Public benefit").fill("Better planned hospital capacity.")
    p.get_by_label("Legal basis", exact=True).select_option("public-task")
    p.get_by_label("Ask for health").check()
    p.locator("#col_health_region").check()
    p.get_by_label("Privacy budget ρ (zCDP) for health").fill("2")
    p.get_by_label("δ for health").fill("0.000001")
    ada.shot("02-researcher-apply")
    p.get_by_role("button", name="Submit the application").click()
    expect(p.get_by_role("status")).to_contain_text("Application submitted")
    project_id = int(re.search(r"/projects/(\d+)", p.url).group(1))  # type: ignore[union-attr]

    # 2. The custodian approves with a smaller budget.
    nhs = Person(browser, stack, "nhs_custodian").login()
    q = nhs.page
    q.get_by_role("navigation").get_by_role("link", name="Applications", exact=True).click()
    nhs.shot("03-custodian-application-queue")
    q.get_by_role("link", name=re.compile(re.escape(TITLE))).click()
    expect(q.get_by_role("heading", level=1)).to_contain_text(TITLE)
    q.get_by_label("Allowance ρ").fill("0.5")
    q.get_by_label("Reason (recorded)").fill("Meets the access policy; ρ 0.5 is enough for this.")
    nhs.shot("04-custodian-application-page")
    q.get_by_role("button", name="Approve health").click()
    expect(q.get_by_role("status")).to_contain_text("Approved health")

    # 3. The researcher sees the smaller allowance, issues a token and queries the API.
    p.get_by_role("navigation").get_by_role("link", name="My projects", exact=True).click()
    section = p.locator("section", has_text=TITLE)
    expect(section).to_contain_text("ρ 0.5")
    ada.shot("05-researcher-my-projects")
    section.get_by_role("link", name=TITLE).click()
    p.get_by_role("button", name="Issue an API token").click()
    token = p.locator("#new-token").inner_text().strip()
    assert token.startswith("tre_tok_")
    r = httpx.post(
        f"{stack.api_url}/query",
        json={"sql": BY_REGION, "rho": 0.1},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    table_file = tmp_path / "by_region.json"
    table_file.write_text(json.dumps(answer))
    figure_file = tmp_path / "by_region.png"
    figure_file.write_bytes(_figure_png())
    p.get_by_role("navigation").get_by_role("link", name="My queries", exact=True).click()
    expect(p.locator("pre.sql").first).to_contain_text("GROUP BY region")
    ada.shot("06-researcher-my-queries")

    # 4. The researcher submits an output request: the table and a figure drawn from it.
    p.get_by_role("navigation").get_by_role("link", name="My output requests", exact=True).click()
    p.get_by_label("Project").select_option(str(project_id))
    p.get_by_label("Title of the request").fill("Admissions by region")
    p.get_by_role("button", name="Create a draft").click()
    request_id = int(re.search(r"/outputs/(\d+)", p.url).group(1))  # type: ignore[union-attr]
    p.get_by_label("File", exact=True).set_input_files(str(table_file))
    p.get_by_label("Kind").select_option("table")
    p.get_by_label("Context and controls").fill("Noisy counts of admissions by region (ρ 0.1).")
    p.get_by_role("button", name="Add the output").click()
    expect(p.get_by_role("status")).to_contain_text("Added by_region.json")
    p.get_by_label("File", exact=True).set_input_files(str(figure_file))
    p.get_by_label("Kind").select_option("figure")
    p.get_by_label("Context and controls").fill("Bar chart of the table by_region.json.")
    p.get_by_label("Underlying table").fill("by_region.json")
    p.get_by_role("button", name="Add the output").click()
    expect(p.get_by_role("status")).to_contain_text("Added by_region.png")
    p.get_by_role("button", name="Submit for review").click()
    expect(p.get_by_role("status")).to_contain_text("Submitted")
    ada.shot("07-researcher-output-request")

    # 5. Checker 1 reviews; checker 2 cannot see that decision; checker 2 reviews.
    c1 = Person(browser, stack, "checker1").login()
    a = c1.page
    a.get_by_role("navigation").get_by_role("link", name="Review queue", exact=True).click()
    expect(a.get_by_role("link", name=re.compile("Admissions by region"))).to_be_visible()
    c1.shot("08-checker-review-queue")
    a.get_by_role("link", name=re.compile("Admissions by region")).click()
    expect(a.locator("img[alt^='Figure by_region.png']")).to_be_visible()
    expect(a.locator("table", has_text="region").first).to_be_visible()
    c1.shot("09-checker-review-page")
    a.get_by_label("Approve").check()
    a.get_by_label("Comment for the author").fill("Counts are noisy and large; fine.")
    a.get_by_role("button", name="Record my decision").click()
    expect(a.get_by_role("status")).to_contain_text("under review")

    c2 = Person(browser, stack, "checker2").login()
    b = c2.page
    b.goto(f"/console/review/{request_id}")
    expect(b.locator("main")).to_contain_text("hidden until both reviews are in")
    expect(b.locator("main")).not_to_contain_text("Counts are noisy and large")
    c2.shot("10-checker2-blind-review")
    b.get_by_label("Approve").check()
    b.get_by_role("button", name="Record my decision").click()
    expect(b.get_by_role("status")).to_contain_text("approved")
    expect(b.locator("main")).to_contain_text("Counts are noisy and large")  # both in: visible

    # A stale page: checker 1 still shows the decision form... no: it shows the outcome.
    # 6. Release.
    b.get_by_role("button", name="Release to the project").click()
    expect(b.get_by_role("status")).to_contain_text("Released")
    c2.shot("11-checker-released")

    # 7. The researcher downloads the bundle.
    p.goto(f"/console/outputs/{request_id}")
    with p.expect_download() as info:
        p.get_by_role("link", name="Download the released bundle").click()
    bundle = zipfile.ZipFile(info.value.path())
    names = bundle.namelist()
    assert any(n.endswith("by_region.json") for n in names), names
    assert any(n.endswith("by_region.png") for n in names), names
    ada.shot("12-researcher-released-request")

    # The custodian's budget dashboard shows the spending.
    q.goto("/console/datasets/health")
    expect(q.locator("svg.chart")).to_be_visible()
    expect(q.locator("main")).to_contain_text(TITLE)
    nhs.shot("13-custodian-budget-dashboard")

    # The admin sees the audit log verified.
    admin = Person(browser, stack, "admin").login()
    admin.page.get_by_role("navigation").get_by_role("link", name="Audit log", exact=True).click()
    expect(admin.page.locator("main")).to_contain_text("Chain verified")
    admin.shot("14-admin-audit-log")
    admin.page.get_by_role("navigation").get_by_role("link", name="Users", exact=True).click()
    admin.shot("15-admin-users")
    for person in (ada, nhs, c1, c2, admin):
        person.close()


def test_refusals_in_the_browser(stack: Stack, browser: Browser) -> None:
    # A researcher cannot see the custodian's pages (nor find them in the navigation).
    ben = Person(browser, stack, "ben").login()
    p = ben.page
    expect(p.get_by_role("navigation")).not_to_contain_text("Applications")
    p.goto("/console/applications")
    expect(p).to_have_title(re.compile("Not allowed"))
    ben.shot("16-researcher-refused-custodian-page")

    # A forged CSRF token is refused, and so is a missing one.
    p.goto("/console/outputs")
    p.get_by_label("Title of the request").fill("Forged")
    p.locator("form[action='/console/outputs'] input[name=csrf_token]").evaluate(
        "el => el.value = 'forged'"
    )
    p.get_by_role("button", name="Create a draft").click()
    expect(p).to_have_title(re.compile("Not allowed"))
    expect(p.locator("main")).to_contain_text("security token is missing or does not match")
    ben.shot("17-forged-csrf-refused")
    r = p.request.post(
        f"{stack.api_url}/console/outputs", form={"project_id": "1", "title": "No token"}
    )
    assert r.status == 403

    # A checker cannot review their own request: the admin makes ben (a project member) a
    # checker too; ben writes a request and tries to review it.
    admin = Person(browser, stack, "admin").login()
    a = admin.page
    a.get_by_role("navigation").get_by_role("link", name="Users", exact=True).click()
    row = a.locator("tr", has_text="ben")
    row.get_by_label("output checker").check()
    row.get_by_role("button", name="Save").click()
    expect(a.get_by_role("status")).to_contain_text("Updated ben")
    p.goto("/console/outputs")
    p.get_by_label("Title of the request").fill("Ben's notes")
    p.get_by_role("button", name="Create a draft").click()
    request_id = int(re.search(r"/outputs/(\d+)", p.url).group(1))  # type: ignore[union-attr]
    p.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"Method notes only."}]
    )
    p.get_by_label("Kind").select_option("text")
    p.get_by_label("Context and controls").fill("Methods.")
    p.get_by_role("button", name="Add the output").click()
    p.get_by_role("button", name="Submit for review").click()
    p.goto(f"/console/review/{request_id}")
    expect(p.locator("main")).to_contain_text("You cannot review this request")
    ben.shot("18-checker-own-request-refused")
    r = p.request.post(
        f"{stack.api_url}/console/review/{request_id}/decide",
        form={"csrf_token": ben.csrf(), "decision": "approve"},
    )
    assert r.status == 403

    # A logged-out session reaches no page.
    p.get_by_role("button", name="Log out").click()
    expect(p).to_have_title(re.compile("Log in"))
    for path in ("/console/", "/console/projects", "/console/review", "/console/outputs"):
        p.goto(path)
        expect(p).to_have_title(re.compile("Log in"))
    ben.close()
    admin.close()
