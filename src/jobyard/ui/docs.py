"""The API's documentation pages: Swagger UI at ``/docs`` and ReDoc at ``/redoc``.

Pages like the others: a browser without a session goes to the login first. Their
assets are served from here, not from a CDN, so they work with no internet; the
document they read, ``/openapi.json``, is the API's (:mod:`jobyard.api.app`).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from jobyard.ui.viewer import Looker

router = APIRouter(include_in_schema=False)
VENDOR = "/static/vendor"
OPENAPI = "/openapi.json"
TITLE = "jobyard API"


@router.get("/docs", response_class=HTMLResponse)
def swagger(looker: Looker) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI,
        title=TITLE,
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
        # No badge from the validator's host: the page asks nothing of another host.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/redoc", response_class=HTMLResponse)
def redoc(looker: Looker) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=OPENAPI,
        title=TITLE,
        redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url="/static/favicon.svg",
        with_google_fonts=False,
    )
