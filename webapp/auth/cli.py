"""``flask user ...``: accounts and API tokens."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from webapp.auth import accounts
from webapp.auth.roles import Role
from webapp.db import get_session
from webapp.errors import AppError
from webapp.security import unsafe_text

user_cli = AppGroup("user", help="用户与令牌 (accounts and API tokens).")


@user_cli.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--area", "area", required=True, help="辖区代码（网格、村、乡镇或县）")
@click.option("--password", help="不给则提示输入")
@click.option("--display-name", help="显示名（默认同用户名）")
@click.option("--unit", help="所在单位")
def create_command(name, role, area, password, display_name, unit):
    """Create an account NAME with a role and an area."""
    if password is None:
        password = click.prompt("密码", hide_input=True, confirmation_prompt=True)
    session = get_session()
    try:
        user = accounts.create_user(session, name, role, area, password, display_name, unit)
    except AppError as exc:
        session.rollback()
        click.echo(f"错误：{exc.message}", err=True)
        sys.exit(1)
    session.commit()
    click.echo(f"已创建用户 {user.username}（{Role(user.role).label}，辖区 {user.area_code}）")


@user_cli.command("token")
@click.argument("name")
@click.option("--label", default="", help="令牌用途说明")
def token_command(name, label):
    """Issue an API token for NAME (shown once; only its hash is stored)."""
    session = get_session()
    user = _user_named(session, name)
    token = accounts.issue_token(session, user, label)
    session.commit()
    click.echo(token)


@user_cli.command("password")
@click.argument("name")
@click.option("--password", help="不给则提示输入")
def password_command(name, password):
    """Set a new password for NAME (signs the account out everywhere)."""
    session = get_session()
    user = _user_named(session, name)
    if password is None:
        password = click.prompt("新密码", hide_input=True, confirmation_prompt=True)
    try:
        accounts.set_password(session, user, password)
    except AppError as exc:
        click.echo(f"错误：{exc.message}", err=True)
        sys.exit(1)
    session.commit()
    click.echo("密码已更新")


@user_cli.command("list")
def list_command():
    """List accounts."""
    from sqlalchemy import select

    from webapp.auth.models import User

    for u in get_session().scalars(select(User).order_by(User.username)):
        state = "" if u.active else "（已停用）"
        click.echo(f"{u.username}\t{Role(u.role).label}\t{u.area_code}\t{u.display_name}{state}")


def _user_named(session, name: str):
    """The account NAME, or exit 1 saying there is none (a name the terminal sent in
    another encoding than UTF-8 cannot be any account's, nor be looked up or printed)."""
    garbled = unsafe_text(name) is not None
    user = None if garbled else accounts.get_user(session, name)
    if user is None:
        click.echo(f"错误：用户 {ascii(name) if garbled else name} 不存在", err=True)
        sys.exit(1)
    return user


def init_app(app: Flask) -> None:
    app.cli.add_command(user_cli)
