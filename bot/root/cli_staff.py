"""`klachtwijzer staff invite`: an account for the staff desk (issue 12), with a one-time link."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.root.app import App
from bot.root.cli_register import _register_run
from bot.services.organisation import Organisation

staff_cli = typer.Typer(help="Accounts of the staff desk: invite.", no_args_is_help=True)


@staff_cli.command("invite")
def staff_invite(
    email: Annotated[str, typer.Argument(help="the person's work e-mail address")],
    role: Annotated[str, typer.Option(help="secretary, confidant, coordinator or administrator")],
    organisation: Annotated[str | None, typer.Option(
        "--organisation", "-o", help="the organisation's slug (see check-config); needed when "
                                     "the deployment serves several")] = None,
    mail: Annotated[bool, typer.Option("--mail", help="also mail the link to the person (needs "
                                                      "SMTP_HOST and DESK_PUBLIC_URL)")] = False,
    language: Annotated[str, typer.Option(help="the person's language in the desk and the mail: "
                                               "nl, en, uk, ar")] = "nl",
) -> None:
    """Create a desk account and print a one-time link (valid 72 hours) to set a password and the
    second factor. Give the link to the person in a safe way, or add --mail."""
    from bot.desk import DeskError
    from bot.desk.accounts import invite_account, invite_and_mail

    async def work(app: App, chosen: Organisation) -> None:
        en = app.catalogs.get("en")
        try:
            if mail:
                invitation = await invite_and_mail(app, app.desk_config, email, role, chosen.slug,
                                                   language=language)
                link = invitation.link
            else:
                link = await invite_account(app, app.desk_config, email, role, chosen.slug,
                                            language=language)
        except DeskError as exc:
            typer.echo(f"error: {en._(exc.message)}", err=True)
            raise typer.Exit(1) from None
        typer.echo(link)
        if mail and invitation.mailed_to:
            typer.echo(f"The link is in the outbox for {invitation.mailed_to}; "
                       "`klachtwijzer run` sends it.")
        elif mail and invitation.not_mailed:
            typer.echo(f"not mailed: {en._(invitation.not_mailed)}", err=True)

    _register_run(work, organisation)


def add_staff_commands(cli: typer.Typer) -> None:
    cli.add_typer(staff_cli, name="staff")
