"""The dashboard over the Kubernetes backend (kmock): conditions, Events, suspend and delete."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from eureka_service.app import create_app
from eureka_service.auth import KubeAuth
from eureka_service.kube import KubeBackend
from eureka_service.kubeclient import KubeClient
from eureka_trainer.reporting.kube import load_cluster_config
from tests.integration.service.server import serve
from tests.integration.service.test_api_kube import _existing_job, _install_reviews
from tests.integration.service.test_dashboard import ARGS, ARTIFACTS, CHROMIUM
from tests.unit.reporting.kmock_crd import RLJOBS, declare_rljobs, write_kubeconfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _drive(base: str) -> list[str]:
    """Suspend then delete the job through the page, as a user would; returns console errors."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base + "/#/jobs/team-a/running-job")
        page.wait_for_selector("#conditions tbody td:not(.none)")
        assert page.locator("#events tbody td").nth(1).inner_text() == "GPUsUnschedulable"
        assert page.locator("[data-panel='rewards']").get_attribute("data-points") == "3"
        assert page.locator("#job-actions").is_visible()

        page.click("#action-suspend")  # no token yet
        assert "Enter a bearer token" in page.locator("#action-result").inner_text()
        page.fill("#token", "bob-token")
        page.click("#action-suspend")
        page.wait_for_selector("#action-result.bad >> text=403")
        page.fill("#token", "alice-token")
        page.click("#action-suspend")
        page.wait_for_selector("#action-result:not(.bad) >> text=Suspended team-a/running-job.")
        page.wait_for_selector("#action-resume", state="visible")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "job-kube.png"), full_page=True)

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#action-delete")  # the token is remembered for this tab
        page.wait_for_selector("#jobs-view:not([hidden])")
        page.wait_for_selector("#jobs-empty:not([hidden])")
        assert "Deleted team-a/running-job." in page.locator("#action-result").inner_text()
        browser.close()
    return errors


async def test_dashboard_writes_through_rbac(kmock: Any, tmp_path: Path) -> None:
    declare_rljobs(kmock)
    kmock.objects[RLJOBS, "team-a", "running-job"] = _existing_job()
    kmock.objects["v1/events", "team-a", "ev1"] = {
        "metadata": {"name": "ev1", "namespace": "team-a"},
        "involvedObject": {"kind": "RLJob", "name": "running-job"},
        "type": "Warning",
        "reason": "GPUsUnschedulable",
        "message": "0/3 nodes have nvidia.com/gpu",
    }
    _install_reviews(kmock)
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    client = KubeClient(config)
    with serve(create_app(KubeBackend(client), KubeAuth(client))) as base:
        errors = await asyncio.to_thread(_drive, base)
    history = kmock.objects[RLJOBS, "team-a", "running-job"].history
    assert any((v.get("spec") or {}).get("runPolicy", {}).get("suspend") is True for v in history)
    assert kmock.objects[RLJOBS, "team-a", "running-job"].deleted
    assert [e for e in errors if "403" not in e] == []  # the refused request is the only one
