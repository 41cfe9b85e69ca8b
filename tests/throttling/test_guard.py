"""The limits of DESIGN §3 on both storages: in-process memory and Redis (shared by several processes)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from perezvon.throttling import Guard, client_ip
from support import redis_unreachable


@pytest.fixture(params=["memory", "redis"])
async def make_guard(request: pytest.FixtureRequest) -> AsyncIterator:
    made: list[Guard] = []

    def factory(**kwargs: object) -> Guard:
        if request.param == "redis":
            reason = redis_unreachable()
            if reason:
                pytest.skip(reason)
            # A namespace per test: parallel suites share the one Redis server.
            guard = Guard(redis_url="redis://127.0.0.1:6379/0", namespace=f"t{uuid.uuid4().hex}", **kwargs)
        else:
            guard = Guard(**kwargs)
        made.append(guard)
        return guard

    yield factory
    for guard in made:
        await guard.reset()
        await guard.close()


async def test_of_eleven_requests_in_one_second_exactly_five_pass(make_guard) -> None:  # type: ignore[no-untyped-def]
    guard = make_guard(ip_rate_limit=5)
    answers = [await guard.hit_ip("198.51.100.1") for _ in range(11)]
    assert answers[:5] == [None] * 5
    assert all(isinstance(a, int) and a >= 1 for a in answers[5:])


async def test_the_limit_is_per_ip(make_guard) -> None:  # type: ignore[no-untyped-def]
    guard = make_guard(ip_rate_limit=2)
    assert [await guard.hit_ip("a") for _ in range(3)][2] is not None
    assert await guard.hit_ip("b") is None


async def test_zero_switches_the_ip_limit_off(make_guard) -> None:  # type: ignore[no-untyped-def]
    guard = make_guard(ip_rate_limit=0)
    assert all([await guard.hit_ip("a") is None for _ in range(50)])


async def test_two_guards_on_one_redis_share_the_count() -> None:
    """What Redis storage is for: several API processes count one client together."""
    reason = redis_unreachable()
    if reason:
        pytest.skip(reason)
    namespace = f"t{uuid.uuid4().hex}"
    first = Guard(ip_rate_limit=5, redis_url="redis://127.0.0.1:6379/0", namespace=namespace)
    second = Guard(ip_rate_limit=5, redis_url="redis://127.0.0.1:6379/0", namespace=namespace)
    try:
        answers = [await (first if i % 2 else second).hit_ip("c") for i in range(7)]
        assert answers.count(None) == 5
    finally:
        await first.reset()


async def test_user_cooldown_lets_one_through_per_period(make_guard) -> None:  # type: ignore[no-untyped-def]
    guard = make_guard()
    assert await guard.hit_user_cooldown(1, "s42", 60) is None
    retry = await guard.hit_user_cooldown(1, "s42", 60)
    assert retry is not None and 1 <= retry <= 60
    assert await guard.hit_user_cooldown(2, "s42", 60) is None  # another widget
    assert await guard.hit_user_cooldown(1, "s43", 60) is None  # another user
    assert await guard.hit_user_cooldown(1, "s42", 0) is None  # switched off


async def test_phone_count_allows_n_per_period(make_guard) -> None:  # type: ignore[no-untyped-def]
    guard = make_guard()
    answers = [await guard.hit_phone_count(1, "79001234567", 3, 3600) for _ in range(4)]
    assert answers[:3] == [None] * 3 and answers[3] is not None
    assert await guard.hit_phone_count(1, "79001234568", 3, 3600) is None


async def test_points_accumulate_per_site_and_day(make_guard) -> None:  # type: ignore[no-untyped-def]
    guard = make_guard()
    await guard.take_points(1, "2026-11-25", 1, 100)
    await guard.take_points(1, "2026-11-25", 2, 100)
    await guard.take_points(1, "2026-11-26", 5, 100)
    assert await guard.points_spent(1, "2026-11-25") == 3
    assert await guard.points_spent(1, "2026-11-26") == 5
    assert await guard.points_spent(2, "2026-11-25") == 0


def test_forwarded_for_is_trusted_only_from_configured_proxies() -> None:
    assert client_ip("203.0.113.9", "1.2.3.4", []) == "203.0.113.9"
    assert client_ip("203.0.113.9", "1.2.3.4", ["10.0.0.0/8"]) == "203.0.113.9"
    assert client_ip("10.0.0.2", "1.2.3.4", ["10.0.0.0/8"]) == "1.2.3.4"
    # A client-supplied first hop cannot hide the real one seen by our proxy.
    assert client_ip("10.0.0.2", "6.6.6.6, 1.2.3.4, 10.0.0.3", ["10.0.0.0/8"]) == "1.2.3.4"
