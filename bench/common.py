"""What every workload needs: bench databases on the embedded cluster, timing, the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from webapp.db import create_database_sql
from webapp.pgcluster import EmbeddedCluster, project_var_dir

ROOT = Path(__file__).resolve().parent.parent
BENCH_SECRET = "gridcase-bench-secret"  # bench databases only; never a deployment's


def server_url() -> str:
    """The URL of the server's maintenance database: ``DATABASE_URL``'s server or the embedded one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return str(make_url(url).set(drivername="postgresql+psycopg2", database="postgres"))
    cluster = EmbeddedCluster(project_var_dir())
    cluster.start()
    return cluster.url("postgres")


def db_url(name: str) -> str:
    return make_url(server_url()).set(database=name).render_as_string(hide_password=False)


def _admin() -> Engine:
    return create_engine(server_url(), isolation_level="AUTOCOMMIT")


def create_db(name: str, template: str | None = None) -> str:
    """(Re)create database ``name``, empty or as a copy of ``template``; return its URL."""
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if template:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            else:  # as the app makes its databases (collation C)
                conn.execute(text(create_database_sql(name)))
    finally:
        admin.dispose()
    return db_url(name)


def drop_db(name: str) -> None:
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def app_for(url: str):
    """The Flask app on a bench database (migrated by the caller; no auto-migration)."""
    from webapp import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "EMBEDDED_DB": False,
            "AUTO_MIGRATE": False,
            "SECRET_KEY": BENCH_SECRET,
            "ENV_NAME": "bench",
        }
    )


@dataclass
class Timing:
    """Repeated measurements of one thing, in seconds."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def worst(self) -> float:
        return max(self.samples)

    def percentile(self, p: float) -> float:
        return percentile(self.samples, p)

    def to_dict(self) -> dict:
        return {
            "n": len(self.samples),
            "median": self.median,
            "min": self.best,
            "max": self.worst,
            "samples": self.samples,
        }


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def repeat(fn: Callable[[], object], n: int, warmup: int = 1) -> Timing:
    """Run ``fn`` ``warmup`` times unmeasured, then ``n`` times measured."""
    for _ in range(warmup):
        fn()
    t = Timing()
    for _ in range(n):
        start = time.perf_counter()
        fn()
        t.samples.append(time.perf_counter() - start)
    return t


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start


def machine(url: str) -> dict:
    """CPU, cores, RAM, load, PostgreSQL and PostGIS versions, key settings, date."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            pg = conn.execute(text("SHOW server_version")).scalar_one()
            postgis = conn.execute(text("SELECT postgis_full_version()")).scalar_one()
            settings = dict(
                conn.execute(
                    text(
                        "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                        "('shared_buffers', 'work_mem', 'maintenance_work_mem', 'wal_level', "
                        "'synchronous_commit', 'fsync', 'max_parallel_workers_per_gather', "
                        "'max_parallel_maintenance_workers', 'jit', 'random_page_cost')"
                    )
                ).all()
            )
    finally:
        engine.dispose()
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(ram_gb, 1) if ram_gb else None,
        "load_avg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "postgresql": pg,
        "postgis": postgis.split('"')[1] if '"' in postgis else postgis,
        "postgis_full": postgis,
        "settings": settings,
    }


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
