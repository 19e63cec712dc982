"""``syncd users add`` and ``syncd tokens add``: accounts of the admin web app and its API."""

from __future__ import annotations

import sys

import click

from syncd.models import ROLES


def _state():  # type: ignore[no-untyped-def]
    from syncd import create_app, get_state

    return get_state(create_app())


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group()
def users() -> None:
    """Users of the admin web app (viewer reads, operator also acts)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="operator or viewer")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_add(name: str, role: str, password_stdin: bool) -> None:
    """Create a web user; asks for the password (or reads it from standard input)."""
    from syncd.web.accounts import AccountError, create_user

    state = _state()
    try:
        create_user(state, name, _password(password_stdin), role)
    except AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f'user "{name.strip()}" created ({role})')


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_passwd(name: str, password_stdin: bool) -> None:
    """Set a web user's password (ends the user's open sessions)."""
    from syncd.web.accounts import AccountError, set_password

    state = _state()
    try:
        set_password(state, name, _password(password_stdin))
    except AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f'password of "{name}" changed')


@users.command("list")
def users_list() -> None:
    """List web users and their roles."""
    from sqlalchemy import select

    from syncd.models import User

    with _state().sessions() as session:
        rows = list(session.scalars(select(User).order_by(User.username)))
    if not rows:
        click.echo("no users")
    for user in rows:
        click.echo(f"{user.username:<24} {user.role:<9} {'' if user.active else 'inactive'}")


@click.group()
def tokens() -> None:
    """Bearer tokens of the JSON API."""


@tokens.command("add")
@click.argument("name")
def tokens_add(name: str) -> None:
    """Create an API token; prints it once, alone on the last line (only its hash is kept)."""
    from syncd.web.accounts import AccountError, create_token

    try:
        token = create_token(_state(), name)
    except AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f'API token "{name.strip()}" created; it is shown only now:', err=True)
    click.echo(token)
