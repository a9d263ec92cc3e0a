"""The `klachtwijzer` command: chat, run, check-config, keygen, diagram."""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from bot.app import build_app, configure_logging
from bot.settings import ConfigError, Settings, load_organisation
from bot.terminal import TerminalChat
from flows.engine import Engine
from flows.i18n import load_catalogs
from flows.model import LANGUAGES
from flows.procedure import ProcedureError
from storage import generate_key

cli = typer.Typer(help="Klachtwijzer: a multilingual complaint-intake chatbot.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            typer.echo(f"setting {where}: {error['msg']}", err=True)
        raise typer.Exit(2) from exc


@cli.command()
def chat(
    lang: Annotated[str | None, typer.Option("--lang", help="nl, uk, ar or en")] = None,
    chat_id: Annotated[str, typer.Option(help="Which local conversation to use")] = "local",
) -> None:
    """Run the conversation in this terminal (buttons are numbered)."""
    if lang is not None and lang not in LANGUAGES:
        typer.echo(f"--lang must be one of {', '.join(LANGUAGES)}", err=True)
        raise typer.Exit(2)
    settings = _settings()
    configure_logging("WARNING")
    # Bytes that are not UTF-8 (binary pasted into the terminal) become U+FFFD, never a crash.
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="replace")

    async def main() -> None:
        app = await build_app(settings)
        if app.key_generated:
            typer.echo(f"(A development key was generated in {settings.data_dir / 'secret.key'}.)\n")
        try:
            await TerminalChat(
                app.service, sys.stdin, sys.stdout, chat_id=chat_id, language=lang,
                after_event=app.worker.run_once,
            ).run()
        finally:
            await app.worker.run_once()
            await app.close()

    asyncio.run(main())


@cli.command()
def run() -> None:
    """Run the configured channels and the outbox worker until stopped (SIGINT/SIGTERM)."""
    settings = _settings()
    configure_logging(settings.log_level)

    async def main() -> None:
        app = await build_app(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await app.run(stop)
        finally:
            await app.close()

    asyncio.run(main())


@cli.command("check-config")
def check_config() -> None:
    """Check the settings and the organisation config; say clearly what is wrong."""
    settings = _settings()
    try:
        org = load_organisation(settings.config)
    except (ConfigError, ProcedureError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if settings.secret_key is not None:
        from storage import Cipher

        try:
            Cipher([k for k in settings.secret_key.get_secret_value().split(",") if k])
        except ValueError as exc:
            typer.echo(
                "error: KLACHTWIJZER_SECRET_KEY is not a valid key; make one with "
                "`klachtwijzer keygen`",
                err=True,
            )
            raise typer.Exit(1) from exc
    typer.echo(f"organisation: {org.name}")
    typer.echo(f"procedure:    {org.procedure.id} ({len(org.procedure.schemas)} schemas)")
    for name, address in org.mailboxes.items():
        typer.echo(f"mailbox:      {name} = {address}")
    typer.echo(f"database:     {'DATABASE_URL' if settings.database_url else settings.db_url}")
    if settings.smtp_host:
        typer.echo(f"mail:         SMTP {settings.smtp_host}:{settings.smtp_effective_port} "
                   f"({settings.smtp_tls})")
    else:
        typer.echo(f"mail:         .eml files in {settings.outbox_dir}")
    typer.echo(f"secret key:   {'set' if settings.secret_key else 'development key in data dir'}")
    typer.echo("ok")


@cli.command()
def keygen() -> None:
    """Print a new secret key for KLACHTWIJZER_SECRET_KEY."""
    typer.echo(generate_key())


@cli.command()
def diagram(
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Draw the organisation's procedure as a Mermaid state diagram."""
    settings = _settings()
    org = load_organisation(settings.config)
    text = Engine(org.procedure, load_catalogs(), organisation=org.name).diagram()
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text)


def main() -> None:
    cli()
