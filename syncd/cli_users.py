"""``syncd users`` and ``syncd tokens``: accounts of the admin web app and its API.

Every change is recorded in the audit table with the operating-system user who
ran the command (``cli:<user>``); an unknown name exits 2.
"""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Callable
from typing import Any

import click

from syncd.models import ROLES

EXIT_CONFIG = 2


def _state():  # type: ignore[no-untyped-def]
    from syncd import create_app, get_state

    return get_state(create_app())


def cli_actor() -> str:
    """Who runs this command, for the audit table: ``cli:<operating-system user>``."""
    try:
        return f"cli:{pwd.getpwuid(os.geteuid()).pw_name}"
    except KeyError:
        return f"cli:uid {os.geteuid()}"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _account_change(change: Callable[[], Any]) -> Any:
    """Run ``change``; an AccountError is printed and exits 2."""
    from syncd.web.accounts import AccountError

    try:
        return change()
    except AccountError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


@click.group()
def users() -> None:
    """Users of the admin web app (viewer reads, operator also acts)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="operator or viewer")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_add(name: str, role: str, password_stdin: bool) -> None:
    """Create a web user; asks for the password (or reads it from standard input)."""
    from syncd.web.accounts import create_user

    state = _state()
    password = _password(password_stdin)
    _account_change(lambda: create_user(state, name, password, role, actor=cli_actor()))
    click.echo(f'user "{name.strip()}" created ({role})')


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_passwd(name: str, password_stdin: bool) -> None:
    """Set a web user's password (ends the user's open sessions)."""
    from syncd.web.accounts import set_password

    state = _state()
    password = _password(password_stdin)
    _account_change(lambda: set_password(state, name, password, actor=cli_actor()))
    click.echo(f'password of "{name}" changed; its open sessions are ended')


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
def users_role(name: str, role: str) -> None:
    """Make a web user an operator or a viewer (takes effect on its next request)."""
    from syncd.web.accounts import set_role

    before = _account_change(lambda: set_role(_state(), name, role, cli_actor()))
    click.echo(f'user "{name}" is now {role}' + (f" (was {before})" if before != role else ""))


@users.command("delete")
@click.argument("name")
def users_delete(name: str) -> None:
    """Delete a web user (its open sessions end at once)."""
    from syncd.web.accounts import delete_user

    _account_change(lambda: delete_user(_state(), name, cli_actor()))
    click.echo(f'user "{name}" deleted')


@users.command("list")
def users_list() -> None:
    """List web users and their roles."""
    from syncd.web.accounts import list_users

    rows = list_users(_state())
    if not rows:
        click.echo("no users")
    for user in rows:
        created = f"{user.created_at:%Y-%m-%d %H:%M}Z" if user.created_at else ""
        click.echo(f"{user.username:<24} {user.role:<9} created {created}"
                   f"{'' if user.active else '  inactive'}")


@click.group()
def tokens() -> None:
    """Bearer tokens of the JSON API (names are unique)."""


@tokens.command("add")
@click.argument("name")
def tokens_add(name: str) -> None:
    """Create an API token; prints it once, alone on the last line (only its hash is kept)."""
    from syncd.web.accounts import create_token

    token = _account_change(lambda: create_token(_state(), name, actor=cli_actor()))
    click.echo(f'API token "{name.strip()}" created; it is shown only now:', err=True)
    click.echo(token)


@tokens.command("list")
def tokens_list() -> None:
    """List API tokens: name, created, last used (never the tokens themselves)."""
    from syncd.web.accounts import list_tokens

    rows = list_tokens(_state())
    if not rows:
        click.echo("no API tokens")
    for token in rows:
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}Z" if token.last_used_at else "never"
        click.echo(f"{token.name:<24} created {token.created_at:%Y-%m-%d %H:%M}Z  "
                   f"last used {used}{'  revoked' if token.revoked else ''}")


@tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke an API token: requests that use it get 401 from now on."""
    from syncd.web.accounts import revoke_token

    _account_change(lambda: revoke_token(_state(), name, cli_actor()))
    click.echo(f'API token "{name}" revoked')
