"""The dashboard in headless Chromium (Debian's, driven by Playwright) over a local run folder.

One browser for the module; screenshots go to tests/artifacts/service/ (git-ignored).
"""

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
LIVE_STEPS = 24


def _image_uri() -> str:
    """A real thumbnail, made the way the trainer makes it for a logged sample."""
    from PIL import Image

    from eureka_trainer.reporting.thumbnails import thumbnail_uri

    uri = thumbnail_uri(Image.new("RGB", (640, 480), (30, 120, 200)))
    assert uri is not None
    return uri


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("runs")
    run = write_run(root, "demo", steps=STEPS)
    write_run(root, "older", steps=5, phase="Failed")
    write_run(root, "live", steps=LIVE_STEPS, phase="Running", image=_image_uri(), learning=3.0)
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
    assert rows.count() == 3
    demo = page.locator("#jobs-body tr[data-name='demo']")
    assert "Succeeded" in demo.inner_text() and f"{STEPS} / {STEPS}" in demo.inner_text()
    page.select_option("#filter-phase", "Failed")
    assert page.locator("#jobs-body tr").count() == 1
    assert page.locator("#jobs-body tr").first.get_attribute("data-name") == "older"
    page.select_option("#filter-phase", "")
    page.select_option("#filter-namespace", "local")
    assert page.locator("#jobs-body tr").count() == 3
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
        "time/generate,time/score,time/update,time/sync,time/step"
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
    # A finished run is fetched once, then left alone.
    assert "not polling" in page.locator("#updated").inner_text()
    page.wait_for_timeout(4500)  # longer than the poll interval
    assert page.locator("body").get_attribute("data-polls") == "1"
    assert page.errors == []


def test_two_runs_overlaid_with_zoom_kept_across_a_poll(page: Any, base_url: str) -> None:
    page.goto(base_url + "/")
    page.wait_for_selector("#jobs-body tr[data-name='live']")
    page.check("#jobs-body tr[data-name='demo'] input.pick")
    page.check("#jobs-body tr[data-name='live'] input.pick")
    page.click("#compare-selected")
    page.wait_for_selector("[data-panel='rewards'] canvas")
    rewards = page.locator("[data-panel='rewards']")
    # One series per run, of the panel's chosen metric; x spans both runs' steps.
    assert rewards.get_attribute("data-series") == "local/demo,local/live"
    assert rewards.get_attribute("data-points") == str(STEPS)
    assert page.locator("#compare-runs .run-chip").count() == 2
    # Zoom by dragging over steps ~10..20 of the rewards chart.
    over = page.locator("[data-panel='rewards'] .u-over")
    box = over.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.25, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
    page.mouse.up()
    zoomed = (rewards.get_attribute("data-x-min"), rewards.get_attribute("data-x-max"))
    assert 5 < float(zoomed[0]) < float(zoomed[1]) < 25, zoomed
    # Every chart follows the zoom (cursor and x range are synced).
    kl = page.locator("[data-panel='kl']")
    assert (kl.get_attribute("data-x-min"), kl.get_attribute("data-x-max")) == zoomed
    polls = int(page.locator("body").get_attribute("data-polls"))
    page.wait_for_function(f"() => Number(document.body.dataset.polls) > {polls}", timeout=10_000)
    assert (rewards.get_attribute("data-x-min"), rewards.get_attribute("data-x-max")) == zoomed
    # Smoothing and log scale redraw the same two series.
    page.check("#opt-log")
    page.locator("#opt-smoothing").fill("0.6")
    assert rewards.get_attribute("data-series") == "local/demo,local/live"
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)
    # CSV of what the chart draws; wall time from the summed `time/step` (2.5 s a step).
    with page.expect_download() as download:
        page.click("[data-panel='rewards'] button.csv")
    rows = Path(download.value.path()).read_text().splitlines()
    assert rows[0] == "step,local/demo,local/live" and len(rows) == STEPS + 1
    assert rows[LIVE_STEPS + 1].endswith(",")  # live has no step 25: an empty cell
    page.select_option("#opt-x", "time")
    page.wait_for_function(
        "() => document.querySelector(\"[data-panel='rewards']\").dataset.xMax === '1.6667'"
    )  # 40 steps x 2.5 s = 100 s
    assert page.errors == []


def test_a_sample_shows_its_image_and_samples_are_browsed(page: Any, base_url: str) -> None:
    page.goto(base_url + "/#/jobs/local/live")
    page.wait_for_selector("#samples img.sample-image")
    image = page.locator("#samples img.sample-image").first
    assert image.evaluate("img => img.complete && img.naturalWidth") == 256
    assert page.locator("#samples .sample").count() == 12  # one page, then "Show more"
    page.click("#samples-more")
    page.wait_for_function("() => document.querySelectorAll('#samples .sample').length === 24")
    page.select_option("#samples-kind", "reflective")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#samples .sample')].every(s => s.querySelector('.aha'))"
    )
    page.select_option("#samples-step", str(LIVE_STEPS))
    page.wait_for_function("() => document.querySelectorAll('#samples .sample').length === 1")
    assert "step 24" in page.locator("#samples .sample-head").first.inner_text()
    cards = page.locator("#job-cards").inner_text()
    assert "Last update" in cards and "ETA" in cards
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "samples.png"), full_page=True)
    # At phone width nothing runs off the side.
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=False)
    assert page.errors == []


def test_an_invalid_address_shows_the_message(page: Any, base_url: str) -> None:
    page.goto(base_url + "/#/jobs/local/bad%20name")
    page.wait_for_selector("#error:not([hidden])")
    text = page.locator("#error").inner_text()
    assert "422" in text and "name: String should match pattern" in text
    assert "[object Object]" not in text


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


def test_protected_reads_take_a_token_entered_on_the_page(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("protected")
    write_run(root, "secret-run", steps=3)
    token = "p" * 32
    app = create_app(LocalBackend(root), LocalTokenAuth(token), protect_reads=True)
    with serve(app) as url:
        context = browser.new_context(viewport={"width": 1000, "height": 700})
        page = context.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#error:not([hidden])")
        assert "401" in page.locator("#error").inner_text()
        assert page.locator("#read-auth").is_visible()
        assert page.locator("#jobs-body tr").count() == 0
        page.fill("#read-token", token)
        page.click("#read-auth button")
        page.wait_for_selector("#jobs-body tr[data-name='secret-run']")
        assert page.locator("#error").is_hidden()
        context.close()
