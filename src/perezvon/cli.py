"""The ``perezvon`` command (DESIGN §5): serve, worker, migrate, demo, token create, user create."""

from __future__ import annotations

import asyncio
import atexit
import logging
import logging.config
import os
import shutil
import sys
import tempfile
from pathlib import Path

import click

from .settings import SettingsError, get_settings


def _settings():  # type: ignore[no-untyped-def]
    try:
        return get_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _migrate(*, redis: bool = False) -> None:
    """Check that the database (and, for processes that use it, Redis) answers, then migrate.

    Whatever is wrong is said in one line (``Error: …``, exit status 1), not a driver's traceback.
    """
    settings = _settings()
    problem = asyncio.run(_unreachable(settings, redis=redis))
    if problem:
        raise click.ClickException(problem)
    from .store.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except Exception as exc:  # a database that answers but cannot be migrated (permissions, a foreign schema)
        raise click.ClickException(
            f"cannot migrate the database {_shown(settings.database_url)}: {_line(exc)}"
        ) from exc


STARTUP_TIMEOUT_S = 10.0


def _line(exc: BaseException) -> str:
    """An exception as one line: its first line, with its type when it says nothing by itself."""
    text = (str(getattr(exc, "orig", None) or exc) or type(exc).__name__).strip().splitlines()[0]
    return text if len(text) > 12 else f"{type(exc).__name__}: {text}"


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


async def _unreachable(settings, *, redis: bool) -> str | None:  # type: ignore[no-untyped-def]
    """Why the database or Redis cannot be used, in one line; None when both answer."""
    from sqlalchemy import text

    from .store.db import Database

    try:
        db = Database(settings.database_url)  # a SQLite file's folder is made here: it may be refused
    except Exception as exc:
        return f"cannot open the database {_shown(settings.database_url)} (PEREZVON_DATABASE_URL): {_line(exc)}"
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        reason = "no answer within 10 s" if isinstance(exc, TimeoutError) else _line(exc)
        return f"cannot reach the database {_shown(settings.database_url)} (PEREZVON_DATABASE_URL): {reason}"
    finally:
        await db.dispose()
    if redis and settings.redis_url:
        from redis.asyncio import Redis

        client = Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_S):
                await client.ping()
        except Exception as exc:
            reason = "no answer within 10 s" if isinstance(exc, TimeoutError) else _line(exc)
            return f"cannot reach Redis {_shown(settings.redis_url)} (PEREZVON_REDIS_URL): {reason}"
        finally:
            await client.aclose()
    return None


def _log_config() -> dict:  # type: ignore[type-arg]
    from .ops.logs import logging_config

    settings = _settings()
    return logging_config(settings.log_level, settings.log_format)


def _metrics_dir_for(workers: int) -> None:
    """``serve --workers N``: the processes share one port, so their metrics meet in files (prometheus-client's
    multiprocess mode); any process answers a scrape with the sum. The directory must start empty."""
    if workers <= 1:
        return
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
        return
    made = tempfile.mkdtemp(prefix="perezvon-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made  # inherited by the worker processes uvicorn spawns
    atexit.register(shutil.rmtree, made, ignore_errors=True)


def _run_server(host: str, port: int, workers: int) -> None:
    import uvicorn

    settings = _settings()
    logging.config.dictConfig(_log_config())
    _metrics_dir_for(workers)
    uvicorn.run(
        "perezvon.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        log_level=settings.log_level,
        log_config=_log_config(),  # JSON or text, phones masked: in every process uvicorn starts
        proxy_headers=False,  # client IPs are decided by PEREZVON_TRUSTED_PROXIES, not by uvicorn
        server_header=False,
    )


@click.group()
@click.version_option(package_name="perezvon")
def main() -> None:
    """perezvon: self-hosted callback requests with a Calltouch-compatible window.ctw API."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="API processes (use PostgreSQL + Redis).")
def serve(host: str, port: int, workers: int) -> None:
    """API + admin cabinet + callback worker in one process (set PEREZVON_RUN_WORKER=false for API only)."""
    _migrate(redis=True)
    _run_server(host, port, workers)


@main.command()
def worker() -> None:
    """Run the callback worker alone (several may run against one PostgreSQL)."""
    _migrate(redis=True)
    logging.config.dictConfig(_log_config())
    asyncio.run(_run_worker(_settings()))


async def _run_worker(settings) -> None:  # type: ignore[no-untyped-def]
    """The worker, and its /metrics, /healthz and /readyz on PEREZVON_METRICS_PORT when set."""
    from .calls.runtime import run_standalone

    if settings.metrics_port is None:
        await run_standalone(settings)
        return
    from .ops.http import metrics_app, serving
    from .store.db import Database
    from .throttling import Guard

    db = Database(settings.database_url, pool_size=1)
    app = metrics_app(settings, db, Guard(redis_url=settings.redis_url))
    try:
        async with serving(app, settings.metrics_host, settings.metrics_port):
            await run_standalone(settings)
    finally:
        await db.dispose()


@main.command()
def migrate() -> None:
    """Bring the database to the newest schema."""
    _migrate()
    click.echo("database is up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """Serve with a demo site, widget my_form_1 and a /demo page that runs the reference's examples."""
    os.environ["PEREZVON_DEMO"] = "1"
    get_settings.cache_clear()
    _migrate(redis=True)
    from .demo.seed import seed_demo

    info = asyncio.run(seed_demo(_settings(), f"http://{host}:{port}"))
    base = f"http://{host}:{port}"
    click.echo(
        "\n".join(
            [
                "",
                "perezvon demo is starting",
                f"  demo page:        {base}/demo",
                f"  admin cabinet:    {base}/   (login {info['email']} / password {info['password']})",
                f"  admin API docs:   {base}/api/docs   (token: {info['token']})",
                f"  site key:         {info['site_key']}   widget routeKey: my_form_1",
                "",
            ]
        )
    )
    _run_server(host, port, 1)


@main.group()
def token() -> None:
    """Admin API tokens."""


@token.command("create")
@click.option("--email", default=None, help="The account the token belongs to (else an operator token).")
@click.option("--name", default="", help="A label to recognise the token by.")
def token_create(email: str | None, name: str) -> None:
    """Print a new admin API token (shown once)."""
    _migrate()
    from .services.accounts import account_by_email, create_token
    from .store.db import Database

    async def run() -> str:
        db = Database(_settings().database_url)
        try:
            account_id = None
            if email:
                account = await account_by_email(db, email)
                if account is None:
                    raise click.ClickException(f"no account {email}: create it with 'perezvon user create'")
                account_id = account["id"]
            return await create_token(db, account_id, name)
        finally:
            await db.dispose()

    click.echo(asyncio.run(run()))


@main.group()
def user() -> None:
    """Cabinet accounts."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True, help="At least 8 characters.")
def user_create(email: str, password: str) -> None:
    """Create an account (or set the password of an existing one)."""
    _migrate()
    from .services.accounts import AccountError, create_account
    from .store.db import Database

    async def run() -> int:
        db = Database(_settings().database_url)
        try:
            return await create_account(db, email, password)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            await db.dispose()

    account_id = asyncio.run(run())
    click.echo(f"account {email} (id {account_id}) is ready")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
