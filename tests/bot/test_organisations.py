"""Several organisations in one deployment (issue 11): the client's choice by link or by list, kept,
shown in the dossier and changeable; each complaint in its own organisation's mailbox, on Telegram
and on WhatsApp, with a real SMTP server and a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.root.app import App
from bot.root.cli import cli
from bot.services.organisation import ConfigError, load_deployment
from flows.model import Start
from tests.bot.client import Client
from tests.bot.mailbox import complaint_json, mails
from tests.bot.test_telegram import Harness, make_harness, stub  # noqa: F401
from tests.bot.test_telegram import running as running
from tests.bot.whatsapp_helpers import Phone, StartWhatsApp

DEPLOYMENT = """
[[organisations]]
slug = "debilt"
name = "Steunpunt Vluchtelingen De Bilt"

[organisations.mailboxes]
committee = "klachten@debilt.test"
confidants = "vertrouwens@debilt.test"

[[organisations]]
slug = "lentl"
name = "Lentl"
procedure = "lentl"

[organisations.mailboxes]
complaints = "klachten@lentl.test"
"""


@pytest.fixture
def deployment_config(tmp_path: Path) -> Path:
    path = tmp_path / "deployment.toml"
    path.write_text(DEPLOYMENT, encoding="utf-8")
    return path


@pytest.fixture
async def two(app_factory: Any, settings_for: Any, smtp_server: Any, deployment_config: Path) -> App:
    """The app of a deployment of two organisations with different procedures."""
    settings = settings_for(smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                            smtp_tls="none", config=deployment_config)
    built: App = await app_factory(settings)
    return built


async def mailbox_organisations(app: App) -> dict[str, str]:
    """Each stored case's mailbox and organisation, as the register's column holds them."""
    from sqlalchemy import select

    from storage.schema import cases

    async with app.db.engine.connect() as conn:
        rows = (await conn.execute(select(cases.c.mailbox, cases.c.organisation))).all()
    return {str(mailbox): str(organisation) for mailbox, organisation in rows}


def test_deployment_config_gives_each_organisation_its_own_procedure_and_mailboxes(
        deployment_config: Path) -> None:
    """[[organisations]] entries load in order, with their slug, procedure and mailboxes."""
    deployment = load_deployment(deployment_config)
    assert deployment.several and deployment.slugs == ("debilt", "lentl")
    assert deployment.default.procedure.id != deployment.get("lentl").procedure.id  # type: ignore[union-attr]
    assert deployment.get("lentl").mailboxes == {"complaints": "klachten@lentl.test"}  # type: ignore[union-attr]
    assert deployment.of("gone").slug == "debilt"


@pytest.mark.parametrize("broken, words", [
    ('[[organisations]]\nslug = "Ab C"\n', "slug of lower-case letters"),
    ('[[organisations]]\nslug = "a"\nname = "X"\n[[organisations]]\nslug = "a"\nname = "Y"\n',
     "same slug or name"),
    ("organisations = 3\n", "[[organisations]] entries"),
])
def test_a_broken_deployment_config_says_what_to_fix(tmp_path: Path, broken: str, words: str) -> None:
    """A bad slug, a slug used twice, or a wrong shape: one clear line naming the file."""
    path = tmp_path / "bad.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_deployment(path)
    assert words in str(caught.value) and str(path) in str(caught.value)


async def test_the_client_picks_the_organisation_and_can_change_it(two: App) -> None:
    """No link: the list in the client's language; the choice shows in the dossier; /organisation
    offers the list again, and another choice starts over without the unsent answers."""
    client = Client(two.service)
    uk = two.catalogs.get("uk")
    await client.start(hint="uk")
    assert client.text() == uk._("Which organisation is your complaint or question about?")
    assert client.buttons() == ["org:debilt", "org:lentl"]
    assert [b.label for row in client.last[0].buttons for b in row] == [
        "Steunpunt Vluchtelingen De Bilt", "Lentl"]
    await client.type("Lentl")  # typed words do not choose: the list stays
    assert client.buttons() == ["org:debilt", "org:lentl"]
    await client.press("org:lentl")
    assert "lang_uk" in client.buttons()
    await client.press("lang_uk")
    await client.press("conflict")
    assert "excl_none" in client.buttons()  # Lentl's own first question (002 §3.1)
    await client.command("dossier")
    assert uk._("Organisation: {name}").format(name="Lentl") in client.text()

    await client.command("organisation")
    assert uk._("If you choose another organisation, we start again with its steps. Your answers "
                "that you did not send yet are removed. What you already sent does not change."
                ) in client.text()
    await client.press("org:lentl")  # the same one: nothing changes
    assert client.text() == uk._("You stay with {name}.").format(name="Lentl")
    await client.command("organisation")
    await client.press("org:debilt")
    await client.press("lang_uk")
    assert "excl_none" not in client.buttons() and "conflict" in client.buttons()
    await client.command("dossier")
    assert uk._("Organisation: {name}").format(
        name="Steunpunt Vluchtelingen De Bilt") in client.text()


async def test_without_a_language_the_question_is_asked_in_all_four(two: App) -> None:
    """A first message that tells no language: one short line in each of the four languages."""
    client = Client(two.service, chat_id="no-language")
    await client.start()
    assert client.text().split("\n") == [
        two.catalogs.get(code)._("Which organisation is your complaint or question about?")
        for code in ("nl", "uk", "ar", "en")]


async def test_a_link_to_an_unknown_organisation_says_so_and_shows_the_list(two: App) -> None:
    """Start with a slug that is not configured: one line that says so, and the list."""
    client = Client(two.service, chat_id="bad-link")
    await client.send(Start("ar", organisation="nope"))
    ar = two.catalogs.get("ar")
    assert ar._("We do not know the organisation in your link.") in client.text()
    assert client.buttons() == ["org:debilt", "org:lentl"]
    assert client.last[0].rtl


async def test_a_link_to_another_organisation_mid_conversation_asks_first(two: App) -> None:
    """A second link must not drop answers on its own: the client is asked, with the list."""
    client = Client(two.service, chat_id="two-links")
    await client.send(Start("en", organisation="lentl"))
    await client.press("lang_en")
    await client.press("conflict")
    await client.send(Start("en", organisation="debilt"))
    assert client.buttons() == ["org:debilt", "org:lentl"]
    await client.press("org:lentl")
    assert client.text() == "You stay with Lentl."
    assert "excl_none" in (await client.command("help") and client.buttons())


async def test_one_organisation_needs_no_choice(app: App) -> None:
    """The zero-configuration default: no list, no /organisation, the case is the default's."""
    client = Client(app.service, chat_id="single")
    await client.start(hint="nl")
    assert "lang_nl" in client.buttons()
    assert not any(b.startswith("org:") for b in client.buttons())


async def test_two_organisations_on_telegram_and_whatsapp_each_mail_their_own(
        running: Callable[..., Any], start_whatsapp: StartWhatsApp, smtp_server: Any,
        deployment_config: Path, graph: Any) -> None:
    """A Telegram deep link to Lentl and a WhatsApp link to De Bilt: no list, each complaint in its
    own organisation's mailbox and register."""
    from tests.bot.whatsapp_helpers import APP_SECRET, PHONE_NUMBER_ID, TOKEN, VERIFY_TOKEN, free_port

    harness: Harness = await running(
        "ptb", config=deployment_config, whatsapp_token=TOKEN,
        whatsapp_phone_number_id=PHONE_NUMBER_ID, whatsapp_app_secret=APP_SECRET,
        whatsapp_verify_token=VERIFY_TOKEN, whatsapp_api_base=graph.base,
        whatsapp_listen_port=free_port())
    meta = await start_whatsapp(app=harness.a)

    # Telegram: t.me/<bot>?start=lentl
    person = harness.person(4101, "nl", "Sara")
    shown = await person.say("/start lentl")
    assert any("lang_nl" in s.button_ids() for s in shown)
    await person.press("lang_nl")
    await person.press("help")
    await person.press("excl_none")
    await person.press("talk_helped")  # 002 §2.3: a signal, registered, no complaint

    # WhatsApp: wa.me/<number>?text=Klachtwijzer%20%23debilt
    phone = Phone(meta, wa_id="31612340000")
    await phone.type("Klachtwijzer #debilt")
    assert "org:debilt" not in phone.choices()
    await phone.press("lang_nl")
    await phone.press("conflict")
    await phone.press("talk_not_helped")
    await phone.press("request_yes")
    await phone.type("Piet Jansen")
    await phone.press("contact_phone")
    await phone.type("+31 6 12345678")
    await phone.type("Wij zijn het oneens over de afspraken.")
    await phone.press("confirm")

    assert await harness.a.worker.run_once() == 2
    by_to = {m["To"]: complaint_json(m) for m in mails(smtp_server)}
    assert set(by_to) == {"klachten@lentl.test", "klachten@debilt.test"}
    assert by_to["klachten@lentl.test"]["kind"] == "signal"
    assert by_to["klachten@debilt.test"]["kind"] == "mediation_request"
    assert await mailbox_organisations(harness.a) == {"klachten@lentl.test": "lentl",
                                                      "klachten@debilt.test": "debilt"}


def test_links_prints_each_organisations_telegram_and_whatsapp_link(
        deployment_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`klachtwijzer links`: a deep link and a prefilled WhatsApp text per organisation."""
    monkeypatch.setenv("KLACHTWIJZER_CONFIG", str(deployment_config))
    monkeypatch.setenv("KLACHTWIJZER_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["links", "--telegram-bot", "@KlachtBot",
                                      "--whatsapp-number", "+31 6 1234 5678"])
    assert result.exit_code == 0, result.output
    assert "https://t.me/KlachtBot?start=lentl" in result.output
    assert "https://wa.me/31612345678?text=Klachtwijzer%20%23debilt" in result.output
    bad = CliRunner().invoke(cli, ["links", "--whatsapp-number", "12"])
    assert bad.exit_code == 2 and "international form" in bad.output


TWO_WITH_CONFIDANTS = """
[[organisations]]
slug = "noord"
name = "Steunpunt Noord"
[[organisations.confidants]]
gender = "female"
telegram = 501

[[organisations]]
slug = "zuid"
name = "Steunpunt Zuid"
[[organisations.confidants]]
gender = "female"
telegram = 502
"""


async def test_a_confidant_is_offered_only_chats_of_their_own_organisation(
        running: Callable[..., Any], tmp_path: Path) -> None:
    """A Schema B request to Zuid goes to Zuid's confidant; Noord's never sees it, nor may accept it."""
    config = tmp_path / "confidants.toml"
    config.write_text(TWO_WITH_CONFIDANTS, encoding="utf-8")
    harness: Harness = await running("ptb", config=config)
    client = harness.person(4101, "ar", "Layla")
    noord, zuid = harness.person(501, "nl", "Anna"), harness.person(502, "nl", "Bea")
    await client.say("/start zuid")
    await client.press("lang_ar")
    await client.press("sexual_harassment")
    await client.press("talk_not_tried")
    await client.press("pref_female")
    await client.press("anonymous")
    await client.press("contact_chat")
    await client.say("مشكلة مع متطوع")
    await client.press("confirm")
    offers = {p.chat: [s for s in p.inbox() if "ho:accept" in str(s.button_ids())]
              for p in (noord, zuid)}
    assert (len(offers[501]), len(offers[502])) == (0, 1)


async def test_whatsapp_shows_the_list_within_its_limits_and_takes_the_choice(
        app_factory: Any, settings_for: Any, smtp_server: Any, deployment_config: Path,
        start_whatsapp: StartWhatsApp, graph: Any) -> None:
    """A first WhatsApp message without a link: the names as buttons within WhatsApp's limits (a
    long name shortened, its whole name in the text), and a tap chooses."""
    from tests.bot.whatsapp_helpers import (
        APP_SECRET,
        PHONE_NUMBER_ID,
        TOKEN,
        VERIFY_TOKEN,
        free_port,
        within_limits,
    )

    settings = settings_for(
        smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_tls="none",
        config=deployment_config, whatsapp_token=TOKEN, whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_app_secret=APP_SECRET, whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_api_base=graph.base, whatsapp_listen_port=free_port())
    meta = await start_whatsapp(app=await app_factory(settings))
    phone = Phone(meta, wa_id="31698765432")
    shown = await phone.type("Привіт")
    assert within_limits(shown)
    uk = meta.app.catalogs.get("uk")
    assert uk._("Which organisation is your complaint or question about?") in phone.text()
    assert set(phone.choices()) == {"org:debilt", "org:lentl"}
    assert "1. Steunpunt Vluchtelingen De Bilt" in phone.text()
    await phone.press("org:lentl")
    assert "lang_uk" in phone.choices()


async def test_the_web_chat_opens_with_the_organisation_its_page_names(
        app_factory: Any, settings_for: Any, deployment_config: Path) -> None:
    """/chat/lentl (or the widget's data-organisation) chooses Lentl: no list, Lentl's steps; a
    bare /chat shows the list."""
    from tests.bot.web.helpers import button_ids, client, serving
    from tests.bot.whatsapp_helpers import free_port

    app = await app_factory(settings_for(config=deployment_config, web_listen_port=free_port()))
    async with serving(app) as base:
        async with client(base) as tab:
            await tab.hello(lang="uk", org="lentl")
            shown = await tab.message(t="start")
            assert "lang_uk" in button_ids(shown) and "org:lentl" not in button_ids(shown)
            shown = await tab.message(t="choice", button="lang_uk", state="language")
            shown = await tab.message(t="choice", button="conflict", state="triage")
            assert "excl_none" in button_ids(shown)  # Lentl's own question (002 §3.1)
        async with client(base) as tab:
            await tab.hello(lang="uk")
            assert button_ids(await tab.message(t="start")) == ["org:debilt", "org:lentl"]
