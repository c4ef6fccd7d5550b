"""The UI in a real browser against a real server: live pages, the buttons, the roles."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from jobyard.units import duration
from tests.databases import BACKENDS
from tests.e2e.browser import PHONE, WIDE, logged_in, shot
from tests.harness import Server, shared_server, start_run

CONFIG = Path(__file__).with_name("jobyard.yaml")
# SQLite: what is tested here is the browser side.
server = shared_server(backends=[BACKENDS[0]], config=CONFIG)
VIEWER = ("vera", "viewer-password-1")
AT_THE_END = """() => {
    const log = document.getElementById("log");
    const below = log.scrollHeight - log.scrollTop - log.clientHeight;
    return log.scrollHeight > log.clientHeight && below < 10;
}"""


# How long a page's own script is held back on the wire: what the stream tells meanwhile
# (its events, and the refreshes they ask for) comes before the page's scripts and htmx.
HOLD = 2.0


def holding(page: Page, script: str, meanwhile: Callable[[], object]) -> None:
    """Hold ``script`` of the pages ``page`` opens: ``meanwhile`` happens, HOLD passes,
    then the script comes."""

    def hold(route: Route) -> None:
        meanwhile()
        time.sleep(HOLD)  # not a wait for something: the slow network being played
        route.continue_()

    page.route(f"**/static/js/{script}*", hold)


@pytest.fixture
def admin(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    context = logged_in(browser, server)
    yield context
    context.close()


@pytest.fixture
def page(admin: BrowserContext) -> Page:
    return admin.new_page()


def test_the_dashboard_counts_and_lists_live(page: Page, server: Server) -> None:
    page.goto("/")
    held = page.locator(".count-held strong")
    before = int(held.inner_text())
    job = server.submit("sleep", args={"seconds": 30}, hold=True)
    expect(held).to_have_text(str(before + 1))  # no reload: the event stream refreshed it
    running = server.submit("ticker", args={"count": 200, "pause": 0.1})
    expect(page.locator(f"#running tr[data-job='{running['id']}']")).to_be_visible()
    shot(page, "dashboard")
    server.act(job["id"], "kill", expect=200)
    server.act(running["id"], "kill")


def test_a_job_submitted_through_its_form_streams_and_obeys_the_buttons(
    page: Page, server: Server
) -> None:
    page.goto("/submit")
    page.get_by_role("link", name="ticker").click()
    page.fill("#field-count", "0")  # under the minimum: the server says so by the field
    page.select_option("#field-colour", "blue")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#error-count")).to_contain_text("1")
    expect(page.locator("#field-count")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#field-colour")).to_have_value("blue")  # what was typed stays
    shot(page, "submit-errors")
    page.fill("#field-count", "600")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    job = server.job(int(page.url.rsplit("/", 1)[1]))
    assert job["args"] == {"count": 600, "pause": 0.05, "colour": "blue", "loud": False}

    log = page.locator("#log")
    expect(log).to_contain_text("tick 1")
    shown = log.locator(".line").count()
    expect(log.locator(".line")).not_to_have_count(shown)  # more lines arrived, no reload
    page.wait_for_function(AT_THE_END)  # and the box follows them

    state = page.locator(".job-head .state")
    page.get_by_role("button", name="Pause").click()
    expect(state).to_have_text("paused")
    paused_at = log.locator(".line").count()
    page.get_by_role("button", name="Resume").click()
    expect(state).to_have_text("running")
    expect(log.locator(".line")).not_to_have_count(paused_at)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Kill").click()
    expect(state).to_have_text("killed")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    shot(page, "job")

    page.get_by_role("button", name="Restart").click()
    page.wait_for_url(re.compile(rf"/jobs/(?!{job['id']}$)\d+$"))  # the new job's page
    expect(page.locator("a", has_text=f"job {job['id']}")).to_be_visible()  # restart of
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Kill").click()
    expect(page.locator(".job-head .state")).to_have_text("killed")


def test_a_flood_of_lines_keeps_the_page_live_and_its_tail_bounded(
    page: Page, server: Server
) -> None:
    job = server.submit("flood", args={"count": 20000}, hold=True)
    page.goto(f"/jobs/{job['id']}")
    server.act(job["id"], "start", expect=200)  # its lines come through the page's stream
    log = page.locator("#log")
    # Each line laid the page out again: 20,000 took a minute, with the tab frozen.
    expect(log.locator(".line").last).to_have_text("20000")
    note = re.compile(r"… 150\d\d earlier lines: download the full log")  # its own lines too
    expect(log.locator(".line").first).to_have_text(note)
    expect(log.locator(".line")).to_have_count(5001)
    page.wait_for_function(AT_THE_END)


def test_a_log_shows_what_a_terminal_would_live_and_after_a_reload(
    page: Page, server: Server
) -> None:
    job = server.submit("colours", hold=True)
    page.goto(f"/jobs/{job['id']}")
    server.act(job["id"], "start", expect=200)
    lines = page.locator("#log .line.stdout")
    expect(lines).to_have_text(["red", "100%"])  # no escape codes; the last writing only
    page.reload()
    expect(lines).to_have_text(["red", "100%"])
    raw = server.client.get(f"/jobs/{job['id']}/log.txt").text
    assert "\x1b[31mred" in raw  # the download keeps the bytes as written


def test_a_failure_shows_a_toast_on_any_page(page: Page, server: Server) -> None:
    page.goto("/jobs")
    job = server.submit("fail", args={"code": 7})
    toast = page.locator("#toasts .toast-error", has_text=f"Job {job['id']}")
    expect(toast).to_contain_text("failed")
    shot(page, "toast")
    toast.get_by_role("link").click()
    page.wait_for_url(f"**/jobs/{job['id']}")
    expect(page.locator(".job-head .state")).to_have_text("failed")


def test_the_job_list_filters_and_acts_on_a_selection(page: Page, server: Server) -> None:
    ids = [server.submit("sleep", args={"seconds": 30}, hold=True)["id"] for _ in range(3)]
    page.goto("/jobs?state=held&sort=id")
    expect(page.locator("#job-table tbody tr")).to_have_count(3)
    for job_id in ids[:2]:
        page.check(f"input[name=job][value='{job_id}']")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Kill").click()
    expect(page.locator("#job-table tbody tr")).to_have_count(1)  # the killed left the view
    assert server.job(ids[0])["state"] == "killed"
    assert server.job(ids[2])["state"] == "held"
    shot(page, "jobs")
    server.act(ids[2], "kill", expect=200)


def test_a_bulk_action_tells_one_line_per_reason(page: Page, server: Server) -> None:
    ended = [server.submit("noop")["id"] for _ in range(3)]
    for job_id in ended:
        server.wait_state(job_id, "succeeded")
    held = server.submit("sleep", args={"seconds": 30}, hold=True)["id"]
    page.goto("/jobs?type=noop,sleep&sort=-id&per_page=25")
    for job_id in [*ended, held]:
        page.check(f"input[name=job][value='{job_id}']")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Kill").click()
    expect(page.locator("#toasts .toast-ok")).to_have_text(re.compile("Kill: 1 of 4 done"))
    errors = page.locator("#toasts .toast-error")
    expect(errors).to_have_count(1)  # not one a job: they buried the summary
    listed = ", ".join(str(i) for i in reversed(ended))  # in the table's order
    expect(errors).to_contain_text(f"(jobs {listed})")
    assert server.job(held)["state"] == "killed"


def test_the_job_list_shows_progress_live(page: Page, server: Server, tmp_path: Path) -> None:
    # The list has no poll: only the event stream can move the bar.
    gate = tmp_path / "second-step"
    job = server.submit("stepper", args={"path": str(gate)})
    server.wait_state(job["id"], "running")
    page.goto("/jobs?state=running")
    bar = page.locator(f"[data-progress-of='{job['id']}'] [role=progressbar]")
    expect(bar).to_have_attribute("aria-valuenow", "10", timeout=20_000)
    gate.touch()
    expect(bar).to_have_attribute("aria-valuenow", "90", timeout=20_000)
    server.act(job["id"], "kill")


def test_a_viewer_sees_no_control(browser: Browser, server: Server) -> None:
    made = server.client.post(
        "/api/v1/users", json={"name": VIEWER[0], "password": VIEWER[1], "role": "viewer"}
    )
    assert made.status_code == 201, made.text
    job = server.submit("sleep", args={"seconds": 30}, hold=True)
    context = logged_in(browser, server, VIEWER, viewport=PHONE)
    page = context.new_page()
    try:
        page.goto(f"/jobs/{job['id']}")
        expect(page.locator(".job-head .state")).to_have_text("held")
        expect(page.locator("#actions button")).to_have_count(0)
        page.goto("/")
        expect(page.locator(".queues")).to_be_visible()
        expect(page.get_by_role("button", name="Pause")).to_have_count(0)
        page.goto("/jobs")
        expect(page.locator("[data-batch]")).to_have_count(0)
        expect(page.get_by_role("link", name="Submit")).to_have_count(0)
        shot(page, "jobs-viewer-phone")
    finally:
        context.close()
        server.act(job["id"], "kill", expect=200)


def test_the_schedule_buttons_show_their_effect_at_once(page: Page, server: Server) -> None:
    body = {"name": "nightly-noop", "job_type": "noop", "cron": "0 3 * * *"}
    made = server.client.post("/api/v1/schedules", json=body)
    assert made.status_code == 201, made.text
    page.goto("/schedules")
    row = page.locator("#schedule-nightly-noop")
    row.get_by_role("button", name="Pause").click()
    # Well within the table's own 30 s poll: the answer refreshed it.
    expect(row.get_by_role("button", name="Resume")).to_be_visible(timeout=10_000)
    row.get_by_role("button", name="Resume").click()
    expect(row.get_by_role("button", name="Pause")).to_be_visible(timeout=10_000)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0, timeout=10_000)
    assert server.client.get("/api/v1/schedules/nightly-noop").status_code == 404


def test_a_workflow_run_turns_its_nodes_green(page: Page, server: Server) -> None:
    page.goto("/workflows/slow")
    expect(page.locator("#graph .node")).to_have_count(2)
    shot(page, "workflow")
    page.get_by_role("button", name="Start a run").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    first, then = (
        page.locator("#graph .node[data-node=a]"),
        page.locator("#graph .node[data-node=b]"),
    )
    expect(first).to_have_attribute("data-state", "running")
    expect(then).to_have_attribute("data-state", "waiting")
    expect(first).to_have_attribute("data-state", "succeeded")
    expect(then).to_have_attribute("data-state", "succeeded")  # no reload: the stream said so
    # What a screen reader says of a node follows it too (its title did, its label not).
    expect(first.get_by_role("link")).to_have_attribute("aria-label", "a: succeeded")
    expect(then.get_by_role("link")).to_have_attribute("aria-label", "b: succeeded")
    expect(page.locator("#run-live .state").first).to_have_text("succeeded")
    shot(page, "run")


def test_a_resumed_run_shows_its_new_jobs_without_a_reload(page: Page, server: Server) -> None:
    page.goto("/workflows/slow")
    page.get_by_role("button", name="Start a run").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    first = page.locator("#graph .node[data-node=a]")
    expect(first).to_have_attribute("data-state", "running")
    row = page.locator("#nodes tr[data-node=a]")
    killed = row.locator("a").first.inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop").click()
    expect(first).to_have_attribute("data-state", "killed")
    page.get_by_role("button", name="Resume").click()
    # The resume makes each stopped node a new job, and only its job_created says so
    # while the node waits (a's new job runs for 3 s before b's may start).
    expect(page.locator("#graph .node[data-node=b]")).to_have_attribute("data-state", "waiting")
    expect(page.locator("#nodes tr[data-node=b] [data-node-state]")).to_have_text("waiting")
    expect(row.locator("a").first).not_to_have_text(killed)
    expect(first).to_have_attribute("data-state", "succeeded")


def test_a_run_stopped_elsewhere_says_so_without_a_reload(page: Page, server: Server) -> None:
    """A stop tells nothing of the run itself, only its nodes' ends: the page still said
    "running", with Stop and no Resume."""
    started = server.client.post("/api/v1/workflows/long/runs", json={})
    assert started.status_code == 201, started.text
    run = started.json()
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#run-live .state").first).to_have_text("running")
    assert server.client.post(f"/api/v1/workflow-runs/{run['id']}/stop").status_code == 200
    expect(page.locator("#run-live .state").first).to_have_text("stopped")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()


def test_the_job_list_follows_a_workflows_jobs(page: Page, server: Server) -> None:
    """A workflow job's states come as workflow_node_state, which the list did not
    listen to: its row froze where it appeared."""
    page.goto("/jobs?type=ticker,noop&sort=-id")
    expect(page.locator("#job-table")).to_be_visible()
    started = server.client.post("/api/v1/workflows/slow/runs", json={})
    assert started.status_code == 201, started.text
    nodes = started.json()["nodes"]
    for name in ("a", "b"):  # b's row shows with the run; it waits, then runs and ends
        row = page.locator(f"#job-row-{nodes[name]['job_id']}")
        expect(row).to_have_attribute("data-state", "succeeded", timeout=30_000)


def test_times_ago_count_on_while_the_page_is_open(page: Page, server: Server) -> None:
    job = server.submit("noop", hold=True)
    page.goto("/jobs?state=held&sort=-id")
    created = page.locator(f"tr:has(a[href='/jobs/{job['id']}']) time[data-ago]").first
    expect(created).to_have_text(re.compile(r"^\d+ s ago$"))
    shown = created.inner_text()
    # Counted on in the page: "0 s ago" for as long as it was open was a stale page.
    expect(created).not_to_have_text(shown, timeout=10_000)
    expect(created).to_have_text(re.compile(r"^\d+ s ago$"))


# Where a figure rolls over to the next unit, either side, and rounding halves.
ROLL_OVERS = [0, 0.0005, 0.9994, 0.9995, 4.25, 59.4, 59.6, 59.94, 59.95, 65.4, 3569, 3571]
ROLL_OVERS += [3599.4, 3599.5, 7829.9, 7830, 172_769, 172_771, 273_600, -5]


def test_the_page_writes_durations_as_the_server_does(page: Page) -> None:
    page.goto("/")
    written = "([values, coarse]) => values.map((s) => window.jobyardDuration(s, coarse))"
    for coarse in (False, True):
        shown = page.evaluate(written, [ROLL_OVERS, coarse])
        assert shown == [duration(s, coarse=coarse) for s in ROLL_OVERS]


def test_an_admin_writes_a_job_type_and_sees_its_form_first(page: Page, server: Server) -> None:
    page.goto("/types")
    page.fill("#type-name", "greet")
    definition = '{"command": ["echo", "{who}"], "params": {"who": {"type": "string", "enum": '
    page.fill("#type-definition", definition)  # not JSON yet
    expect(page.locator("#preview-problems")).to_contain_text("not JSON yet")
    page.fill("#type-definition", definition + '["ann", "bob"], "description": "Whom"}}}')
    expect(page.locator("#preview select option")).to_have_count(2)  # the form it makes
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/types/greet")
    expect(page.locator("h1")).to_contain_text("greet")
    assert server.client.get("/api/v1/job-types/greet").json()["source"] == "api"


PAGES = [
    "/",
    "/jobs",
    "/submit",
    "/submit/ticker",
    "/workflows",
    "/workflows/slow",
    "/schedules",
    "/queues",
    "/workers",
    "/types",
    "/types/ticker",
    "/notifications",
    "/audit",
    "/account",
    "/docs",
    "/redoc",
]


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["wide", "phone"])
def test_every_page_renders_without_script_errors(
    browser: Browser, server: Server, viewport: dict[str, int]
) -> None:
    stranger = browser.new_context(base_url=server.url, viewport=viewport)  # type: ignore[arg-type]
    login = stranger.new_page()
    login.goto("/jobs")
    expect(login.locator("#username")).to_be_focused()
    shot(login, f"page-login-{'wide' if viewport is WIDE else 'phone'}")
    stranger.close()
    context = logged_in(browser, server, viewport=viewport)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        for path in PAGES:
            page.goto(path)
            expect(page.locator("h1, h2, .swagger-ui, redoc").first).to_be_visible()
            name = path.strip("/").replace("/", "-") or "dashboard"
            shot(page, f"page-{name}-{'wide' if viewport is WIDE else 'phone'}")
            if path not in ("/docs", "/redoc"):  # ours: no page is wider than the screen
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= viewport["width"], f"{path} is {wide} px wide"
        page.goto("/types")
        # The browser checks the name's pattern itself (a pattern it cannot compile it
        # skips, with an error on the console).
        name_field = page.locator("#type-name")
        assert (
            name_field.evaluate("e => { e.value = 'two words'; return e.checkValidity(); }")
            is False
        )
        assert name_field.evaluate("e => { e.value = 'db.export-2'; return e.checkValidity(); }")
        page.goto("/jobs")
        page.keyboard.press("Tab")  # the first stop: the skip link, visibly focused
        expect(page.locator(".skip")).to_be_focused()
        outline = page.locator(".skip").evaluate("e => getComputedStyle(e).outlineStyle")
        assert outline == "solid"
    finally:
        context.close()
    assert errors == []


def test_a_run_page_misses_nothing_that_happens_while_it_loads(page: Page, server: Server) -> None:
    """The page's stream opened before run.js (and htmx) were there: the events it got
    meanwhile had no listener, and the graph showed the node running for good."""
    run = start_run(server, "long")
    stop = f"/api/v1/workflow-runs/{run['id']}/stop"
    holding(page, "run.js", lambda: server.client.post(stop).raise_for_status())
    page.goto(f"/runs/{run['id']}")
    node = page.locator("#graph .node[data-node=a]")
    expect(node).to_have_attribute("data-state", "killed")
    expect(page.locator("#nodes tr[data-node=a] [data-node-state]")).to_have_text("killed")
    expect(page.locator("#run-live .state").first).to_have_text("stopped")


def test_the_job_list_misses_nothing_that_happens_while_it_loads(
    page: Page, server: Server
) -> None:
    """The list has no poll: a kill told while jobs.js came refreshed a table htmx had
    not taken in yet, and the row stayed held."""
    job = server.submit("sleep", args={"seconds": 30}, hold=True)
    holding(page, "jobs.js", lambda: server.act(job["id"], "kill", expect=200))
    page.goto("/jobs?type=sleep&sort=-id")
    expect(page.locator(f"#job-row-{job['id']}")).to_have_attribute("data-state", "killed")
