"""Russian and English: the same keys in both dictionaries, every key a template uses exists, ?lang= sticks."""

from __future__ import annotations

import re
from pathlib import Path

from perezvon.web import i18n

TEMPLATES = Path(i18n.__file__).with_name("templates")


def test_both_languages_have_the_same_keys():
    assert set(i18n.EN) == set(i18n.RU)
    assert all(i18n.RU[k].strip() for k in i18n.RU)


def test_every_key_a_template_uses_is_translated():
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z0-9_]+)'[,)]", template.read_text()))
    assert used, "no t('…') calls found"
    assert used - set(i18n.EN) == set()


def test_prefixed_keys_cover_every_value():
    from perezvon.services.journal import STATUSES

    for status in STATUSES:
        assert f"status_{status}" in i18n.EN
    for outcome in (
        "connected",
        "operator_no_answer",
        "operator_busy",
        "client_no_answer",
        "client_busy",
        "interrupted",
        "error",
    ):
        assert f"outcome_{outcome}" in i18n.EN
    for day in range(1, 8):
        assert f"dow_{day}" in i18n.EN


async def test_the_language_link_switches_and_is_remembered(cabinet):
    alice = await cabinet.login("alice")
    english = await alice.get("/cabinet/journal", headers={"accept-language": "en"})
    assert "Call journal" in english.text and 'href="/cabinet/journal?lang=ru"' in english.text
    russian = await alice.get("/cabinet/journal?lang=ru")
    assert "Журнал заявок" in russian.text and '<html lang="ru">' in russian.text
    assert alice.cookies.get("pzv_lang") == "ru"
    again = await alice.get("/cabinet/sites")
    assert "Сайты" in again.text


async def test_russian_browsers_get_russian_by_default(cabinet):
    page = await cabinet.new_client().get("/cabinet/login", headers={"accept-language": "ru-RU,ru;q=0.9"})
    assert "Вход в perezvon" in page.text
