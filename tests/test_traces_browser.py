"""The tracing pages in headless Chromium against a live forge (SQLite and PostgreSQL):
the experiment's Traces tab (filter, pages), the trace page (span tree, timeline,
inputs and outputs, exceptions, assessments, hostile text shown as text), and the
traces on the run page. Screenshots go to tests/screenshots/<db>/."""
from __future__ import annotations

import os
import uuid

import mlflow
import pytest
from mlflow.entities import SpanType

from tests.support.liveserver import build_app, migrate_and_seed, serve
from tests.support.ui_seed import mlflow_env
from tests.support.browser import CHROMIUM, SCREENSHOTS

pytestmark = pytest.mark.browser
P = "/demo/mnist/-"
HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


@pytest.fixture(scope="module")
def live(database_url, db_kind, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    app = build_app(database_url, str(tmp_path_factory.mktemp("storage")), {"GL_ML_TRACKING_UI_PAGE_SIZE": 3})
    migrate_and_seed(app)
    forge = serve(app)
    forge.extra["db"] = db_kind
    yield forge
    forge.stop()
    with app.app_context():
        from gl_ml_tracking import get_state

        get_state(app).db.engine.dispose()


@pytest.fixture(scope="module")
def seeded(live):
    """An experiment with 5 traces (one failing, one with a hostile input, feedback on one),
    two recorded inside a run."""
    @mlflow.trace(span_type=SpanType.CHAIN)
    def answer(question):
        with mlflow.start_span("retrieve", span_type=SpanType.RETRIEVER) as span:
            span.set_inputs({"query": question})
            span.set_outputs(["doc-1", "doc-2"])
        with mlflow.start_span("generate", span_type=SpanType.LLM) as span:
            span.set_inputs({"prompt": question})
            span.set_outputs({"text": "42"})
        return "42"

    @mlflow.trace(name="broken")
    def broken():
        raise RuntimeError("the tool failed")

    with mlflow_env(live) as client:
        name = f"traces-ui-{uuid.uuid4().hex[:6]}"
        exp = mlflow.set_experiment(name)
        ids = []
        with mlflow.start_run(run_name="with-traces") as run:
            for q in ("What is 6x7?", HOSTILE):
                answer(q)
                ids.append(mlflow.get_last_active_trace_id())
        for q in ("one", "two"):
            answer(q)
            ids.append(mlflow.get_last_active_trace_id())
        with pytest.raises(RuntimeError):
            broken()
        ids.append(mlflow.get_last_active_trace_id())
        mlflow.flush_trace_async_logging()
        mlflow.log_feedback(trace_id=ids[0], name="correct", value=True, rationale="6x7 is 42")
        run_iid = int(client.get_run(run.info.run_id).data.tags.get("gitlab.iid", 0) or 0)
    return {"exp": exp, "ids": ids, "run_id": run.info.run_id, "run_iid": run_iid}


@pytest.fixture
def page(make_page):
    return make_page()


def _shot(live, page, name):
    folder = os.path.join(SCREENSHOTS, live.extra["db"])
    os.makedirs(folder, exist_ok=True)
    page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def _row_ids(page):
    return [r.get_attribute("data-trace-id") for r in page.locator("[data-testid=trace-row]").all()]


def test_traces_tab_lists_filters_and_pages(live, page, seeded):
    exp_iid = seeded["exp"].experiment_id
    page.goto(f"{P}/ml/experiments/{exp_iid}")
    with page.expect_navigation():
        page.click("[data-testid=traces-tab]")
    assert page.locator("[data-testid=traces-title]").is_visible()
    first = _row_ids(page)
    assert len(first) == 3  # 3 a page, newest first (traces of the same millisecond by id)
    _shot(live, page, "traces-tab")
    with page.expect_navigation():
        page.click("[data-testid=next-page]")
    second = _row_ids(page)
    assert len(second) == 2 and set(first) | set(second) == set(seeded["ids"])
    page.fill("[data-testid=trace-filter-input]", "status = 'ERROR'")
    with page.expect_navigation():
        page.click("[data-testid=trace-filter-form] button[type=submit]")
    assert _row_ids(page) == [seeded["ids"][-1]]
    page.fill("[data-testid=trace-filter-input]", "status >> 1")
    with page.expect_navigation():
        page.click("[data-testid=trace-filter-form] button[type=submit]")
    assert page.locator("[data-testid=filter-error]").is_visible()


def test_trace_page_shows_span_tree_io_and_assessments(live, page, seeded):
    page.goto(f"{P}/ml/traces/{seeded['ids'][0]}")
    spans = page.locator("[data-testid=span]")
    assert spans.count() == 3
    assert [s.get_attribute("data-depth") for s in spans.all()] == ["0", "1", "1"]
    assert "retrieve" in spans.nth(1).inner_text() and "generate" in spans.nth(2).inner_text()
    spans.nth(2).locator("summary").click()
    spans.nth(2).locator("[data-testid=span-outputs]").wait_for()  # loaded when opened
    assert '"prompt": "What is 6x7?"' in spans.nth(2).locator("[data-testid=span-inputs]").inner_text()
    assert '"text": "42"' in spans.nth(2).locator("[data-testid=span-outputs]").inner_text()
    assessments = page.locator("[data-testid=assessments]").inner_text()
    assert "correct" in assessments and "true" in assessments and "6x7 is 42" in assessments
    _shot(live, page, "trace-page")


def test_failed_trace_highlights_the_exception(live, page, seeded):
    page.goto(f"{P}/ml/traces/{seeded['ids'][-1]}")
    span = page.locator("[data-testid=span]").first
    assert "glml-span-error" in span.get_attribute("class")
    span.locator("summary").click()
    span.locator("[data-testid=span-exception]").wait_for()
    assert "the tool failed" in span.locator("[data-testid=span-exception]").inner_text()
    _shot(live, page, "trace-error")


def test_hostile_inputs_render_as_text(live, page, seeded):
    page.goto(f"{P}/ml/traces/{seeded['ids'][1]}")
    span = page.locator("[data-testid=span]").nth(1)
    span.locator("summary").click()
    span.locator("[data-testid=span-inputs]").wait_for()
    assert "<script>alert(2)</script>" in span.locator("[data-testid=span-inputs]").inner_text()
    assert page.locator("img[src=x]").count() == 0  # the Watcher fails the test on any dialog


def test_span_page_without_script(live, page, seeded):
    page.goto(f"{P}/ml/traces/{seeded['ids'][0]}")
    span_id = page.locator("[data-testid=span]").nth(2).get_attribute("data-span-id")
    page.goto(f"{P}/ml/traces/{seeded['ids'][0]}/spans/{span_id}")
    assert '"text": "42"' in page.locator("[data-testid=span-outputs]").inner_text()
    assert page.goto(f"{P}/ml/traces/{seeded['ids'][0]}/spans/ffffffffffffffff").status == 404


def test_run_page_lists_its_traces(live, page, seeded):
    with mlflow_env(live) as client:
        run = client.get_run(seeded["run_id"])
    page.goto(f"{P}/ml/runs/{seeded['run_id']}")
    section = page.locator("[data-testid=run-traces]")
    section.wait_for()
    assert sorted(_row_ids(section)) == sorted(seeded["ids"][:2]), run.info.run_name
    _shot(live, page, "run-traces")


def test_trace_of_another_project_is_404_page(live, page, seeded):
    resp = page.goto(f"/demo/secret/-/ml/traces/{seeded['ids'][0]}")
    assert resp.status == 404
