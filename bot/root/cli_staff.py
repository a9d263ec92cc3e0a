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
) -> None:
    """Create a desk account and print a one-time link (valid 72 hours) to set a password and the
    second factor. Give the link to the person in a safe way."""
    from bot.desk import DeskError, invite_account

    async def work(app: App, chosen: Organisation) -> None:
        try:
            link = await invite_account(app, app.desk_config, email, role, chosen.slug)
        except DeskError as exc:
            typer.echo(f"error: {app.catalogs.get('en')._(exc.message)}", err=True)
            raise typer.Exit(1) from None
        typer.echo(link)

    _register_run(work, organisation)


def add_staff_commands(cli: typer.Typer) -> None:
    cli.add_typer(staff_cli, name="staff")
