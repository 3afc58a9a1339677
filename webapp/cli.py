"""``flask db ...``: the embedded cluster and migrations."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from webapp.db import create_database, database
from webapp.pgcluster import ClusterError, EmbeddedCluster

db_cli = AppGroup("db", help="数据库 (the database: embedded cluster and migrations).")


def _cluster() -> EmbeddedCluster:
    return EmbeddedCluster(Path(current_app.config["VAR_DIR"]))


def _require_embedded(action: str) -> None:
    if not current_app.config["EMBEDDED_DB"]:
        click.echo(
            f"已设置 DATABASE_URL，不管理内置数据库（{action} skipped: DATABASE_URL is set）"
        )
        sys.exit(0)


@db_cli.command("start")
def start_command():
    """Start the embedded PostGIS cluster under var/ (initialising it on first use)."""
    _require_embedded("start")
    try:
        started = _cluster().start()
    except ClusterError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo("内置数据库已启动" if started else "内置数据库已在运行")


@db_cli.command("stop")
def stop_command():
    """Stop the embedded cluster cleanly."""
    _require_embedded("stop")
    try:
        stopped = _cluster().stop()
    except ClusterError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo("内置数据库已停止" if stopped else "内置数据库未在运行")


@db_cli.command("status")
def status_command():
    """Say where the database is and whether it answers."""
    cfg = current_app.config
    if cfg["EMBEDDED_DB"]:
        cluster = _cluster()
        click.echo(
            f"内置数据库：{cluster.data_dir}（{'运行中' if cluster.is_running() else '未运行'}）"
        )
    else:
        click.echo("外部数据库：DATABASE_URL")


@db_cli.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def upgrade_command(revision):
    """Create the database if needed and migrate it to the newest schema."""
    from webapp.migrate import upgrade

    db = database()
    try:
        if current_app.config["EMBEDDED_DB"]:
            _cluster().start()
            create_database(db.url)
        upgrade(db.engine, revision)
    except ClusterError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo("数据库结构已是最新 (migrated to head)")


@db_cli.command("url")
def url_command():
    """Print the database URL (for psql: use `flask db psql`)."""
    click.echo(current_app.config["DATABASE_URL"])


@db_cli.command("psql", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def psql_command(args):
    """Open psql on the database."""
    import os

    from sqlalchemy.engine import make_url

    u = make_url(current_app.config["DATABASE_URL"])
    cmd = ["psql", "-d", u.database or "postgres"]
    if u.username:
        cmd += ["-U", u.username]
    host = u.host or u.query.get("host")
    if host:
        cmd += ["-h", str(host)]
    port = u.port or u.query.get("port")
    if port:
        cmd += ["-p", str(port)]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    os.execvpe("psql", [*cmd, *args], env)


@db_cli.command("backup")
@click.argument("file", type=click.Path(dir_okay=False))
def backup_command(file):
    """Back up the whole database to FILE (pg_dump custom format)."""
    from webapp.backup import backup

    db = database()
    try:
        db.ensure_ready()
        path = backup(db.url, Path(file))
    except ClusterError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"已备份到 {path}（{path.stat().st_size:,} 字节）")


@db_cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True, help="不再确认")
def restore_command(file, yes):
    """Restore FILE into the database, replacing its contents."""
    from webapp.backup import restore

    if not yes and not click.confirm("恢复将覆盖当前数据库中的全部数据，继续吗？"):
        sys.exit(1)
    db = database()
    try:
        if current_app.config["EMBEDDED_DB"]:
            _cluster().start()
            create_database(db.url)
        db.engine.dispose()
        restore(db.url, Path(file))
    except ClusterError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"已从 {file} 恢复")


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
