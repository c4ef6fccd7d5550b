"""The pages over plain HTTP: each answers for an admin, sends a stranger to the login,
and the links that notifications carry lead to them."""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import jobyard.ui
from jobyard.notify.channels import NotificationConfig
from tests.databases import BACKENDS
from tests.harness import ADMIN, Launcher, Server, run_in, shared_server, start_run, wait_for

server = shared_server(backends=[BACKENDS[0]])
PAGES = [
    "/",
    "/jobs",
    "/jobs?state=failed,killed&type=echo&sort=-created_at&page=2&per_page=25",
    "/jobs?state=nonsense&sort=nonsense",
    "/queues",
    "/schedules",
    "/workers",
    "/types",
    "/types/echo",
    "/notifications",
    "/notifications?status=sent&event=failed&page=3",
    "/audit",
    "/audit?actor=admin&search=jobs",
    "/workflows",
    "/workflows/diamond",
    "/workflows/diamond?page=2",
    "/workflows/diamond/start",
    "/submit",
    "/submit/echo",
    "/account",
]


ODD_NUMBERS = ["\u00b2", "9" * 5000, "-1", "0", "x"]  # a superscript two: isdigit, but no int


@pytest.mark.parametrize("number", ODD_NUMBERS)
@pytest.mark.parametrize("page", ["/jobs", "/notifications", "/audit", "/workflows/diamond"])
def test_an_odd_page_number_shows_the_first_page(server: Server, page: str, number: str) -> None:
    response = server.client.get(page, params={"page": number, "per_page": number})
    assert response.status_code == 200, response.text
    assert "<main" in response.text


@pytest.fixture(scope="module")
def job(server: Server) -> dict[str, object]:
    made = server.submit("lines", args={"count": 3})
    return server.wait_state(int(made["id"]), "succeeded")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_an_admin(server: Server, path: str) -> None:
    response = server.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<main" in response.text


def test_the_job_page_and_its_log(server: Server, job: dict[str, object]) -> None:
    page = server.client.get(f"/jobs/{job['id']}")
    assert page.status_code == 200
    assert "line 2" in page.text
    assert "err 2" in page.text
    # Its command as a shell would read it, lines kept (the CSS keeps them apart).
    assert '<code class="command">python3 -c &#39;import sys\nfor i in range' in page.text
    style = server.client.get("/static/css/app.css").text
    assert "code.command { white-space: pre-wrap; }" in style
    log = server.client.get(f"/jobs/{job['id']}/log.txt")
    assert log.status_code == 200
    assert log.headers["content-disposition"] == f'attachment; filename="job-{job["id"]}.log"'
    assert "line 0\n" in log.text
    assert "[stderr] err 0\n" in log.text


def test_a_missing_job_or_type_is_a_page_that_says_so(server: Server) -> None:
    beyond = 2**63  # no row's id (out of range on PostgreSQL, an overflow in SQLite)
    for path in (
        "/jobs/999999",
        "/types/no-such-type",
        f"/jobs/{beyond}",
        f"/runs/{beyond}",
        "/jobs/abc",  # a mistyped address is a page too, not the API's problem document
        "/runs/abc",
        "/jobs/-1",
        f"/jobs/{beyond}/log.txt",
        "/jobs/abc/log.txt",
        f"/jobs/{'9' * 5000}",  # beyond what int() reads
    ):
        response = server.client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "Not found" in response.text


@pytest.mark.parametrize("path", ["/", "/jobs?state=failed", "/audit", "/jobs/1"])
def test_a_stranger_goes_to_the_login_and_comes_back(server: Server, path: str) -> None:
    with httpx.Client(base_url=server.url) as stranger:
        response = stranger.get(path)
        assert response.status_code == 303
        target = urlsplit(response.headers["location"])
        assert target.path == "/login"
        assert parse_qs(target.query)["next"] == [path]
        login = stranger.get(response.headers["location"])
        assert login.status_code == 200
        assert f'value="{path}"' in login.text.replace("&amp;", "&")


def test_a_live_part_without_a_session_sends_the_whole_page_to_the_login(server: Server) -> None:
    headers = {"HX-Request": "true", "HX-Current-URL": f"{server.url}/jobs?state=failed"}
    with httpx.Client(base_url=server.url) as stranger:
        response = stranger.get("/jobs?state=failed", headers=headers)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/jobs%3Fstate%3Dfailed"


def test_a_login_through_the_form_opens_the_page_asked_for(server: Server) -> None:
    with httpx.Client(base_url=server.url) as browser:
        wrong = browser.post("/login", data={"username": "admin", "password": "nope", "next": "/"})
        assert wrong.status_code == 401
        assert "Wrong user name or password" in wrong.text
        # The name is kept and the password field focused; both are marked invalid.
        assert 'value="admin" autocomplete="username" required aria-invalid="true">' in wrong.text
        assert 'required autofocus aria-invalid="true">' in wrong.text
        right = browser.post(
            "/login",
            data={"username": "admin", "password": ADMIN[1], "next": "/jobs?state=held"},
        )
        assert right.status_code == 303
        assert right.headers["location"] == "/jobs?state=held"
        page = browser.get("/jobs?state=held")
        assert page.status_code == 200
        assert 'hx-headers:inherited=\'{"X-CSRF-Token": "' in page.text  # for the buttons


def test_the_login_goes_nowhere_but_here(server: Server) -> None:
    with httpx.Client(base_url=server.url) as browser:
        data = {"username": "admin", "password": ADMIN[1], "next": "https://evil.test/"}
        response = browser.post("/login", data=data)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_the_links_of_notifications_open_pages(server: Server, job: dict[str, object]) -> None:
    links = NotificationConfig(public_url=server.url)
    page = server.client.get(str(links.job_link(int(str(job["id"])))))
    assert page.status_code == 200
    assert f"Job {job['id']}" in page.text
    run = start_run(server, "diamond")
    page = server.client.get(str(links.run_link(run["id"])))
    assert page.status_code == 200
    assert "diamond" in page.text


def test_the_api_documentation_works_offline(server: Server) -> None:
    for path, asset in (
        ("/docs", "/static/vendor/swagger-ui/swagger-ui-bundle.js"),
        ("/redoc", "/static/vendor/redoc/redoc.standalone.js"),
    ):
        page = server.client.get(path)
        assert page.status_code == 200
        assert asset in page.text
        assert "cdn." not in page.text
        assert "fonts.googleapis" not in page.text
        with httpx.Client(base_url=server.url) as anyone:
            assert anyone.get(asset).status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_a_stranger_reads_the_api_documentation_after_the_login(server: Server, path: str) -> None:
    with httpx.Client(base_url=server.url) as stranger:
        response = stranger.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"
        document = stranger.get("/openapi.json")
        assert document.status_code == 401
        assert document.headers["content-type"] == "application/problem+json"
        stranger.post("/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        assert stranger.get(path).status_code == 200
        assert "/api/v1/jobs" in stranger.get("/openapi.json").json()["paths"]


def _session(server: Server) -> tuple[httpx.Client, str]:
    """A browser-like client logged in with a session, and its CSRF token."""
    browser = httpx.Client(base_url=server.url)
    login = browser.post("/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert login.status_code == 200, login.text
    return browser, login.json()["csrf_token"]


def test_a_failed_job_says_its_exit_code_once_and_its_retries_as_times(server: Server) -> None:
    failed = server.submit("fail", args={"code": 7})
    server.wait_state(failed["id"], "failed")
    text = server.client.get(f"/jobs/{failed['id']}").text
    assert "exit code 7" in text
    assert "exit code</small>" not in text  # the reason, said again beside the code
    assert not re.search(r"again at \d{4}-\d\d-\d\dT", text)  # a time for people
    assert re.search(r'again at <time datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:', text)
    assert "Not before" not in text  # it ended: there is no next try


def test_the_submit_form_names_every_bad_field_at_once(server: Server) -> None:
    # A field that could not be read hid the others' errors until it was mended.
    browser, token = _session(server)
    try:
        headers = {"HX-Request": "true", "X-CSRF-Token": token}
        sent = browser.post("/submit/echo", data={"text": "", "repeat": "many"}, headers=headers)
        assert 'id="error-repeat"' in sent.text  # not a number: the form's own error
        assert 'id="error-text"' in sent.text  # required: the type's
        assert "HX-Redirect" not in sent.headers
        # The submission's own settings too: a queue not declared beside a name too long.
        options = {"text": "x", "_queue": "nope", "_name": "n" * 300}
        both = browser.post("/submit/echo", data=options, headers=headers).text
        assert 'id="error-_queue"' in both
        assert 'id="error-_name"' in both
        assert 'id="opt-name" name="_name"' in both
        name_input = both[both.index('id="opt-name"') :].split(">")[0]
        assert 'aria-invalid="true"' in name_input
        # A setting the API refuses skipped the arguments' check: only it was named.
        for setting in ({"_name": "n" * 300}, {"_priority": "2000000"}, {"_queue": "nope"}):
            refused = {"text": "", "repeat": "0", **setting}
            every = browser.post("/submit/echo", data=refused, headers=headers).text
            for field in ("text", "repeat", *setting):
                assert f'id="error-{field}"' in every, (setting, field)
            assert "3 fields to correct" in every, setting
    finally:
        browser.close()


def test_a_required_choice_is_made_by_the_user_not_by_the_form(server: Server) -> None:
    # Its first value was shown chosen, so a submit that chose nothing sent it.
    level = {"type": "integer", "enum": [1, 2, 3], "required": True}
    definition = {"command": ["echo", "{level}"], "params": {"level": level}}
    assert server.client.put("/api/v1/job-types/leveled", json=definition).status_code == 201
    browser, token = _session(server)
    try:
        form = browser.get("/submit/leveled").text
        [options] = re.findall(r'<select id="field-level"[^>]*>(.*?)</select>', form, re.S)
        assert re.findall(r"<option[^>]*>([^<]*)</option>", options) == ["choose…", "1", "2", "3"]
        assert " selected" not in options
        headers = {"HX-Request": "true", "X-CSRF-Token": token}
        unchosen = browser.post("/submit/leveled", data={"level": ""}, headers=headers)
        assert 'id="error-level"' in unchosen.text
        assert "HX-Redirect" not in unchosen.headers  # nothing submitted
    finally:
        browser.close()
        server.client.delete("/api/v1/job-types/leveled")


def test_the_submit_form_needs_the_csrf_token_and_names_bad_fields(server: Server) -> None:
    browser, token = _session(server)
    try:
        form = {"text": "hello", "repeat": "50", "_hold": "true"}
        refused = browser.post("/submit/echo", data=form, headers={"HX-Request": "true"})
        assert refused.status_code == 403  # no token: another site could have sent it
        headers = {"HX-Request": "true", "X-CSRF-Token": token}
        wrong = browser.post("/submit/echo", data=form, headers=headers)
        assert wrong.status_code == 200
        assert 'id="error-repeat"' in wrong.text  # the server's error, by its field
        assert 'value="hello"' in wrong.text  # what was typed stays
        form["repeat"] = "2"
        right = browser.post("/submit/echo", data=form, headers=headers)
        assert right.status_code == 200
        target = right.headers["HX-Redirect"]
        job = server.job(int(target.rsplit("/", 1)[1]))
    finally:
        browser.close()
    assert target == f"/jobs/{job['id']}"
    assert (job["state"], job["args"]) == ("held", {"text": "hello", "repeat": 2})


def test_the_submit_form_refuses_what_the_api_refuses(server: Server) -> None:
    # Values no database can store, and the API's bounds: by field, and no job made.
    browser, token = _session(server)
    headers = {"HX-Request": "true", "X-CSRF-Token": token}
    huge = "99999999999999999999999"
    before = server.client.get("/api/v1/jobs", params={"type": "echo"}).json()["total"]
    try:
        form = {"text": "a\x00b", "repeat": huge, "_priority": huge, "_name": "n\x00"}
        wrong = browser.post("/submit/echo", data=form, headers=headers)
        big = browser.post(
            "/submit/echo", data={"text": "x", "_priority": "2000000"}, headers=headers
        )
        started = browser.post("/workflows/broken/start", data={"code": huge}, headers=headers)
    finally:
        browser.close()
    assert wrong.status_code == 200
    for field in ("text", "repeat", "_priority", "_name"):
        assert f'id="error-{field}"' in wrong.text, field
    assert "integers must fit in 64 bits" in wrong.text
    assert big.status_code == 200
    assert 'id="error-_priority"' in big.text
    assert "1000000" in big.text
    assert started.status_code == 200
    assert 'id="error-code"' in started.text
    after = server.client.get("/api/v1/jobs", params={"type": "echo"}).json()["total"]
    assert after == before


def test_the_run_form_names_bad_fields_and_keeps_what_was_typed(server: Server) -> None:
    browser, token = _session(server)
    headers = {"HX-Request": "true", "X-CSRF-Token": token}
    try:
        wrong = browser.post("/workflows/broken/start", data={"code": "five"}, headers=headers)
    finally:
        browser.close()
    assert wrong.status_code == 200
    assert 'id="error-code"' in wrong.text  # the error, by its field
    assert 'value="five"' in wrong.text  # what was typed stays
    assert 'action="/workflows/broken/start"' in wrong.text


def test_the_run_form_names_every_nodes_bad_field_at_once(server: Server) -> None:
    """The run's start stopped at the first node that refused: the next error came at the
    next submit, and a field that could not be read hid every other node's."""
    browser, token = _session(server)
    headers = {"HX-Request": "true", "X-CSRF-Token": token}
    try:
        unread = browser.post(
            "/workflows/broken/start", data={"code": "five", "repeat": "0"}, headers=headers
        )
    finally:
        browser.close()
    assert unread.status_code == 200
    assert 'id="error-code"' in unread.text  # the fail node's field, not read
    assert 'id="error-repeat"' in unread.text  # the echo nodes' field, the same round


def test_the_run_form_offers_the_params_its_nodes_take_and_do_not_pin(server: Server) -> None:
    # diamond has no args of its own; its echo nodes pin text and its lines node count.
    form = server.client.get("/workflows/diamond/start").text
    assert 'name="repeat"' in form
    assert 'name="text"' not in form
    assert 'name="count"' not in form
    assert "takes no parameters" not in form
    broken = server.client.get("/workflows/broken/start").text
    assert re.search(r'<input[^>]*name="code"[^>]*value="5"', broken)  # the workflow's default


@pytest.fixture(scope="module")
def viewer(server: Server) -> tuple[str, str]:
    who = ("val", "viewer-password-2")
    made = server.client.post(
        "/api/v1/users", json={"name": who[0], "password": who[1], "role": "viewer"}
    )
    assert made.status_code == 201, made.text
    return who


@pytest.mark.parametrize("path", ["/audit", "/submit", "/submit/echo", "/workflows/slow/start"])
def test_a_viewer_is_told_a_page_is_not_for_them(
    server: Server, viewer: tuple[str, str], path: str
) -> None:
    response = httpx.get(f"{server.url}{path}", auth=viewer)
    assert response.status_code == 403
    assert "Not allowed" in response.text


def test_a_viewer_sees_the_pages_without_their_buttons(
    server: Server, viewer: tuple[str, str]
) -> None:
    page = httpx.get(f"{server.url}/", auth=viewer)
    assert page.status_code == 200
    assert "hx-post" not in page.text
    assert 'href="/submit"' not in page.text


def test_the_servers_own_worker_has_no_drain_button(server: Server) -> None:
    # The API refuses to drain it (409): the page offers no button that would fail.
    own = server.client.get("/healthz").json()["worker"]
    page = server.client.get("/workers").text
    row = page[page.index(f'id="worker-{own}"') :].split("</tr>", 1)[0]
    assert "this server's own" in row
    assert "/drain" not in row


def test_the_type_preview_says_what_saving_would_be_refused_for(server: Server) -> None:
    def preview(definition: str) -> str:
        query = {"name": "x", "definition": definition}
        answer = server.client.get("/types/-/preview", params=query)
        assert answer.status_code == 200
        return answer.text

    said = preview('{"command": ["true"], "queue": "limted"}')
    assert "queue: queue &#39;limted&#39; is not declared under queues" in said
    assert "did you mean &#39;limited&#39;?" in said
    assert "is not declared" not in preview('{"command": ["true"], "queue": "limited"}')


def test_the_type_preview_tells_of_nesting_it_cannot_take(server: Server) -> None:
    """JSON nested past the stack, or past what the API takes, is told as the API would
    refuse it, not a 500 (the preview is open to viewers)."""

    def preview(definition: str) -> str:
        answer = server.client.get("/types/-/preview", params={"definition": definition})
        assert answer.status_code == 200, answer.text
        return answer.text

    assert "not JSON yet: recursion limit exceeded" in preview("[" * 5000)
    deep: dict[str, object] = {"type": "string"}
    for _ in range(90):  # a valid definition, its params nested as no API body may be
        deep = {"type": "object", "properties": {"a": deep}}
    said = preview(json.dumps({"command": ["true"], "params": deep}))
    assert "nested deeper than 64 levels" in said


def test_a_type_named_preview_has_its_own_page(server: Server) -> None:
    # The preview's route was /types/preview, which a type of that name never reached.
    made = server.client.put("/api/v1/job-types/preview", json={"command": ["true"]})
    assert made.status_code in (200, 201), made.text
    page = server.client.get("/types/preview")
    assert page.status_code == 200
    assert "<h1>preview <small" in page.text  # the type's page
    assert "not JSON yet" not in page.text
    server.client.delete("/api/v1/job-types/preview")


def test_the_job_list_says_what_it_ignored_and_filters_by_creation_time(server: Server) -> None:
    def shown(**params: str) -> tuple[list[str], str]:
        response = server.client.get("/jobs", params=params)
        assert response.status_code == 200, response.text
        said = re.findall(r'<p class="error" role="alert">([^<]*)</p>', response.text)
        return [html.unescape(line) for line in said], response.text

    said, _ = shown(per_page="2", page="x", since="yesterday", until="9999-12-31T23:00-05:00")
    assert said == [
        "per page '2' is not offered (25, 50, 100, 200); 50 a page shown",
        "no page 'x'; the first one shown",
        "since 'yesterday' is not a time (2026-12-01, 2026-12-01T10:00) "
        "or a duration ago (6h, 2d); ignored",
        "until '9999-12-31T23:00-05:00' is not a time (2026-12-01, 2026-12-01T10:00) "
        "or a duration ago (6h, 2d); ignored",
    ]
    assert shown(per_page="abc")[0] == [
        "per page 'abc' is not offered (25, 50, 100, 200); 50 a page shown"
    ]
    # A NUL in the search box was a 422 in JSON, where every other bad filter is a note.
    said, page = shown(search="a\x00b", type="echo", queue="q\x00")
    assert said == [
        "search 'a\\x00b' contains a NUL character; ignored",
        "queue 'q\\x00' contains a NUL character; ignored",
    ]
    assert 'name="search" value=""' in page
    assert server.client.get("/api/v1/jobs", params={"search": "\x00"}).status_code == 422
    made = server.submit("echo", args={"text": "to find by time"})
    link = f'href="/jobs/{made["id"]}"'
    for params, listed in [
        ({"since": "1h"}, True),
        ({"since": "2000-01-01", "until": "2000-01-02T00:00Z"}, False),
        ({"until": "1h"}, False),
        ({"since": made["created_at"]}, True),
    ]:
        said, page = shown(**params)
        assert said == [], (params, said)
        assert (link in page) is listed, params
        for key, value in params.items():  # kept in the form, as typed
            assert f'name="{key}" value="{value}"' in page


def test_the_filter_forms_empty_fields_leave_the_address(server: Server) -> None:
    """ "Show" sends every field, "any" as an empty one: the address kept (and bookmarked)
    is the filter's own."""
    form = "state=failed&type=&queue=&worker=&search=&since=6h&until=&sort=-created_at"
    sent = server.client.get(f"/jobs?{form}&per_page=50")
    assert sent.status_code == 303
    assert sent.headers["location"] == "/jobs?state=failed&since=6h"
    everything = server.client.get("/jobs?state=&type=&search=&sort=-created_at")
    assert everything.headers["location"] == "/jobs"
    # What it cannot apply it says on the page, with the address as asked.
    said = server.client.get("/jobs?state=nope&type=")
    assert said.status_code == 200
    assert "unknown state &#39;nope&#39; ignored" in said.text
    assert server.client.get(f"/jobs?{form}", headers={"HX-Request": "true"}).status_code == 200
    for path, query, address in [
        ("/audit", "actor=admin&search=", "/audit?actor=admin"),
        ("/notifications", "status=&event=&page=1", "/notifications"),
    ]:
        assert server.client.get(f"{path}?{query}").headers["location"] == address


def test_a_job_name_with_bidirectional_controls_does_not_reorder_the_page(server: Server) -> None:
    name = "\u202eevil\u202c name"  # right-to-left override: would flip what follows it
    made = server.submit("echo", args={"text": "x"}, name=name)
    for path in (f"/jobs/{made['id']}", "/jobs"):
        page = server.client.get(path).text
        assert f"<bdi>{name}</bdi>" in page, path


PAST = re.compile(
    r'<p class="error" role="alert">page 999 is past the last page \((\d+)\); '
    r'<a href="([^"]+)">show page \1</a></p>'
)


@pytest.mark.parametrize(
    ("path", "asked"),
    [
        ("/jobs", {"type": "echo"}),
        ("/notifications", {"status": "sent"}),
        ("/audit", {"actor": "admin"}),
        ("/workflows/diamond", {}),
    ],
)
def test_a_page_past_the_last_says_so_and_links_to_the_last(
    server: Server, path: str, asked: dict[str, str]
) -> None:
    server.submit("echo", args={"text": "a job, an audit entry"})
    past = server.client.get(path, params=asked | {"page": "999"})
    assert past.status_code == 200
    found = PAST.search(past.text)
    assert found, past.text
    last, link = found[1], urlsplit(html.unescape(found[2]))
    assert link.path == path
    query = parse_qs(link.query)
    assert query.pop("page", ["1"]) == [last]  # the job list leaves out page=1
    assert query == {key: [value] for key, value in asked.items()}  # the filter kept
    for shown in (server.client.get(link.geturl()), server.client.get(path, params=asked)):
        assert "past the last page" not in shown.text


def test_the_job_list_says_so_live_and_its_pager_goes_back_to_the_last_page(
    server: Server,
) -> None:
    for n in range(26):
        server.submit("echo", args={"text": f"paged-{n}"}, hold=True)
    query = "search=paged-&per_page=25&page=999"
    part = server.client.get(f"/jobs?{query}", headers={"HX-Request": "true"}).text
    found = PAST.search(part)
    assert found, part
    assert (found[1], html.unescape(found[2])) == ("2", "/jobs?search=paged-&per_page=25&page=2")
    assert '<a href="/jobs?search=paged-&amp;per_page=25&amp;page=2" rel="prev">' in part
    assert "page 999 of 2" in part


def test_a_run_failed_by_a_node_a_user_killed_offers_its_retry(server: Server) -> None:
    run = start_run(server, "slow")
    node = wait_for(
        lambda: (
            (n := server.client.get(f"/api/v1/workflow-runs/{run['id']}").json()["nodes"]["a"])
            and n["state"] == "running"
            and n
        ),
        what="its first node running",
    )
    server.act(node["job_id"], "kill")
    run_in(server, run["id"], "failed")
    page = server.client.get(f"/runs/{run['id']}").text
    assert "Retry the failed nodes" in page  # as the API's retry-failed takes a killed node
    killed = server.client.get(f"/jobs/{node['job_id']}").text
    assert '<small class="muted">· killed</small>' not in killed  # its state says it once


@pytest.mark.parametrize(
    ("query", "field", "value"),
    [
        ("type=echo,fail", "type", "echo,fail"),  # several names: an option of their own
        ("queue=default,limited", "queue", "default,limited"),
        ("type=no-such-type", "type", "no-such-type"),  # a bookmark's name not listed
        ("state=failed,killed", "state", "failed,killed"),
        ("type=echo", "type", "echo"),
    ],
)
def test_the_job_filter_shows_what_it_applies_so_show_keeps_it(
    server: Server, query: str, field: str, value: str
) -> None:
    page = server.client.get(f"/jobs?{query}").text
    select = page[page.index(f'<select name="{field}">') :].split("</select>")[0]
    selected = re.findall(r'<option value="([^"]*)" selected>', select)
    assert selected == [value]


def test_a_static_file_is_addressed_by_its_content(server: Server) -> None:
    """The version is not bumped with each change: a browser that kept an older script
    under the same address would run it against the new pages."""
    page = server.client.get("/jobs").text
    script = Path(jobyard.ui.__file__).parent / "static" / "js" / "live.js"
    digest = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    assert f'src="/static/js/live.js?v={digest}"' in page
    assert server.client.get(f"/static/js/live.js?v={digest}").content == script.read_bytes()


def test_a_runs_page_shows_its_own_nodes_after_the_file_changed(
    tmp_path: Path, launch: Launcher
) -> None:
    """Drawn from the file as it is now, a run of a renamed node lost that node (a live
    one too), and a run of a workflow removed since was a 404 the API still served."""
    types = "job_types:\n  hello: {command: [echo, hi]}\n"
    config = tmp_path / "jobyard.yaml"
    config.write_text(
        f"{types}workflows:\n  flow:\n    nodes:\n      a: {{type: hello}}\n"
        "      b: {type: hello, depends_on: [a]}\n"
    )
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    server = launch(url, config=config)
    run = start_run(server, "flow")
    run_in(server, run["id"], "succeeded")
    server.stop()
    renamed = "      a: {type: hello}\n      b2: {type: hello, depends_on: [a]}\n"
    for text in (f"{types}workflows:\n  flow:\n    nodes:\n{renamed}", types):
        config.write_text(text)
        changed = launch(url, config=config)
        page = changed.client.get(f"/runs/{run['id']}")
        assert page.status_code == 200, page.text
        rows = re.findall(
            r'<tr data-node="([^"]+)"><td>[^<]*</td><td><a href="/jobs/(\d+)"', page.text
        )
        assert [name for name, _ in rows] == ["a", "b"]
        assert re.findall(r'<g class="node" data-node="([^"]+)"', page.text) == ["a", "b"]
        assert 'data-from="a" data-to="b"' in page.text
        changed.stop()


def test_no_site_frames_a_page_and_pages_run_only_the_servers_scripts(server: Server) -> None:
    page = server.client.get("/jobs")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    policy = dict(
        part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
    )
    assert (policy["script-src"], policy["frame-ancestors"]) == ("'self'", "'none'")
    # FastAPI's documentation pages start with an inline script: framing is all they get.
    docs = server.client.get("/docs")
    assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert "<script>" in docs.text or "<script>\n" in docs.text
    answer = server.client.get("/api/v1/jobs")  # JSON: told not to be sniffed as a page
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in answer.headers
    refused = httpx.get(f"{server.url}/jobs", follow_redirects=False)  # before any session
    assert refused.headers["x-frame-options"] == "DENY"
