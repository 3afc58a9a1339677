"""Workload 2: field reports under load, the app under gunicorn on the embedded database.

Grid workers sign in through the login form (session cookie + CSRF token, as the
phone does) and post reports (``POST /api/v1/field/reports``) with fresh client ids
at points of their own grids, from 1 and from 20 concurrent clients for a fixed time;
beside them the same server answers ``/healthz`` (one database round trip) to the
same generator: the baseline.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from sqlalchemy import text

from bench import loadgen, wrkgen
from bench.common import BENCH_SECRET, ROOT, app_for
from webapp.db import database

PASSWORD = "bench-password-2026"
# gunicorn's worker class, workers and threads, as `make run` serves the app.
SERVER = "balanced:2:4"  # as `make run` serves
# Worker classes by the names --field-server takes.
WORKER_CLASSES = {
    "sync": "sync",
    "gthread": "gthread",
    "balanced": "webapp.serving.BalancedThreadWorker",
}
# The target's load: 300 reports a second from 20 clients, p95 under 50 ms. A closed loop
# cannot measure that (its 20 clients at 300/s wait 67 ms on average by Little's law), so
# that latency is measured with the clients paced at this rate.
RATE = 300.0
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def make_workers(url: str, n: int) -> list[dict]:
    """``n`` grid workers on ``n`` different grids (created once), with a point in each grid."""
    from webapp.auth.accounts import create_user, get_user

    app = app_for(url)
    out = []
    with app.app_context():
        session = database(app).sessions()
        grids = session.execute(
            text(
                "SELECT code, ST_X(label_point), ST_Y(label_point) FROM areas "
                "WHERE level = 'grid' ORDER BY code LIMIT :n"
            ),
            {"n": n},
        ).all()
        for i, (code, lon, lat) in enumerate(grids):
            name = f"bench_worker_{i:02d}"
            if get_user(session, name) is None:
                create_user(
                    session, name, "grid_worker", code, PASSWORD, display_name=f"网格员{i:02d}"
                )
            out.append({"username": name, "grid": code, "lon": lon, "lat": lat})
        category = session.execute(
            text("SELECT id FROM categories WHERE active ORDER BY sort_order, id LIMIT 1")
        ).scalar_one()
        session.commit()
        session.close()
        database(app).engine.dispose()
    for w in out:
        w["category_id"] = category
    return out


class Server:
    """gunicorn serving the app on a loopback port, against one bench database."""

    def __init__(
        self,
        db_name: str,
        workers: int,
        threads: int,
        log_dir: Path,
        url: str,
        worker_class: str = "gthread",
    ) -> None:
        self.worker_class = worker_class
        self.port = _free_port()
        self.db_name = db_name
        self.url = url
        self.workers = workers
        self.threads = threads
        self.log = log_dir / f"gunicorn-{db_name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        return [
            str(Path(sys.executable).parent / "gunicorn"),
            "--workers",
            str(self.workers),
            "--worker-class",
            WORKER_CLASSES[self.worker_class],
            "--threads",
            str(self.threads),
            "--bind",
            f"{HOST}:{self.port}",
            "--backlog",
            "256",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
            "webapp:create_app()",
        ]

    def __enter__(self) -> Server:
        env = dict(os.environ)
        # GRIDCASE_BENCH_APP_ROOT: serve another checkout's app (an earlier commit, for a
        # before/after comparison on the same data and generator); it reaches this
        # cluster's database by URL.
        root = Path(env.get("GRIDCASE_BENCH_APP_ROOT") or ROOT)
        if env.get("DATABASE_URL") or root != ROOT:  # the bench database lives on that server
            env["DATABASE_URL"] = self.url
        else:  # the embedded cluster, as `make run` serves it
            env["GRIDCASE_DB_NAME"] = self.db_name
        env.update(
            GRIDCASE_SECRET_KEY=BENCH_SECRET,
            GRIDCASE_ENV="production",
            GRIDCASE_AUTO_MIGRATE="0",
        )
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                self.command,
                cwd=root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
            if self.proc.poll() is not None:
                break
        self.__exit__(None, None, None)
        raise RuntimeError(f"gunicorn did not start; see {self.log}")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _report_request(worker_of: dict):
    def make(s: loadgen.Session, i: int):
        w = worker_of[s.username]
        body = json.dumps(
            {
                "client_id": str(uuid.uuid4()),
                "category_id": w["category_id"],
                "description": f"现场发现纠纷，需要协调处理（压测 {i}）",
                "people_count": 2,
                "lon": w["lon"],
                "lat": w["lat"],
                "accuracy_m": 8.0,
            }
        ).encode()
        return (
            "POST",
            "/api/v1/field/reports",
            body,
            {"Content-Type": "application/json", "X-CSRF-Token": s.csrf},
        )

    return make


def _healthz(s: loadgen.Session, i: int):
    return ("GET", "/healthz", None, {})


def _report_scenario(worker_of: dict):
    def make(s: loadgen.Session) -> wrkgen.Scenario:
        w = worker_of[s.username]
        body = json.dumps(
            {
                "client_id": "{client_id}",
                "category_id": w["category_id"],
                "description": "现场发现纠纷，需要协调处理（压测 {i}）",
                "people_count": 2,
                "lon": w["lon"],
                "lat": w["lat"],
                "accuracy_m": 8.0,
            },
            ensure_ascii=False,
        )
        return wrkgen.Scenario("POST", "/api/v1/field/reports", body)

    return make


def _healthz_scenario(s: loadgen.Session) -> wrkgen.Scenario:
    return wrkgen.Scenario("GET", "/healthz")


def field_reports(
    url: str,
    db_name: str,
    seconds: float,
    concurrency: int,
    log,
    log_dir: Path,
    server: str = SERVER,
    generator: str = "auto",
    rate: float = RATE,
) -> dict:
    """Run the four closed-loop scenarios (healthz and reports, 1 and ``concurrency``
    clients), then ``concurrency`` clients posting reports paced at ``rate`` a second.

    ``server`` is gunicorn's worker class, workers and threads (``gthread:2:4``,
    ``sync:3``); ``generator`` is ``wrk``, ``python`` (bench/loadgen.py) or ``auto``
    (wrk if installed). The paced scenario needs wrk (the Python generator has no pacing:
    it is left out there, and the report says so).
    """
    if generator == "auto":
        generator = "wrk" if wrkgen.available() else "python"
    worker_class, workers, threads = parse_server(server)
    people = make_workers(url, concurrency)
    worker_of = {p["username"]: p for p in people}
    out: dict = {
        "server": {"workers": workers, "threads": threads, "worker_class": worker_class},
        "generator": generator,
    }
    engine_count = _count_reports(url)
    with Server(db_name, workers, threads, log_dir, url, worker_class) as srv:
        out["server"]["command"] = " ".join(srv.command[1:])
        sessions = [loadgen.sign_in(HOST, srv.port, p["username"], PASSWORD) for p in people]
        scenarios = [
            ("healthz_1", 1, _healthz, _healthz_scenario, None),
            ("reports_1", 1, _report_request(worker_of), _report_scenario(worker_of), None),
            (f"healthz_{concurrency}", concurrency, _healthz, _healthz_scenario, None),
            (
                f"reports_{concurrency}",
                concurrency,
                _report_request(worker_of),
                _report_scenario(worker_of),
                None,
            ),
        ]
        if generator == "wrk":
            scenarios.append(
                (
                    f"paced_{concurrency}",
                    concurrency,
                    _report_request(worker_of),
                    _report_scenario(worker_of),
                    rate,
                )
            )
        for name, clients, make, scenario, pace in scenarios:
            if generator == "wrk":
                res = wrkgen.run(
                    HOST,
                    srv.port,
                    sessions[:clients],
                    scenario,
                    seconds,
                    server_pids=wrkgen.process_tree(srv.proc.pid),
                    rate=pace,
                )
            else:
                res = loadgen.run(HOST, srv.port, sessions[:clients], make, seconds).to_dict()
            out[name] = res
            cpu = res.get("cpu")
            log(
                f"  {name:12s} {res['throughput_per_s']:7.1f}/s  p50 {res['p50_ms']:6.1f} ms  "
                f"p95 {res['p95_ms']:6.1f} ms  p99 {res['p99_ms']:6.1f} ms  failed {res['failed']}"
                + (
                    f"  cpu: wrk {cpu['generator_cores']:.2f} app {cpu['app_cores']:.2f} "
                    f"pg {cpu['postgres_cores']:.2f} machine {cpu['machine_busy_cores']:.2f} cores"
                    if cpu
                    else ""
                )
            )
    out["reports_stored"] = _count_reports(url) - engine_count
    return out


def parse_server(spec: str) -> tuple[str, int, int]:
    """``gthread:2:4`` → ("gthread", 2, 4); ``sync:3`` → ("sync", 3, 1).

    ``balanced`` is gthread taking new connections in turn across workers (webapp/serving.py).
    """
    parts = spec.split(":")
    worker_class = parts[0]
    workers = int(parts[1]) if len(parts) > 1 else 2
    threads = int(parts[2]) if len(parts) > 2 else 1
    if worker_class not in WORKER_CLASSES:
        raise ValueError(f"unknown gunicorn worker class {worker_class!r}")
    return worker_class, workers, threads


def _count_reports(url: str) -> int:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(*) FROM cases WHERE reporter_id IN "
                "(SELECT id FROM users WHERE username LIKE 'bench_worker_%')"
            )
        ).scalar_one()
    engine.dispose()
    return n
