"""The embedded PostGIS cluster: a project-local PostgreSQL under ``var/``.

When ``DATABASE_URL`` is unset the app runs its own cluster, made with ``initdb``
and driven with ``pg_ctl``. It listens only on a Unix socket inside ``var/`` (no
TCP port, so several checkouts can run side by side), runs as an unprivileged
user when invoked as root (PostgreSQL refuses to run as root), and keeps the
settings that make an acknowledged commit durable (``fsync``,
``synchronous_commit``).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DB_USER = "gridcase"
PORT = 5432  # only names the socket file; the cluster opens no TCP port


# postgresql.auto.conf of a new cluster. Durable commits (fsync, synchronous_commit,
# full_page_writes) are never traded for speed. wal_level = minimal: the embedded
# cluster streams to no replica and is backed up with pg_dump, so its WAL only has to
# survive a crash; at this level a table created or truncated in the same transaction
# is written without WAL and synced at commit, which halves the cost of a bulk load
# into an empty table (BENCHMARKS.md). A server that needs replicas or point-in-time
# recovery is an external one (DATABASE_URL) with its own settings.
SETTINGS: dict[str, str] = {
    "listen_addresses": "''",
    "port": str(PORT),
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "200",
    "shared_buffers": "'512MB'",
    "work_mem": "'32MB'",
    "maintenance_work_mem": "'256MB'",
    "effective_cache_size": "'4GB'",
    "max_wal_size": "'4GB'",
    "random_page_cost": "1.1",
    "jit": "off",
    "timezone": "'Asia/Shanghai'",
    "log_timezone": "'Asia/Shanghai'",
}


class ClusterError(RuntimeError):
    """The embedded cluster cannot be set up; the message says what to do."""


def project_var_dir() -> Path:
    """Return the directory that holds the embedded cluster and other run-time state.

    ``GRIDCASE_VAR_DIR`` wins; otherwise ``var/`` beside ``pyproject.toml`` when the
    package runs from a checkout (editable install), else ``./var``.
    """
    env = os.environ.get("GRIDCASE_VAR_DIR")
    if env:
        return Path(env).resolve()
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").exists():
        return root / "var"
    return Path.cwd() / "var"


def find_bindir() -> Path:
    """Find the bin directory of a PostgreSQL that has PostGIS installed.

    ``GRIDCASE_PG_BINDIR`` wins. Otherwise the newest ``/usr/lib/postgresql/N/bin``
    whose share directory holds ``postgis.control`` (Debian's layout).
    """
    env = os.environ.get("GRIDCASE_PG_BINDIR")
    if env:
        return Path(env)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bindir in candidates:
        version = bindir.parent.name
        control = Path("/usr/share/postgresql") / version / "extension" / "postgis.control"
        library = bindir.parent / "lib" / "postgis-3.so"
        if control.exists() and library.exists():
            return bindir
    if candidates:
        raise ClusterError(
            "找到了 PostgreSQL，但没有安装 PostGIS。"
            " PostgreSQL is installed but PostGIS is not: install Debian's"
            f" postgresql-{candidates[0].parent.name}-postgis-3, or set DATABASE_URL."
        )
    raise ClusterError(
        "没有找到 PostgreSQL。 PostgreSQL is not installed: install Debian's"
        " postgresql-15-postgis-3 (run `make setup` as root), or set DATABASE_URL"
        " to a PostgreSQL 15 + PostGIS 3 server."
    )


@dataclass
class EmbeddedCluster:
    """A PostgreSQL cluster living in ``var_dir``."""

    var_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.var_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.var_dir / "pgsock"

    @property
    def log_file(self) -> Path:
        return self.var_dir / "log" / "postgres.log"

    def url(self, dbname: str = "gridcase") -> str:
        """Return the SQLAlchemy URL of database ``dbname`` on this cluster."""
        return f"postgresql+psycopg2://{DB_USER}@/{dbname}?host={self.socket_dir}&port={PORT}"

    # -- process management -------------------------------------------------

    def _run_as(self) -> str | None:
        """Return the user to run PostgreSQL as, or None to run as ourselves."""
        if os.geteuid() != 0:
            return None
        name = os.environ.get("GRIDCASE_PG_OS_USER", "postgres")
        try:
            pwd.getpwnam(name)
        except KeyError as exc:
            raise ClusterError(
                f"以 root 运行时需要系统用户 {name} 来运行 PostgreSQL。"
                f" Running as root needs the OS user {name!r} to run PostgreSQL"
                " (Debian's postgresql package creates it); set GRIDCASE_PG_OS_USER."
            ) from exc
        return name

    def _cmd(self, *args: str | Path) -> list[str]:
        user = self._run_as()
        cmd = [str(a) for a in args]
        if user:
            return ["runuser", "-u", user, "--", *cmd]
        return cmd

    def _check(self, *args: str | Path, quiet: bool = False) -> subprocess.CompletedProcess:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True)
        if proc.returncode != 0 and not quiet:
            raise ClusterError(
                f"命令失败 (command failed): {' '.join(map(str, args))}\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def _prepare_dirs(self) -> None:
        for d in (self.var_dir, self.data_dir, self.socket_dir, self.log_file.parent):
            d.mkdir(parents=True, exist_ok=True)
        user = self._run_as()
        if not user:
            return
        entry = pwd.getpwnam(user)
        for d in (self.data_dir, self.socket_dir, self.log_file.parent):
            os.chown(d, entry.pw_uid, entry.pw_gid)
            os.chmod(d, 0o700)
        # The server user must be able to traverse to var/ (a mktemp checkout is 0700).
        for parent in [self.var_dir, *self.var_dir.parents]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def initialize(self) -> None:
        """Run initdb with UTF-8, local-socket trust for the owner, and durable settings."""
        bindir = find_bindir()
        self._prepare_dirs()
        self._check(
            bindir / "initdb",
            "-D",
            self.data_dir,
            "-U",
            DB_USER,
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--lc-collate=C",  # code point order, compared fast (db.create_database_sql)
            "--auth-local=trust",
            "--auth-host=reject",
        )
        self._write_settings(
            {
                "unix_socket_directories": f"'{self.socket_dir}'",
                "unix_socket_permissions": "0700",
                **SETTINGS,
            }
        )

    def _write_settings(self, settings: dict[str, str]) -> None:
        conf = self.data_dir / "postgresql.auto.conf"
        text = "".join(f"{k} = {v}\n" for k, v in settings.items())
        user = self._run_as()
        with open(conf, "a", encoding="utf-8") as fh:
            fh.write(text)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(conf, entry.pw_uid, entry.pw_gid)

    def _add_missing_settings(self) -> None:
        """Give a cluster made by an older version the settings added since (before a start)."""
        conf = self.data_dir / "postgresql.auto.conf"
        try:
            present = {
                line.split("=", 1)[0].strip()
                for line in conf.read_text(encoding="utf-8").splitlines()
                if "=" in line and not line.lstrip().startswith("#")
            }
        except OSError:
            return
        missing = {k: v for k, v in SETTINGS.items() if k not in present}
        if missing:
            self._write_settings(missing)

    def is_running(self) -> bool:
        if not self.is_initialized():
            return False
        proc = self._check(find_bindir() / "pg_ctl", "status", "-D", self.data_dir, quiet=True)
        return proc.returncode == 0

    def start(self, timeout: float = 60) -> bool:
        """Start the cluster (initializing it first if needed); return True if we started it."""
        with self._lock():
            if not self.is_initialized():
                self.initialize()
            if self.is_running():
                return False
            self._prepare_dirs()
            self._add_missing_settings()
            stale = self.socket_dir / f".s.PGSQL.{PORT}.lock"
            if stale.exists() and not (self.data_dir / "postmaster.pid").exists():
                stale.unlink()
            self._check(
                find_bindir() / "pg_ctl",
                "start",
                "-w",
                "-t",
                str(int(timeout)),
                "-D",
                self.data_dir,
                "-l",
                self.log_file,
            )
            self._wait_ready(timeout)
            return True

    def _wait_ready(self, timeout: float) -> None:
        isready = find_bindir() / "pg_isready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = subprocess.run(
                [str(isready), "-h", str(self.socket_dir), "-p", str(PORT), "-U", DB_USER],
                capture_output=True,
            )
            if proc.returncode == 0:
                return
            time.sleep(0.2)
        raise ClusterError(f"PostgreSQL 未能启动，见日志 (did not start; see {self.log_file})")

    def stop(self, mode: str = "fast") -> bool:
        """Stop the cluster cleanly; return True if it was running."""
        with self._lock():
            if not self.is_running():
                return False
            self._check(find_bindir() / "pg_ctl", "stop", "-w", "-m", mode, "-D", self.data_dir)
            return True

    def postmaster_pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            return int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        with open(self.var_dir / "pgcluster.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def remove(self) -> None:
        """Stop the cluster and delete its data (used by tests of the set-up only)."""
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)
