"""The `klachtwijzer` command: chat, run, check-config, keygen, diagram; the register (case, export,
report, purge, digest)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from bot.channels.terminal import TerminalChat
from bot.root.app import (
    SetupError,
    build_app,
    configure_logging,
    data_dir_problem,
    key_problem,
    safe_db_url,
)
from bot.root.checks import (
    channel_problems,
    library_problems,
    probe_database,
    probe_smtp,
    probe_writable,
    setting_lines,
    settings_without_errors,
)
from bot.root.cli_register import add_register_commands
from bot.root.cli_staff import add_staff_commands  # the staff desk (issue 12)
from bot.root.settings import Settings
from bot.services.organisation import ConfigError, Organisation, load_organisation
from flows.engine import Engine
from flows.i18n import load_catalogs
from flows.model import LANGUAGES
from flows.procedure import ProcedureError, bundled_procedures, load_procedure, procedure_path
from storage import generate_key

if TYPE_CHECKING:
    from typer._click.core import Context as ClickContext  # typer vendors click since 0.20

EXIT_CODES = "Exit codes: 0 ok; 1 a problem with the configuration, the data or the input; 2 usage."


def problem_lines(exc: BaseException) -> list[str] | None:
    """A configuration or user error as lines an operator can act on; None for a real bug."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.services.register import RegisterError

    if isinstance(exc, SetupError | ConfigError | ProcedureError):
        return [str(exc)]
    if isinstance(exc, RegisterError):
        return [f"fout: {exc}"]
    if isinstance(exc, ValidationError):
        return setting_lines(exc)
    if isinstance(exc, SQLAlchemyError) or type(exc).__module__.startswith("asyncpg"):
        return [f"database: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"]
    if isinstance(exc, OSError):
        hint = "; does the folder exist?" if isinstance(exc, FileNotFoundError) else ""
        where = f"{exc.filename}: " if exc.filename else ""
        return [f"{where}{exc.strerror or type(exc).__name__}{hint}"]
    return None


class OperatorErrors(TyperGroup):
    """Maps configuration and user errors of every command to lines on stderr and exit code 1;
    `--debug` shows the traceback instead. Anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:
            lines = problem_lines(exc)
            if lines is None or ctx.params.get("debug"):
                raise
            for line in lines:
                typer.echo(f"error: {line}" if not line.startswith("fout: ") else line, err=True)
            raise typer.Exit(1) from None


cli = typer.Typer(help="Klachtwijzer: a multilingual complaint-intake chatbot. " + EXIT_CODES,
                  no_args_is_help=True, cls=OperatorErrors, pretty_exceptions_enable=False)


@cli.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an error")] = False,
) -> None:
    """Klachtwijzer: a multilingual complaint-intake chatbot."""


def _settings() -> Settings:
    return Settings()


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

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        from bot.channels.terminal import GOODBYE

        typer.echo(f"\n{GOODBYE}")


@cli.command()
def run() -> None:
    """Run the configured channels and the outbox worker until stopped (SIGINT/SIGTERM)."""
    settings = _settings()
    configure_logging(settings.log_level)
    log = logging.getLogger("bot.root.run")

    async def main() -> None:
        # Signals first: a SIGTERM while the database migrates still stops cleanly.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        app = await build_app(settings)
        try:
            for level, line in app.describe():
                log.log(level, "%s", line)
            await app.run(stop)
        finally:
            await app.close()
        log.info("stopped")

    asyncio.run(main())


@cli.command("check-config", epilog=EXIT_CODES)
def check_config(
    smtp: Annotated[bool, typer.Option("--smtp", help="also greet the SMTP server (connect, EHLO, "
                                                      "QUIT)")] = False,
) -> None:
    """Check the settings, the organisation config, the data dir, the database and the channel
    libraries; print every problem, one line each with what to do."""
    problems: list[str] = []
    try:
        settings = Settings()
    except ValidationError as exc:
        problems += setting_lines(exc)
        settings = settings_without_errors(exc)
    org: Organisation | None = None
    try:
        org = load_organisation(settings.config)
        Engine(org.procedure, load_catalogs(), organisation=org.name)
    except (ConfigError, ProcedureError) as exc:
        problems.append(str(exc) if settings.config is None or "KLACHTWIJZER_CONFIG" in str(exc)
                        else f"KLACHTWIJZER_CONFIG {exc}")
    if settings.secret_key is not None:
        from storage import Cipher

        try:
            Cipher([k for k in settings.secret_key.get_secret_value().split(",") if k])
        except ValueError as exc:
            problems.append(key_problem(settings, exc))
    data_dir_ok = True
    try:
        probe_writable(settings.data_dir)
    except OSError as exc:
        data_dir_ok = False
        problems.append(data_dir_problem(settings, exc))
    if data_dir_ok or settings.database_url:
        problem = asyncio.run(probe_database(settings))
        if problem:
            problems.append(problem)
    problems += channel_problems(settings)
    problems += library_problems(settings)
    if smtp:
        if settings.smtp_host:
            problem = asyncio.run(probe_smtp(settings))
            if problem:
                problems.append(problem)
        else:
            problems.append("--smtp: no SMTP_HOST set; mails are written as .eml files to "
                            f"{settings.outbox_dir}")
    if problems:
        for problem in problems:
            typer.echo(f"error: {problem}", err=True)
        n = len(problems)
        typer.echo(f"{n} problem{'s' if n != 1 else ''} found", err=True)
        raise typer.Exit(1)
    assert org is not None  # noqa: S101 - no problems means the organisation loaded
    typer.echo(f"organisation: {org.name}")
    typer.echo(f"procedure:    {org.procedure.id} ({len(org.procedure.schemas)} schemas)")
    for name, address in org.mailboxes.items():
        key = org.mailbox_keys.get(address.lower())
        encrypted = f" (OpenPGP {key.fingerprint[-16:]})" if key else ""
        typer.echo(f"mailbox:      {name} = {address}{encrypted}")
    typer.echo(f"fallback:     {settings.fallback_mail or 'none (KLACHTWIJZER_FALLBACK_MAIL)'}")
    staff = (f"{len(org.confidants)} confidants, {len(org.coordinators)} coordinators on Telegram, "
             f"{len(org.coordinator_numbers)} on WhatsApp")
    if settings.telegram_bot_token:
        typer.echo(f"telegram:     {settings.telegram_library}, {settings.telegram_mode}; {staff}")
    if settings.whatsapp_enabled:
        typer.echo(f"whatsapp:     webhook on {settings.whatsapp_listen_host}:"
                   f"{settings.whatsapp_listen_port}; template: {org.whatsapp_template or 'none'}"
                   + ("" if settings.telegram_bot_token else f"; {staff}"))
    typer.echo(f"data dir:     {settings.data_dir.resolve()} (writable)")
    typer.echo(f"database:     {safe_db_url(settings.db_url)} (reachable)")
    if settings.smtp_host:
        greeted = " (greeted)" if smtp else " (not contacted; --smtp to try)"
        typer.echo(f"mail:         SMTP {settings.smtp_host}:{settings.smtp_effective_port} "
                   f"({settings.smtp_tls}){greeted}")
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
    procedure: Annotated[str | None, typer.Option(
        help="A bundled procedure (" + ", ".join(bundled_procedures()) + ") or a definition "
             "file; default: the organisation's")] = None,
    fmt: Annotated[str, typer.Option("--format", help="steps (Mermaid flowchart, one node per "
                                     "step or form), dot (the same for Graphviz), or states "
                                     "(every state of the machine)")] = "steps",
) -> None:
    """Draw a procedure: one node per step or form, with the routing between them."""
    if fmt not in ("steps", "dot", "states"):
        raise typer.BadParameter("choose steps, dot or states", param_hint="--format")
    if procedure is None:
        settings = _settings()
        org = load_organisation(settings.config)
        chosen, name = org.procedure, org.name
    else:
        chosen = load_procedure(procedure_path(procedure, Path.cwd()))
        name = chosen.name
    engine = Engine(chosen, load_catalogs(), organisation=name)
    text = engine.diagram() if fmt == "states" else engine.step_diagram(
        "dot" if fmt == "dot" else "mermaid")
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text)


add_register_commands(cli)
add_staff_commands(cli)  # the staff desk (issue 12)


def main() -> None:
    cli()
