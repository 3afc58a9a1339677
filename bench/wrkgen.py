"""The field bench's load generator: ``wrk`` (C, epoll) driven by ``bench/wrk_clients.lua``.

The Python threaded generator (``bench/loadgen.py``) spent about as much CPU per request
as the app's cheapest answer on these two cores, and so took CPU from the server it
measured. wrk spends a few microseconds per request; the CPU it used is measured (its
own rusage) and reported beside every scenario, with the CPU of the server's
processes (gunicorn and PostgreSQL, from /proc) so that the figures say where the two
cores went.

Closed loop like loadgen by default: one connection per client, the next request once
the answer is complete; wrk's latency is from the first byte sent to the last byte
received. With ``rate`` the clients are paced instead (open loop, see the Lua script):
the latencies reported are then counted from each request's due time.
Clients sign in through the login form in Python first (``loadgen.sign_in``).
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import Session

SCRIPT = Path(__file__).with_name("wrk_clients.lua")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def available() -> bool:
    return shutil.which("wrk") is not None


@dataclass
class Scenario:
    """What one client sends: ``body`` may use ``{client_id}`` (fresh per request) and ``{i}``."""

    method: str
    path: str
    body: str = ""


def _proc_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) of each process still there."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def _cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two readings by the processes in ``after`` (new ones count whole)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def _postgres_pids() -> list[int]:
    """The embedded cluster's postmaster and its children (other clusters on the machine not)."""
    from webapp.pgcluster import EmbeddedCluster, project_var_dir

    try:
        pid_file = EmbeddedCluster(project_var_dir()).data_dir / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    return [postmaster, *_children(postmaster)]


def _children(parent: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            out.append(int(d.name))
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (gunicorn's master and workers)."""
    return [pid, *_children(pid)]


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def run(
    host: str,
    port: int,
    sessions: list[Session],
    scenario_of: Callable[[Session], Scenario],
    seconds: float,
    server_pids: list[int] | None = None,
    warmup: float = 1.0,
    rate: float | None = None,
) -> dict:
    """Run ``len(sessions)`` clients for ``warmup`` (not measured) then ``seconds``.

    ``rate``: requests per second of all clients together, paced; None: as fast as the
    answers come (closed loop).
    """
    n = len(sessions)
    with tempfile.TemporaryDirectory(prefix="gridcase-wrk-") as tmp:
        clients = Path(tmp) / "clients.tsv"
        lines = []
        for s in sessions:
            sc = scenario_of(s)
            if "\t" in sc.body or "\n" in sc.body:
                raise ValueError("a body template is one line without tabs")
            lines.append(f"{s.cookie}\t{s.csrf}\t{sc.method}\t{sc.path}\t{sc.body}\n")
        clients.write_text("".join(lines), encoding="utf-8")
        if warmup > 0:
            _wrk(host, port, n, warmup, clients, rate)
        server_pids = server_pids or []
        pg = _postgres_pids()
        app0, pg0, busy0 = _proc_cpu(server_pids), _proc_cpu(pg), _machine_busy()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = _wrk(host, port, n, seconds, clients, rate)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        app1, pg1, busy1 = _proc_cpu(server_pids), _proc_cpu(_postgres_pids()), _machine_busy()
    app_cpu, pg_cpu = _cpu_delta(app0, app1), _cpu_delta(pg0, pg1)
    wall = out["duration_us"] / 1e6
    gen_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    statuses = {k: int(v) for k, v in sorted(out["statuses"].items())}
    ok = sum(v for k, v in statuses.items() if 200 <= int(k) < 300)
    socket_errors = {k: v for k, v in out["errors"].items() if k != "status" and v}
    failed = out["requests"] - ok + sum(socket_errors.values())
    cores = os.cpu_count() or 1
    latency = {
        "p50_ms": out["p50_us"] / 1000,
        "p95_ms": out["p95_us"] / 1000,
        "p99_ms": out["p99_us"] / 1000,
        "max_ms": out["max_us"] / 1000,
    }
    paced = out.get("paced")
    if rate is not None:
        if not paced or not paced["answered"]:
            raise RuntimeError("wrk's paced run recorded no answered request")
        # The figures that count are from each request's due time; wrk's own (from the
        # moment the request could go out) are kept beside them as the service time.
        paced_latency = {k: paced[f"{k[:-3]}_us"] / 1000 for k in latency}
        latency = paced_latency | {f"service_{k}": v for k, v in latency.items()}
    return {
        "clients": n,
        "rate_per_s": rate,
        "seconds": wall,
        "requests": out["requests"],
        "ok": ok,
        "failed": failed,
        "throughput_per_s": ok / wall if wall else 0.0,
        **latency,
        "statuses": statuses,
        "errors": socket_errors,
        "generator": "wrk",
        # CPU seconds per second of wall time (1.0 = one core busy), and per request.
        "cpu": {
            "generator_cores": gen_cpu / wall,
            "app_cores": app_cpu / wall,
            "postgres_cores": pg_cpu / wall,
            "machine_busy_cores": cores * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
            "generator_ms_per_request": 1000 * gen_cpu / max(1, out["requests"]),
            "app_ms_per_request": 1000 * app_cpu / max(1, out["requests"]),
            "postgres_ms_per_request": 1000 * pg_cpu / max(1, out["requests"]),
        },
    }


def _wrk(host: str, port: int, n: int, seconds: float, clients: Path, rate: float | None) -> dict:
    env = {
        **os.environ,
        "GRIDCASE_WRK_CLIENTS": str(clients),
        "GRIDCASE_WRK_NONCE": secrets.token_hex(4),
    }
    env.pop("GRIDCASE_WRK_RATE", None)
    if rate is not None:
        if rate <= 0:
            raise ValueError("a paced run needs a rate above zero")
        env["GRIDCASE_WRK_RATE"] = repr(float(rate))
    cmd = [
        "wrk",
        "-t",
        str(n),
        "-c",
        str(n),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(SCRIPT),
        f"http://{host}:{port}/",
    ]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    for line in proc.stdout.splitlines():
        if line.startswith("GRIDCASE_WRK "):
            return json.loads(line.split(" ", 1)[1])
    raise RuntimeError(
        f"wrk failed after {time.monotonic() - t0:.1f} s (exit {proc.returncode}): "
        f"{proc.stderr.strip() or proc.stdout.strip()}"
    )
