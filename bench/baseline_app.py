"""The same-run baseline for bench/api_throughput.py: a bare Starlette JSON endpoint under uvicorn.

It does what every JSON POST endpoint must do and nothing more: read the body, parse it as JSON, answer
a small JSON object. No database, no limiter, no routing beyond one catch-all route, so the ratio
perezvon / baseline isolates what perezvon itself costs per request on this machine, in this run.

Run it with exactly the uvicorn settings ``perezvon serve`` uses (perezvon.cli._run_server), so that
uvicorn, uvloop, httptools and access logging cost the same on both sides:

    .venv/bin/python bench/baseline_app.py --host 127.0.0.1 --port 8101
"""

from __future__ import annotations

import argparse
import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = {"ok": True}


async def echo_json(request: Request) -> Response:
    payload = json.loads(await request.body() or b"{}")
    # Use the payload so the parse cannot be skipped; answer about as many bytes as perezvon does.
    body = dict(ANSWER, keys=len(payload) if isinstance(payload, dict) else 0)
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=200,
        media_type="application/json",
    )


# A catch-all path: the load generator replays the very same request (path and body) against both servers.
app = Starlette(routes=[Route("/{path:path}", echo_json, methods=["POST"])])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--workers", type=int, default=1, help="processes, like perezvon serve --workers")
    args = parser.parse_args()
    # Mirror perezvon.cli._run_server: the same process count, same log level (so access logs are on alike),
    # no proxy headers, no Server header; loop and HTTP parser left to uvicorn's defaults as perezvon does.
    uvicorn.run(
        "baseline_app:app",
        host=args.host,
        port=args.port,
        workers=args.workers if args.workers > 1 else None,
        log_level=os.environ.get("PEREZVON_LOG_LEVEL", "info").strip() or "info",
        proxy_headers=False,
        server_header=False,
        app_dir=os.path.dirname(os.path.abspath(__file__)),
    )


if __name__ == "__main__":
    main()
