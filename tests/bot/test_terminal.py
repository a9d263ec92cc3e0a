"""The terminal chat, driven through stdin in a real subprocess, ends in an .eml in the outbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path

from bot.channels.terminal import parse, render
from flows.model import Button, Choice, Command, OutMessage, Text


def run_chat(data_dir: Path, lines: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "KLACHTWIJZER_"))}
    env.update(KLACHTWIJZER_DATA_DIR=str(data_dir), MAIL_FROM="bot@klachtwijzer.test", DATABASE_URL="")
    env.pop("DATABASE_URL")
    return subprocess.run(
        [sys.executable, "-m", "bot", "chat", *args],
        input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, timeout=120,
        check=True,
    )


def test_terminal_chat_to_eml(tmp_path: Path) -> None:
    """A confidant request typed in the terminal (numbers and labels) is written as an .eml file."""
    data_dir = tmp_path / "data"
    lines = [
        "4",  # English: the privacy notice and the first question come together
        "Aggression",  # a label works as well as a number
        "3", "1",  # did not try step 1; a woman
        "Maria", "1",  # name, contact in this chat
        "He shouted at me.",
        "1",  # Send (pressing it is the consent)
        "2",  # no formal complaint now
    ]
    result = run_chat(data_dir, lines, "--lang", "en")
    assert "Choose your language." in result.stdout
    assert "Your reference number is KW-2026-000001." in result.stdout.replace("\u2068", "")
    [eml] = list((data_dir / "outbox").glob("*.eml"))
    assert oct(eml.stat().st_mode & 0o777) == "0o600"
    mail = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert mail["To"] == "vertrouwenspersonen@regioverband.nl"
    [doc] = [json.loads(p.get_content()) for p in mail.iter_attachments()
             if p.get_filename() == "complaint.json"]
    assert (doc["kind"], doc["confidant_preference"], doc["description"]) == (
        "confidant_request", "female", "He shouted at me.")


def test_terminal_resumes_after_quit(tmp_path: Path) -> None:
    """Leaving the terminal and coming back resumes the same conversation."""
    data_dir = tmp_path / "data"
    run_chat(data_dir, ["4", "/quit"])
    result = run_chat(data_dir, [])
    assert "Welcome back. This is where you were:" in result.stdout
    assert "What is it about?" in result.stdout.split("Welcome back.")[1]


def test_binary_and_hostile_lines_do_not_crash(tmp_path: Path) -> None:
    """Binary bytes, control characters and a 100 000-character line get answers, not a crash."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "KLACHTWIJZER_", "DATABASE_"))}
    env.update(KLACHTWIJZER_DATA_DIR=str(tmp_path / "data"), MAIL_FROM="bot@klachtwijzer.test")
    stdin = b"\xff\xfe\x00binary\n\x1b[2J\x07\n" + b"y" * 100_000 + b"\n4\n/nonsense\n"
    result = subprocess.run([sys.executable, "-m", "bot", "chat"], input=stdin, capture_output=True,
                            env=env, timeout=120, check=True)
    out = result.stdout.decode("utf-8")
    assert out.count("Kies uw taal.") >= 4  # asked again after each line it could not use
    assert "I do not know this command." in out


def test_parse_lines() -> None:
    """A number picks a shown button, a slash word is a command, anything else is text."""
    shown = ["a", "b"]
    assert parse("2\n", shown) == Choice("b")
    assert parse("3\n", shown) == Text("3")
    assert parse("/Help\n", shown) == Command("help")
    assert parse("/ not a command\n", shown) == Text("/ not a command")


def test_render_numbers_buttons() -> None:
    """Buttons are shown as numbered lines under the text."""
    message = OutMessage("Hi", ((Button("x", "Yes"), Button("y", "No")),))
    assert render(message) == "Hi\n  [1] Yes\n  [2] No"


def test_lang_switches_a_kept_conversation(tmp_path: Path) -> None:
    """`--lang uk` on a kept English conversation switches it to Ukrainian, where it was."""
    data_dir = tmp_path / "data"
    run_chat(data_dir, ["4", "/quit"])
    result = run_chat(data_dir, ["/quit"], "--lang", "uk")
    after = result.stdout.split("Welcome back.")[1]
    assert "Про що йдеться?" in after  # the same question, now in Ukrainian


def test_help_buttons_and_question_buttons_are_numbered_in_one_sequence(tmp_path: Path) -> None:
    """After /help, its buttons and the question's are numbered on: each number picks one."""
    data_dir = tmp_path / "data"
    result = run_chat(data_dir, ["4", "/help", "10", "/quit"])
    after_help = result.stdout.split("How this works:")[1]
    assert "  [1] Language" in after_help and "  [10] Aggression" in after_help
    # "10" picked Aggression (a Schema B category): the talk step of Schema B comes next.
    assert "A confidant can help you." in after_help.split("[14]")[1]
