"""The API docs page of the model service and the monitor, opened in headless Chromium with no network: every
request that leaves 127.0.0.1 is aborted and recorded. The page must render from the service alone.

Needs Debian's chromium (Playwright's own browsers are not downloaded here): `LAB_CHROMIUM` or `chromium` on PATH.
CI installs it and sets LAB_REQUIRE_TOOLS=1: there a missing browser fails instead of skipping."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, Route, expect

from lab_runtime.service.docs import ASSETS_URL, offline_docs
from lab_runtime.settings import HOST, Settings
from tests.lab_runtime.services import running_services

RENDER_TIMEOUT_MS = 30_000  # Swagger UI parses 1.5 MB of JavaScript: seconds on a busy 2-core machine


@dataclass
class OfflinePage:
    page: Page
    left_loopback: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    # No MLflow: the docs need neither a registry nor a model (the service reports itself not ready, and serves).
    with running_services(tmp_path_factory.mktemp("docs") / "state", "model-service", "monitor") as settings:
        yield settings


@pytest.fixture
def offline(browser: Browser) -> Iterator[OfflinePage]:
    """A page whose requests reach 127.0.0.1 only; any other is aborted and listed in `left_loopback`."""
    context = browser.new_context()
    opened = OfflinePage(context.new_page())

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == HOST:
            route.continue_()
        else:
            opened.left_loopback.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", loopback_only)
    yield opened
    context.close()


pytestmark = pytest.mark.integration


def test_the_service_docs_render_swagger_ui_with_no_request_leaving_loopback(
    services: Settings, offline: OfflinePage
) -> None:
    offline.page.goto(f"{services.service_url}/docs")
    expect(offline.page.locator(".swagger-ui .info .title")).to_contain_text(
        "Credit-risk model service", timeout=RENDER_TIMEOUT_MS
    )
    expect(offline.page.locator('.opblock-summary-path[data-path="/predict"]')).to_be_visible()
    expect(offline.page.locator('.opblock-summary-path[data-path="/model"]')).to_be_visible()
    assert offline.left_loopback == []


def test_the_static_assets_mount_leaves_the_api_alone(services: Settings) -> None:
    script = httpx.get(f"{services.service_url}{ASSETS_URL}/swagger-ui-bundle.js", timeout=10)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    paths = httpx.get(f"{services.service_url}/openapi.json", timeout=10).json()["paths"]
    assert {"/predict", "/model", "/ready"} <= set(paths) and not [p for p in paths if "docs" in p]
    assert httpx.get(f"{services.service_url}/redoc", timeout=10).status_code == 404  # ReDoc's logo is on a CDN
    assert httpx.get(f"{services.service_url}/admin/faults", timeout=10).status_code == 401


def test_the_monitor_docs_render_swagger_ui_offline(services: Settings, offline: OfflinePage) -> None:
    offline.page.goto(f"{services.monitor_url}/docs")
    expect(offline.page.locator(".swagger-ui .info .title")).to_contain_text(
        "Drift and quality monitor", timeout=RENDER_TIMEOUT_MS
    )
    expect(offline.page.locator('.opblock-summary-path[data-path="/status"]')).to_be_visible()
    assert offline.left_loopback == []


def test_offline_docs_refuse_an_app_that_keeps_fastapis_cdn_pages() -> None:
    with pytest.raises(ValueError, match="docs_url=None and redoc_url=None"):
        offline_docs(FastAPI())
