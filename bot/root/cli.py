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
    unconfigured_organisations,
)
from bot.root.cli_register import add_register_commands
from bot.root.cli_staff import add_staff_commands  # the staff desk (issue 12)
from bot.root.settings import Settings
from bot.services.organisation import ConfigError, Deployment, load_deployment, load_organisation
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


def placeholder_lines(config: Path | None, deployment: Deployment) -> list[str]:
    """A placeholder address or link the config must replace (002 names no mailbox or OKC page),
    one line each; the default procedure of a deployment without config has none."""
    return [f"KLACHTWIJZER_CONFIG {config}: organisation '{each.slug}': {found} is a placeholder; "
            "set the real one (docs/procedures.md)"
            for each in deployment.organisations for found in each.procedure.placeholders()]


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
    organisation: Annotated[str | None, typer.Option(
        "--organisation", "-o", help="an organisation's slug, as a link names it (with several)")] = None,
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
                organisation=organisation, after_event=app.worker.run_once,
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
        placeholders = placeholder_lines(settings.config, app.deployment)
        if placeholders:  # complaints would go to an address nobody reads: refuse to start
            await app.close()
            raise ConfigError("\n".join(placeholders))
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
    deployment: Deployment | None = None
    try:
        deployment = load_deployment(settings.config)
        catalogs = load_catalogs()
        for each in deployment.organisations:
            Engine(each.procedure, catalogs, organisation=each.name)
        problems += placeholder_lines(settings.config, deployment)
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
    assert deployment is not None  # noqa: S101 - no problems means the organisations loaded
    for org in deployment.organisations:
        slug = f" (slug {org.slug})" if deployment.several else ""
        typer.echo(f"organisation: {org.name}{slug}")
        typer.echo(f"procedure:    {org.procedure.id} ({len(org.procedure.schemas)} schemas)")
        for name, address in org.mailboxes.items():
            key = org.mailbox_keys.get(address.lower())
            encrypted = f" (OpenPGP {key.fingerprint[-16:]})" if key else ""
            typer.echo(f"mailbox:      {name} = {address}{encrypted}")
    typer.echo(f"fallback:     {settings.fallback_mail or 'none (KLACHTWIJZER_FALLBACK_MAIL)'}")
    everyone = deployment.organisations
    staff = (f"{sum(len(o.confidants) for o in everyone)} confidants, "
             f"{sum(len(o.coordinators) for o in everyone)} coordinators on Telegram, "
             f"{sum(len(o.coordinator_numbers) for o in everyone)} on WhatsApp")
    org = deployment.default
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
    for line in asyncio.run(unconfigured_organisations(settings, deployment)):
        typer.echo(f"warning: {line}", err=True)
    typer.echo("ok")


@cli.command()
def links(
    telegram_bot: Annotated[str | None, typer.Option(
        "--telegram-bot", help="the bot's username, e.g. KlachtwijzerBot")] = None,
    whatsapp_number: Annotated[str | None, typer.Option(
        "--whatsapp-number", help="the organisation's WhatsApp number, e.g. +31 6 1234 5678")] = None,
) -> None:
    """Print, per organisation, the links that open the chat with it chosen (for leaflets, QR
    codes and websites): a Telegram deep link and a WhatsApp link with a prefilled text."""
    from urllib.parse import quote

    settings = _settings()
    try:
        deployment = load_deployment(settings.config)
    except (ConfigError, ProcedureError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    number = "".join(ch for ch in (whatsapp_number or "") if ch.isdigit())
    if whatsapp_number is not None and not 8 <= len(number) <= 15:
        typer.echo("error: --whatsapp-number must be a phone number in international form, "
                   "e.g. +31 6 1234 5678", err=True)
        raise typer.Exit(2)
    if telegram_bot is None and not number:
        typer.echo("Give --telegram-bot and/or --whatsapp-number.", err=True)
        raise typer.Exit(2)
    for org in deployment.organisations:
        typer.echo(f"{org.name} ({org.slug})")
        if telegram_bot:
            bot = telegram_bot.removeprefix("@")
            typer.echo(f"  Telegram: https://t.me/{bot}?start={org.slug}")
        if number:
            text = quote(f"Klachtwijzer #{org.slug}")
            typer.echo(f"  WhatsApp: https://wa.me/{number}?text={text}")


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
