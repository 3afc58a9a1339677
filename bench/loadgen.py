"""A small closed-loop HTTP load generator: N client threads, each with its own session.

Each client keeps one HTTP/1.1 connection (reconnecting if the server closes it),
sends a request, waits for the whole answer, records the latency and the status,
and sends the next one, until the time is up. Throughput is completed requests over
the measured time; latencies are of every request (connect time included when a
connection had to be made). Closed loop: a slow answer delays that client's next
request, so the percentiles are those of the offered load, not of a fixed arrival
rate (no coordinated-omission correction; the report says so). Threads of one
Python process: a request costs the generator ~0.1-0.2 ms of CPU, measured by
running the same generator against ``/healthz`` beside every workload.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.common import percentile

COOKIE_NAME = "gridcase_session"


@dataclass
class Session:
    """A signed-in client: its session cookie and CSRF token."""

    cookie: str
    csrf: str
    username: str
    extra: dict = field(default_factory=dict)


def _cookie_from(resp: http.client.HTTPResponse) -> str | None:
    for header, value in resp.getheaders():
        if header.lower() == "set-cookie" and value.startswith(COOKIE_NAME + "="):
            return value.split(";", 1)[0]
    return None


def sign_in(host: str, port: int, username: str, password: str) -> Session:
    """Sign in through the login form as a browser does; return the session and its CSRF token."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", "/login")
        resp = conn.getresponse()
        page = resp.read().decode("utf-8")
        cookie = _cookie_from(resp) or ""
        m = re.search(r'name="csrf_token" value="([^"]+)"', page)
        form = {"username": username, "password": password, "next": "/field/report"}
        if m:
            form["csrf_token"] = m.group(1)
        conn.request(
            "POST",
            "/login",
            body=urllib.parse.urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
        )
        resp = conn.getresponse()
        resp.read()
        if resp.status != 302:
            raise RuntimeError(f"sign-in of {username} failed: HTTP {resp.status}")
        cookie = _cookie_from(resp) or cookie
        conn.request("GET", "/api/v1/field/session", headers={"Cookie": cookie})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        cookie = _cookie_from(resp) or cookie
        return Session(cookie=cookie, csrf=body["csrf_token"], username=username)
    finally:
        conn.close()


# A request: (method, path, body bytes or None, headers)
Request = tuple[str, str, bytes | None, dict]


@dataclass
class Result:
    clients: int
    seconds: float
    latencies: list[float]
    statuses: Counter
    errors: Counter

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def failed(self) -> int:
        return self.completed - self.ok + sum(self.errors.values())

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000.0

    def to_dict(self) -> dict:
        return {
            "clients": self.clients,
            "seconds": self.seconds,
            "requests": self.completed,
            "ok": self.ok,
            "failed": self.failed,
            "throughput_per_s": self.throughput,
            "p50_ms": self.ms(50),
            "p95_ms": self.ms(95),
            "p99_ms": self.ms(99),
            "max_ms": max(self.latencies) * 1000.0 if self.latencies else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
        }


def run(
    host: str,
    port: int,
    sessions: list[Session],
    make_request: Callable[[Session, int], Request],
    seconds: float,
    warmup: float = 1.0,
) -> Result:
    """Drive one client thread per session for ``warmup`` + ``seconds``; measure the latter."""
    start = threading.Barrier(len(sessions) + 1)
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: Counter = Counter()
    window: dict[str, float] = {}

    def client(s: Session) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine: list[float] = []
        mine_status: Counter = Counter()
        mine_err: Counter = Counter()
        i = 0
        start.wait()
        measure_from, until = window["from"], window["until"]
        while True:
            now = time.perf_counter()
            if now >= until:
                break
            method, path, body, headers = make_request(s, i)
            i += 1
            headers = {**headers, "Cookie": s.cookie}
            try:
                t0 = time.perf_counter()
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                t1 = time.perf_counter()
                cookie = _cookie_from(resp)
                if cookie:
                    s.cookie = cookie
                if t0 >= measure_from:
                    mine.append(t1 - t0)
                    mine_status[resp.status] += 1
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                if time.perf_counter() >= measure_from:
                    mine_err[type(exc).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.close()
        with lock:
            latencies.extend(mine)
            statuses.update(mine_status)
            errors.update(mine_err)

    threads = [threading.Thread(target=client, args=(s,), daemon=True) for s in sessions]
    for t in threads:
        t.start()
    t_start = time.perf_counter()
    window["from"] = t_start + warmup
    window["until"] = t_start + warmup + seconds
    start.wait()
    for t in threads:
        t.join()
    return Result(len(sessions), seconds, latencies, statuses, errors)
