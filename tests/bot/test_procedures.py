"""End-to-end: the bundled procedures of Lentl (`002`) and a coaching practice (`004`) through the
public service, with a real SMTP server, a real SQLite file and complaint.json read back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.root.app import App
from bot.services import register
from tests.bot.client import Client
from tests.bot.mailbox import complaint_json, mails
from tests.bot.register_helpers import RecordingChannel

PROCEDURES = Path(__file__).resolve().parents[2] / "flows" / "procedures"

MakeApp = Callable[[str], Awaitable[App]]


@pytest.fixture
def app_with(app_factory: Any, settings_for: Any, smtp_server: Any, tmp_path: Path) -> MakeApp:
    """Builds the app for a bundled procedure, selected by its TOML path in the organisation config."""

    async def make(procedure: str) -> App:
        config = tmp_path / "organisation.toml"
        config.write_text(f'name = "Test"\nprocedure = "{PROCEDURES / procedure}"\n',
                          encoding="utf-8")
        settings = settings_for(smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                                smtp_tls="none", config=config)
        built: App = await app_factory(settings)
        return built

    return make


async def begin(client: Client, lang: str, category: str) -> None:
    await client.start(hint=lang)
    await client.press(f"lang_{lang}")
    await client.press(category)


COMPLAINT_INTRO = (
    "Step {step} of {total}: your complaint.\nThe manager of the employee contacts you to talk "
    "about your complaint. I will ask you a few questions. At the end you can check and change "
    "your answers."
)
MANAGER_RECEIPT = (
    "Thank you. We sent your complaint to the organisation.\nYour reference number is "
    "{reference}.\n\nWhat happens now:\n• The manager of the employee contacts you to talk "
    "about your complaint. The employee is there too, unless you or the employee do not want "
    "that.\n• After the talk, the manager sends you the main points and agreements by e-mail."
    "\n• Not solved? Then you can take your complaint further."
)


def said(app: App, lang: str, msgid: str) -> str:
    """A text as the client reads it in their language: its first line, up to a placeholder."""
    return app.catalogs.get(lang)._(msgid).split("\n")[0].split("{")[0]


# --- Lentl (002) -----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["nl", "uk"])
async def test_lentl_dissatisfaction_solved_in_the_talk_is_a_signal(
        app_with: MakeApp, smtp_server: Any, lang: str) -> None:
    """002 §2.3: dissatisfaction solved in the talk is registered as a signal, no complaint mailed."""
    app = await app_with("lentl.toml")
    client = Client(app.service)
    await begin(client, lang, "help")
    await client.press("excl_none")  # 002 §3.1: none of the exclusions
    assert "talk_not_helped" in client.buttons()
    await client.press("talk_helped")
    assert said(app, lang, "We noted that talking helped, without your name. It is not registered as a "
                   "complaint. The organisation learns from it.\nYour reference number is "
                   "{reference}.") in client.text()
    await app.worker.run_once()

    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert mail["To"] == "klachten@lentl.example.org"
    assert doc["kind"] == "signal" and doc["steps_taken"]["talked"] == "helped"
    assert doc["complainant"]["name"] is None and doc["description"] is None
    assert (doc["category"], doc["language"]) == ("help", lang)


@pytest.mark.parametrize("lang", ["en", "ar"])
async def test_lentl_complaint_to_the_manager_then_the_committee(
        app_with: MakeApp, smtp_server: Any, lang: str) -> None:
    """002 §4.2-4.3: the complaint goes to the manager; later the client is shown the OKC's link."""
    app = await app_with("lentl.toml")
    client = Client(app.service)
    await begin(client, lang, "conflict")
    await client.press("excl_none")
    await client.press("talk_not_helped")
    assert said(app, lang, COMPLAINT_INTRO) in client.text()
    await client.type("Sara Haddad")
    await client.type("Jan de Vries")
    await client.type("The employee did not keep our agreements.")
    await client.type("10-11-2026")
    await client.press("tried_nothing")
    await client.press("contact_chat")
    assert said(app, lang, "We send this to the organisation. The manager of the employee "
                "reads it. The employee will hear what it says, so that they can answer.") in client.text()
    await client.press("confirm")
    assert said(app, lang, MANAGER_RECEIPT) \
        in client.text()
    await client.press("continue")  # later: the talk with the manager did not solve it
    okc = client.text()
    assert "Onafhankelijke Klachtencommissie (OKC)" in okc and "https://okc.example.org" in okc
    assert app.catalogs.get(lang)._(
        "The committee has its own rules. You find them on the same website.") in okc
    await client.press("external_done")
    await app.worker.run_once()

    [mail] = mails(smtp_server)  # nothing is sent to the OKC: the client goes there
    doc = complaint_json(mail)
    assert mail["To"] == "klachten@lentl.example.org"
    assert (doc["kind"], doc["schema"], doc["complainant_type"]) == ("complaint", "main", "self")
    assert doc["staff_involved"] == "Jan de Vries"
    assert doc["admissibility"]["rule"] == "002 §3.1"  # not the regional 001 art. 13

    # 002 §4.2: the client hears that the organisation got it and the manager will call, not the
    # regional committee's words.
    channel = RecordingChannel("terminal")
    app.channels.register(channel)
    await register.set_status(app, doc["reference"], "acknowledged")
    [news] = channel.texts()
    t = app.catalogs.get(lang)
    assert t._("The organisation confirms that it got your complaint. The manager of the "
               "employee will contact you to talk about it.") in news
    assert t._("The complaints committee confirms that it got your complaint.").split(".")[0] \
        not in news


@pytest.mark.parametrize("lang", ["uk", "nl"])
async def test_lentl_municipal_decision_is_referred_and_may_be_a_report(
        app_with: MakeApp, smtp_server: Any, lang: str) -> None:
    """002 §3.1: a Wmo/Jeugdwet decision is referred to the municipality; a report is still possible."""
    app = await app_with("lentl.toml")
    client = Client(app.service)
    await begin(client, lang, "youth_care")
    await client.press("excl_wmo_or_youth_act_decision")
    t = app.catalogs.get(lang)
    assert t._("The municipality decides about Wmo support and youth care, not the "
               "organisation. Do you disagree with the decision? Then you can object at the "
               "municipality. The letter with the decision says how.") in client.text()
    assert client.buttons() == ["report", "finish"]
    await client.press("report")
    await client.press("anonymous")
    await client.type("Het besluit kwam te laat.")
    await client.press("contact_chat")
    await client.press("confirm")
    await app.worker.run_once()

    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert (doc["kind"], doc["complainant"]["anonymous"]) == ("report", True)
    assert doc["description"] == "Het besluit kwam te laat."


@pytest.mark.parametrize("lang", ["ar", "en"])
async def test_lentl_group_complaint_names_its_representative(
        app_with: MakeApp, smtp_server: Any, lang: str) -> None:
    """002 §3.2: a group may complain; the organisation talks with the representative it named."""
    app = await app_with("lentl.toml")
    client = Client(app.service)
    await begin(client, lang, "nuisance")
    await client.press("excl_none")
    await client.press("talk_not_helped")
    assert {"who_self", "who_representative", "who_affected", "who_group",
            "who_anonymous"} <= set(client.buttons())
    await client.press("who_group")
    assert app.catalogs.get(lang)._("What is the name of the group?") in client.text()
    await client.type("Buurtgroep Oost")
    await client.type("Omar Ali")
    await client.press("staff_unknown")
    await client.type("Every night there is noise at the location.")
    await client.press("when_unknown")
    await client.press("tried_nothing")
    await client.press("contact_chat")
    await client.press("confirm")
    await app.worker.run_once()

    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert doc["complainant_type"] == "group"
    assert doc["complainant"]["name"] == "Buurtgroep Oost"
    assert doc["representative"] == {"name": "Omar Ali", "relation": "group"}
    assert doc["category"] == "nuisance"


@pytest.mark.parametrize("lang", ["nl", "en"])
async def test_lentl_youth_care_has_36_months(app_with: MakeApp, smtp_server: Any,
                                              lang: str) -> None:
    """002 §3.1: youth care 30 months ago is accepted; 40 months ago the 36-month limit is explained."""
    app = await app_with("lentl.toml")
    t = app.catalogs.get(lang)
    for name, when in (("Sara Haddad", "22-05-2024"), ("Layla Ali", "22-07-2023")):
        client = Client(app.service, chat_id=name)
        await begin(client, lang, "youth_care")
        await client.press("excl_none")
        await client.press("talk_not_helped")
        await client.type(name)
        await client.type("Jan de Vries")
        await client.type("The youth worker did not come.")
        await client.type(when)
        if when == "22-07-2023":
            # 002 §3.1: the organisation decides, not a committee; sexual harassment has no limit.
            assert t.ngettext(
                "This happened more than {count} month ago. The organisation may not handle "
                "complaints that old. You can still send it, and the organisation decides. "
                "Or we only register it as a report.",
                "This happened more than {count} months ago. The organisation may not handle "
                "complaints that old. You can still send it, and the organisation decides. "
                "Or we only register it as a report.", 36).format(count=36) in client.text()
            assert t._("Is it about “{category}”? Then there is no time limit.").format(
                category=t.quote(t._("Sexual harassment"))) in client.text()
            assert {"nl": "commissie", "en": "committee"}[lang] not in client.text()
            await client.press("adm_register")
        await client.press("tried_nothing")
        await client.press("contact_chat")
        await client.press("confirm")
    await app.worker.run_once()

    accepted, explained = (complaint_json(m) for m in mails(smtp_server))
    assert (accepted["kind"], accepted["admissibility"]["status"]) == ("complaint", "admissible")
    assert (explained["kind"], explained["admissibility"]["status"]) == ("report", "report_only")


# --- the coaching practice (004) -------------------------------------------------------------


@pytest.mark.parametrize("lang", ["uk", "ar"])
async def test_coaching_confidant_is_named_and_can_be_contacted_anonymously(
        app_with: MakeApp, smtp_server: Any, lang: str) -> None:
    """004 step 2: the confidant's name and contact are shown; the request may be anonymous."""
    app = await app_with("coaching.toml")
    client = Client(app.service)
    await begin(client, lang, "help")
    assert "skip_to_complaint" not in client.buttons()  # 004: one step at a time
    await client.press("talk_not_tried")  # 004 step 2: not safe with the coach
    shown = client.text()
    assert "Aileen Kivits" in shown and "info@akivitsbegeleiding.nl" in shown
    assert "06 114 816 74" in shown
    assert client.buttons() == ["pref_none", "pref_no_thanks"]
    await client.press("pref_none")
    await client.press("anonymous")
    await client.press("contact_chat")
    await client.press("skip")
    # 004 step 2: the promise names its one exception (danger) where the client consents.
    t = app.catalogs.get(lang)
    assert " ".join([
        t._("We send this to the confidant. Only the confidant reads it."),
        t._("The confidant keeps what you tell between the two of you. If you or someone else "
            "is in danger, the confidant talks with you about what to do.")]) in client.text()
    await client.press("confirm")
    await app.worker.run_once()

    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert mail["To"] == "info@akivitsbegeleiding.nl"
    assert doc["kind"] == "confidant_request"
    assert doc["complainant"] == {"name": None, "anonymous": True,
                                  "contact": {"method": "chat", "value": None}}


@pytest.mark.parametrize("lang", ["nl", "en"])
async def test_coaching_escalates_to_the_generalist_then_the_committee_form(
        app_with: MakeApp, smtp_server: Any, lang: str) -> None:
    """004 steps 3-4: the generalist first (no skipping), then the committee's website form."""
    app = await app_with("coaching.toml")
    client = Client(app.service)
    t = app.catalogs.get(lang)
    await begin(client, lang, "conflict")
    await client.press("talk_not_helped")
    await client.press("pref_no_thanks")
    generalist = client.text()
    assert t._("your generalist at the municipality") in generalist
    assert client.buttons() == ["talk_helped", "talk_not_helped", "talk_later"]
    await client.press("talk_later")  # 004 step 4 needs step 3 done: the question waits
    assert said(app, lang, "Please take this step first. Then come back here: this "
                "question waits for you.") in client.text()
    await client.press("talk_not_helped")
    committee = client.text()
    assert "https://www.erisietsmisgegaan.nl" in committee
    assert "ik ben cliënt en wil mijn onvrede melden" in committee
    assert t._("There you fill in a form about yourself and your care provider, and you "
               "describe your complaint. They contact you within two working days. Together "
               "you look at how to handle your complaint.") in committee
    await client.press("external_done")
    assert await app.worker.run_once() == 0
    assert mails(smtp_server) == []  # the client fills in the committee's own form


# --- the default procedure ---------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "uk"])
async def test_default_procedure_is_unchanged(app: App, smtp_server: Any, lang: str) -> None:
    """Without a procedure in the config: Schema A and B of 000, no exclusions question."""
    client = Client(app.service)
    await client.start(hint=lang)
    await client.press(f"lang_{lang}")
    assert client.buttons() == ["help", "conflict", "discrimination", "bullying", "aggression",
                                "sexual_harassment", "other", "unsure", "danger_yes"]
    await client.press("help")
    assert client.buttons() == ["talk_helped", "talk_not_helped", "talk_not_tried",
                                "skip_to_complaint"]
    await client.press("talk_helped")
    assert await app.worker.run_once() == 0  # 000: a solved talk sends nothing
    assert mails(smtp_server) == []
