"""The dashboard in headless Chromium (Debian's, driven by Playwright) over a local run folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eureka_service.app import create_app
from eureka_service.auth import LocalTokenAuth
from eureka_service.local import LocalBackend
from tests.integration.service.server import serve
from tests.unit.service.rundir import write_run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "service"
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
STEPS = 40


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("runs")
    run = write_run(root, "demo", steps=STEPS)
    write_run(root, "older", steps=5, phase="Failed")
    with (run / "samples.jsonl").open("a") as out:  # model output that tries to inject markup
        record = {"step": STEPS, "prompt": "p", "response": HOSTILE, "answer": "4", "rewards": {}}
        out.write(json.dumps(record) + "\n")
    app = create_app(LocalBackend(root), LocalTokenAuth("t" * 32))
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium missing: run `bash .ci/install-chromium` (make /usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    yield page
    context.close()


def test_job_table_lists_runs_and_filters(page: Any, base_url: str) -> None:
    page.goto(base_url + "/")
    page.wait_for_selector("#jobs-body tr[data-name='demo']")
    rows = page.locator("#jobs-body tr")
    assert rows.count() == 2
    demo = page.locator("#jobs-body tr[data-name='demo']")
    assert "Succeeded" in demo.inner_text() and f"{STEPS} / {STEPS}" in demo.inner_text()
    page.select_option("#filter-phase", "Failed")
    assert page.locator("#jobs-body tr").count() == 1
    assert page.locator("#jobs-body tr").first.get_attribute("data-name") == "older"
    page.select_option("#filter-phase", "")
    page.select_option("#filter-namespace", "local")
    assert page.locator("#jobs-body tr").count() == 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "jobs.png"), full_page=True)
    assert page.errors == []


def test_job_page_draws_curves_and_escapes_samples(page: Any, base_url: str) -> None:
    page.goto(base_url + "/")
    page.click("#jobs-body tr[data-name='demo'] a")
    page.wait_for_selector("[data-panel='rewards'] canvas")
    rewards = page.locator("[data-panel='rewards']")
    assert rewards.get_attribute("data-points") == str(STEPS)
    assert rewards.get_attribute("data-series") == (
        "reward/total,reward/accuracy,reward/format,reward/repetition"
    )
    for panel in ("response-length", "pass-rate", "kl", "entropy", "clip", "timings", "reflection"):
        page.wait_for_selector(f"[data-panel='{panel}'] canvas")
    assert page.locator("[data-panel='timings']").get_attribute("data-series") == (
        "time/generate,time/score,time/update,time/sync"
    )
    # Metrics without a panel of their own are one click away.
    assert page.locator("#explore-metric option").all_inner_texts() == ["policy/grad_norm"]
    assert page.locator("[data-panel='explore']").get_attribute("data-points") == str(STEPS)
    assert not page.locator("#job-actions").is_visible()  # the local backend is read-only
    # The hostile response is shown as text and never runs.
    page.wait_for_selector("#samples .sample")
    assert page.locator("#samples pre.response").first.inner_text() == HOSTILE
    assert page.locator("#samples img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#conditions td.none").inner_text() == "No conditions."
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "job.png"), full_page=True)
    assert page.errors == []


def test_failed_job_shows_its_condition(page: Any, base_url: str) -> None:
    page.goto(base_url + "/#/jobs/local/older")
    page.wait_for_selector("#conditions tbody td:not(.none)")
    cells = page.locator("#conditions tbody tr").first.locator("td").all_inner_texts()
    assert cells[:4] == [
        "Failed",
        "True",
        "TrainerError",
        "CUDA out of memory <script>alert(1)</script>",
    ]
    assert page.locator("#job-phase").inner_text() == "Failed"
    assert page.locator("[data-panel='rewards']").get_attribute("data-points") == "5"
    assert page.errors == []
