"""A stack of our own for the fault and load tests: an embedded cluster and gunicorn.

The cluster lives in a temporary directory (so killing its postmaster harms no other
test), is migrated and loaded with the demo boundaries, and gunicorn serves the app on
a loopback port with several workers and threads, as in production. Reports are posted
with bearer tokens of grid workers made before the server starts.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from webapp import create_app
from webapp.db import create_database, database
from webapp.migrate import upgrade
from webapp.pgcluster import EmbeddedCluster

GUNICORN = Path(sys.executable).with_name("gunicorn")
REPORTERS = 8


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Adopt our orphaned descendants (a killed postmaster) so that we can reap them.

    A postmaster killed with SIGKILL stays a zombie until its parent reaps it, and a
    zombie's pid still "exists": pg_ctl and the next postmaster would think it runs.
    On a real machine init reaps it; in a container whose PID 1 does not, the test
    plays init for the cluster it started.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("cannot become a child subreaper to reap a killed postmaster")


def reap_zombies(keep: set[int]) -> int:
    """Reap the exited PostgreSQL processes we adopted (never another Popen's child, nor ``keep``)."""
    reaped = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in keep:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state == "Z" and int(ppid) == os.getpid() and comm.startswith("postgres"):
            try:
                os.waitpid(int(entry.name), os.WNOHANG)
                reaped += 1
            except ChildProcessError:
                pass
    return reaped


def _processes() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process we can see."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        out.append((int(entry.name), int(stat.rsplit(")", 1)[1].split()[1])))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reporter:
    username: str
    token: str
    grid_code: str
    lon: float
    lat: float


@dataclass
class Stack:
    """The cluster, the database URL, gunicorn's base URL and the accounts that report."""

    cluster: EmbeddedCluster
    db_url: str
    base_url: str
    reporters: list[Reporter]
    category_id: int
    log: Path
    env: dict[str, str] = field(repr=False)
    port: int
    server: subprocess.Popen | None = field(default=None, repr=False)

    def payload(self, reporter: Reporter, client_id: uuid.UUID, n: int) -> dict:
        # Spread the points a little inside the grid (its label point is inside it).
        return {
            "client_id": str(client_id),
            "category_id": self.category_id,
            "description": f"负载与故障测试上报 {n}：两户因排水沟发生争执。",
            "people_count": 2,
            "lon": reporter.lon,
            "lat": reporter.lat,
            "accuracy_m": 10.0,
        }

    def post_report(
        self, reporter: Reporter, body: dict, timeout: float = 10
    ) -> tuple[int, dict | None]:
        """POST one report; (status, JSON body) or (0, None) when the connection failed."""
        request = urllib.request.Request(
            f"{self.base_url}/api/v1/field/reports",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {reporter.token}",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, {"raw": raw[:500].decode("utf-8", "replace")}
        except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException):
            return 0, None  # no connection, or it broke before a whole answer came

    def get(self, path: str, timeout: float = 10) -> int:
        try:
            with urllib.request.urlopen(f"{self.base_url}{path}", timeout=timeout) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException):
            return 0

    def start_app(self, timeout: float = 30) -> None:
        """Start gunicorn (2 workers x 4 threads, as in production) and wait until it answers."""
        with open(self.log, "ab") as out:
            self.server = subprocess.Popen(
                [
                    str(GUNICORN),
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--worker-class",
                    "webapp.serving.BalancedThreadWorker",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--timeout",
                    "30",
                    "--graceful-timeout",
                    "5",
                    "webapp:create_app()",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=Path(__file__).resolve().parent.parent,
            )
        deadline = time.monotonic() + timeout
        while self.get("/healthz", timeout=2) != 200:
            if self.server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("gunicorn did not come up:\n" + self.log_tail())
            time.sleep(0.2)

    def app_pids(self) -> list[int]:
        """The gunicorn master and its workers."""
        assert self.server is not None
        master = self.server.pid
        return [master] + [pid for pid, ppid in _processes() if ppid == master]

    def kill_app(self) -> int:
        """``kill -9`` the gunicorn master and every worker at once, and reap them; return how many."""
        pids = self.app_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.server.wait()
        for pid in pids[1:]:  # orphaned workers are ours now (we are a subreaper): reap them
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass  # the master reaped it before it died
        assert not any(Path(f"/proc/{pid}").exists() for pid in pids), (
            "a gunicorn process survived kill -9"
        )
        return len(pids)

    def stop_app(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    def scalar(self, sql: str, **params):
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql), params).scalar()
        finally:
            engine.dispose()

    def rows(self, sql: str, **params) -> list:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql), params).all()
        finally:
            engine.dispose()

    def kill_postmaster(self) -> None:
        """``kill -9`` the PostgreSQL postmaster, and reap it as init would."""
        pid = self.cluster.postmaster_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    def restart_database(self, timeout: float = 30) -> None:
        """Start the cluster again (crash recovery) once the orphaned backends are gone."""
        deadline = time.monotonic() + timeout
        while True:
            reap_zombies({self.server.pid} if self.server else set())
            try:
                self.cluster.start()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def _prepare_database(url: str) -> tuple[list[Reporter], int]:
    create_database(url)
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    app = create_app(
        {"DATABASE_URL": url, "EMBEDDED_DB": False, "AUTO_MIGRATE": False, "SECRET_KEY": "setup"}
    )
    with app.app_context():
        from webapp.auth.accounts import create_user, issue_token
        from webapp.demo import loader

        session = database(app).sessions()
        loader.load_boundaries(session)
        grids = session.execute(
            text(
                "SELECT code, ST_X(label_point), ST_Y(label_point) FROM areas WHERE level = 'grid' "
                "ORDER BY md5(code) LIMIT :n"
            ),
            {"n": REPORTERS},
        ).all()
        reporters = []
        for i, (code, lon, lat) in enumerate(grids):
            user = create_user(session, f"reporter{i}", "grid_worker", code, "reporter-password-1")
            reporters.append(
                Reporter(user.username, issue_token(session, user, "负载测试"), code, lon, lat)
            )
        category_id = session.execute(
            text("SELECT min(id) FROM categories WHERE active")
        ).scalar_one()
        session.commit()
        session.close()
    database(app).engine.dispose()
    return reporters, category_id


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A migrated cluster with the demo boundaries, served by gunicorn on loopback."""
    root = tmp_path_factory.mktemp("stack")
    become_subreaper()
    cluster = EmbeddedCluster(root / "var")
    cluster.start()
    s = None
    try:
        url = cluster.url("gridcase")
        reporters, category_id = _prepare_database(url)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "GRIDCASE_ENV": "production",
            "GRIDCASE_SECRET_KEY": "fault-and-load-test-secret",
            "GRIDCASE_VAR_DIR": str(root / "var"),
            "GRIDCASE_PHOTO_DIR": str(root / "photos"),
        }
        port = free_port()
        s = Stack(
            cluster,
            url,
            f"http://127.0.0.1:{port}",
            reporters,
            category_id,
            root / "gunicorn.log",
            env,
            port,
        )
        s.start_app()
        yield s
    finally:
        if s is not None:
            s.stop_app()
        cluster.stop("immediate")
