"""The /demo page: the reference's two examples as a real form against this server."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .seed import DEMO_SITE_KEY

PAGE = Path(__file__).with_name("page.html")


async def demo_page(request: Request) -> Response:
    snapshot = await request.app.state.snapshots.by_key(DEMO_SITE_KEY)
    if snapshot is None:
        return HTMLResponse("<h1>No demo site</h1><p>Start with <code>perezvon demo</code>.</p>", 404)
    units = [{"id": u["id"], "name": u["name"]} for u in snapshot.units.values()]
    # "</" cannot close the JSON <script> block: escape it (names come from admins, still untrusted text).
    config = json.dumps({"units": units}).replace("</", "<\\/")
    html = PAGE.read_text(encoding="utf-8").replace("__DEMO_CONFIG__", config).replace("__SITE_KEY__", DEMO_SITE_KEY)
    return HTMLResponse(html)


routes = [Route("/demo", demo_page, methods=["GET"])]
