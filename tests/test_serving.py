"""The gunicorn worker `make run` serves with (webapp/serving.py): new connections in turn.

gunicorn's own gthread workers share the listening socket and the first awake takes
the next connection: 20 connections opened at once landed 7/13, 1/19, 2/18 on two
workers in a trial, and keep-alive clients stay where they land.
"""

from __future__ import annotations

import collections
import http.client
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from webapp.serving import STALE_AFTER, SiblingTable

TESTS = Path(__file__).resolve().parent


def test_a_worker_accepts_only_while_no_live_sibling_holds_fewer():
    table = SiblingTable(slots=4)
    a, b = table.claim(101, 0.0), table.claim(102, 0.0)
    assert a != b
    assert not table.may_accept(a, 3, 1.0)  # b has just started: it holds none
    assert table.may_accept(b, 2, 1.0)
    assert not table.may_accept(a, 3, 1.1)  # b holds 2
    assert table.may_accept(a, 2, 1.2)  # a tie: both may take the next one
    # A sibling that stopped publishing (gone or stuck) no longer holds anyone back...
    assert table.may_accept(a, 3, 1.0 + STALE_AFTER + 0.5)
    # ...and its slot goes to the next worker that starts.
    assert table.claim(103, 1.0 + STALE_AFTER + 0.5) == b
    # A worker that leaves (stopping) is ignored at once.
    assert not table.may_accept(a, 3, 5.0)  # 103 holds 0
    table.release(b)
    assert table.may_accept(a, 3, 5.1)


def test_a_full_table_leaves_a_worker_accepting_as_gunicorn_does():
    table = SiblingTable(slots=1)
    first = table.claim(201, 0.0)
    assert table.claim(202, 0.0) is None
    assert table.may_accept(None, 50, 0.1)
    assert table.may_accept(first, 50, 0.1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def balanced_server():
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--workers",
            "2",
            "--worker-class",
            "webapp.serving.BalancedThreadWorker",
            "--threads",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
            "--pythonpath",
            str(TESTS),
            "serving_pid_app:app",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/")
            c.getresponse().read()
            c.close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"gunicorn did not start: {proc.communicate()[1].decode()}")
    time.sleep(0.5)  # both workers up (the first answer may have come from one)
    yield port
    proc.terminate()
    proc.communicate(timeout=20)


def test_connections_opened_at_once_are_shared_evenly(balanced_server):
    conns = [
        http.client.HTTPConnection("127.0.0.1", balanced_server, timeout=10) for _ in range(40)
    ]
    for c in conns:
        c.connect()  # all of them wait in the listen queue before any is accepted
    worker_of = {}
    for _ in range(3):  # keep-alive: each connection stays with the worker that took it
        for c in conns:
            c.request("GET", "/")
            pid = c.getresponse().read()
            assert worker_of.setdefault(c, pid) == pid
    for c in conns:
        c.close()
    held = collections.Counter(worker_of.values())
    assert len(held) == 2 and max(held.values()) - min(held.values()) <= 1, held
