"""How the visitor's side refusing a call ends the request (#11): declined and no-such-number are not redialled."""

from __future__ import annotations

import pytest

from calls.test_engine import ALWAYS
from perezvon.calls.dialer.base import RingResult

VISITOR = "79001234567"


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [(RingResult.REJECTED, "client_rejected"), (RingResult.INVALID_NUMBER, "client_invalid_number")],
)
async def test_a_refused_visitor_is_not_called_again(engine_factory, monkeypatch, answer, outcome) -> None:
    async with engine_factory() as eng:
        site, _ = await eng.admin.site_with_widget(
            operatorPhones=["79990000010"], schedule=ALWAYS, callback={"redialAttempts": 2}
        )
        make_leg = eng.dialer.leg

        def leg(number, trunk=None, **options):
            made = make_leg(number, trunk, **options)
            if number == VISITOR:

                async def refuse(timeout, **ringing):
                    made._end()
                    return answer

                made.ring = refuse
            return made

        monkeypatch.setattr(eng.dialer, "leg", leg)
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", VISITOR, site["siteKey"])
            assert (await eng.wait_final(events, {rid})) == {rid: "failed"}
        got = await eng.request(rid)
        assert [a["outcome"] for a in got["attempts"]] == [outcome]  # one attempt, though 2 redials were allowed
