"""The API docs page (/docs, Swagger UI) with its JavaScript and CSS served from an installed package, not a CDN:
it works on a machine without network. The model service and the monitor both use `offline_docs`."""

from __future__ import annotations

import re
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"  # a prefix no API route uses
ASSETS_DIR = files("fastapi_offline") / "static"  # Swagger UI 5 (it renders OpenAPI 3.1) and a favicon


PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+/?")  # a forwarded prefix the page may put in its links


def offline_docs(app: FastAPI, docs_url: str = "/docs") -> None:
    """Add Swagger UI at `docs_url`, its assets served by `app` itself under `ASSETS_URL`. `app` must be built with
    `docs_url=None, redoc_url=None`: FastAPI's own pages load from a CDN (and ReDoc fetches its logo from one)."""
    if app.docs_url or app.redoc_url:
        raise ValueError("build the app with docs_url=None and redoc_url=None: FastAPI's own pages load from a CDN")
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS_DIR)), name="docs-assets")

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = served_under(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )


def served_under(request: Request) -> str:
    """The path the page is served under: uvicorn's root path, or behind a proxy that strips one (JupyterLab's
    server proxy, in a learner's server on the class hub) the X-Forwarded-Prefix it sends, if it is a plain path:
    it changes only the links of the page this request gets."""
    root = str(request.scope.get("root_path", ""))
    forwarded = request.headers.get("x-forwarded-prefix", "")
    if not root and PREFIX.fullmatch(forwarded):
        return forwarded.rstrip("/")
    return root
