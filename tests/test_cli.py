"""The ``perezvon`` command's fixed interface (DESIGN §5), run as a real process on a SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from support import ADMIN_TOKEN, start_server, stop_server


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perezvon.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_and_user_create_on_the_default_database(tmp_path: Path) -> None:
    env = {"PEREZVON_DATABASE_URL": ""}  # the default: perezvon.db in the working directory
    assert run_cli("migrate", cwd=tmp_path, env=env).returncode == 0
    assert (tmp_path / "perezvon.db").exists()

    operator = run_cli("token", "create", cwd=tmp_path, env=env)
    assert operator.returncode == 0, operator.stderr
    token = operator.stdout.strip()
    assert len(token.split()) == 1 and len(token) >= 16

    missing = run_cli("token", "create", "--email", "nobody@example.com", cwd=tmp_path, env=env)
    assert missing.returncode != 0 and "user create" in missing.stderr

    made = run_cli(
        "user", "create", "--email", "alice@example.com", "--password", "correct horse", cwd=tmp_path, env=env
    )
    assert made.returncode == 0, made.stderr
    short = run_cli("user", "create", "--email", "bob@example.com", "--password", "short", cwd=tmp_path, env=env)
    assert short.returncode != 0 and "8 characters" in short.stderr
    alice_token = run_cli("token", "create", "--email", "alice@example.com", cwd=tmp_path, env=env).stdout.strip()
    assert len(alice_token) >= 16 and alice_token != token


def test_a_bad_database_url_is_refused_clearly(tmp_path: Path) -> None:
    result = run_cli("migrate", cwd=tmp_path, env={"PEREZVON_DATABASE_URL": "mysql://x"})
    assert result.returncode != 0
    assert "PEREZVON_DATABASE_URL" in result.stderr


def test_serve_answers_with_tokens_from_the_cli_and_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    server = start_server(url, tmp_path)
    try:
        token = run_cli("token", "create", cwd=tmp_path, env={"PEREZVON_DATABASE_URL": url}).stdout.strip()
        for bearer in (token, ADMIN_TOKEN):
            response = httpx.get(f"{server.base_url}/api/admin/v1/sites", headers={"Authorization": f"Bearer {bearer}"})
            assert response.status_code == 200
        js = httpx.get(f"{server.base_url}/ctw.js", params={"site": "any"})
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    finally:
        stop_server(server)


def test_demo_serves_the_demo_page_and_a_working_widget(tmp_path: Path) -> None:
    server = start_server(f"sqlite:///{tmp_path / 'demo.db'}", tmp_path, args=("demo",))
    try:
        page = httpx.get(f"{server.base_url}/demo")
        assert page.status_code == 200
        assert "getRouteKeyData('my_form_1'" in page.text and "/ctw.js?site=demo" in page.text
        data = httpx.post(
            f"{server.base_url}/api/widget/v1/route-key-data", json={"site": "demo", "routeKey": "my_form_1"}
        )
        assert data.json()["widgetData"]["callCenterWorkingMode"] == "working_hours"
        assert "demo@perezvon.local" in server.log()
    finally:
        stop_server(server)


def test_an_unreachable_database_or_redis_is_said_in_one_line(tmp_path: Path) -> None:
    from support import free_port

    closed = free_port()  # nothing listens there
    cases = [
        ("migrate", {"PEREZVON_DATABASE_URL": f"postgresql://nobody:secret@127.0.0.1:{closed}/x"}, "database"),
        ("migrate", {"PEREZVON_DATABASE_URL": "sqlite:////proc/no-such-folder/p.db"}, "database"),
        ("serve", {"PEREZVON_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
                   "PEREZVON_REDIS_URL": f"redis://127.0.0.1:{closed}/0"}, "Redis"),
    ]
    for command, env, what in cases:
        done = run_cli(command, "--port", str(free_port()), cwd=tmp_path, env=env) if command == "serve" else \
            run_cli(command, cwd=tmp_path, env=env)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1, done.stderr
        assert lines[0].startswith("Error: cannot ") and what in lines[0], lines[0]
        assert "secret" not in lines[0]  # the password is never printed


def test_the_demo_page_speaks_one_language_at_a_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = start_server(f"sqlite:///{tmp_path / 'demo.db'}", tmp_path, args=("demo",))
    try:
        russian = httpx.get(f"{server.base_url}/demo?lang=ru").text
        english = httpx.get(f"{server.base_url}/demo", headers={"Accept-Language": "en-US,en;q=0.9"}).text
        assert '<html lang="ru">' in russian and "Заказать обратный звонок" in russian
        assert "Request a callback" not in russian and "Call me back" not in russian
        assert '<html lang="en">' in english and "Request a callback" in english
        assert "Перезвоните мне" not in english and "колл-центр" not in english
        assert "[[" not in russian + english
        assert "Создана заявка на колбек" in russian  # the reference's own message, in the Russian page
    finally:
        stop_server(server)
