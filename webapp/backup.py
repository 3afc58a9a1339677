"""Backups of the database with pg_dump / pg_restore (custom format, all of it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from webapp.pgcluster import ClusterError, find_bindir


def _tool(name: str) -> str:
    try:
        candidate = find_bindir() / name
        if candidate.exists():
            return str(candidate)
    except ClusterError:
        pass
    found = shutil.which(name)
    if not found:
        raise ClusterError(f"找不到 {name}（需要 PostgreSQL 客户端工具 postgresql-client-15）")
    return found


def _conn_args(url: str) -> tuple[list[str], dict[str, str]]:
    u = make_url(url)
    args = ["-d", u.database or "postgres"]
    host = u.host or u.query.get("host")
    if host:
        args += ["-h", str(host)]
    port = u.port or u.query.get("port")
    if port:
        args += ["-p", str(port)]
    if u.username:
        args += ["-U", u.username]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    return args, env


def backup(url: str, path: Path) -> Path:
    """Dump the whole database at ``url`` to ``path`` (pg_dump custom format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args, env = _conn_args(url)
    tmp = path.with_suffix(path.suffix + ".partial")
    proc = subprocess.run(
        [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(tmp), *args],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ClusterError(f"pg_dump 失败：{proc.stderr.strip()}")
    tmp.replace(path)  # a backup file is complete or absent, never half-written
    return path


def restore(url: str, path: Path) -> None:
    """Restore ``path`` into the database at ``url``, replacing what is there."""
    if not path.exists():
        raise ClusterError(f"备份文件不存在：{path}")
    args, env = _conn_args(url)
    proc = subprocess.run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            *args,
            str(path),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise ClusterError(f"pg_restore 失败：{proc.stderr.strip()}")
