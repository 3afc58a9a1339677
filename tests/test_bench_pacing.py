"""The field bench's paced scenario (bench/wrk_clients.lua with GRIDCASE_WRK_RATE).

The target "p95 under 50 ms with 20 clients at 300 reports a second" is read from this
scenario, so its two promises are checked against a local HTTP server whose answer time
the test chooses: the clients keep the asked rate (not as fast as the answers come), and
a request held back by a slow answer counts its wait from the time it was due.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import wrkgen
from bench.loadgen import Session


def _server(answer_seconds: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn answers wrk

        def do_GET(self):
            time.sleep(answer_seconds)
            # One write (headers and body): two small writes would wait for the client's
            # delayed ACK (Nagle), 40 ms an answer.
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # wrk drops its connections when its time is up

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture
def slow_server(request):
    httpd = _server(request.param)
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def _run(port: int, clients: int, rate: float | None, seconds: float = 2) -> dict:
    sessions = [Session("", "", f"client{i}") for i in range(clients)]
    return wrkgen.run(
        "127.0.0.1",
        port,
        sessions,
        lambda s: wrkgen.Scenario("GET", "/"),
        seconds,
        warmup=0,
        rate=rate,
    )


@pytest.mark.parametrize("slow_server", [0.002], indirect=True)
def test_paced_clients_keep_the_rate_asked(slow_server):
    closed = _run(slow_server, 2, None)
    paced = _run(slow_server, 2, 40.0)
    # Answers take 2 ms: two clients in a closed loop post hundreds a second, paced at 40
    # a second together they post 40 a second (less the first schedule's stagger).
    assert closed["throughput_per_s"] > 200
    assert 34 <= paced["throughput_per_s"] <= 42
    assert paced["rate_per_s"] == 40.0 and paced["failed"] == 0
    # Latency from the due time includes the service time (and the timer's slack).
    assert paced["p50_ms"] >= paced["service_p50_ms"] >= 2
    assert paced["p95_ms"] < 50


@pytest.mark.parametrize("slow_server", [0.12], indirect=True)
def test_a_request_held_back_counts_its_wait_from_when_it_was_due(slow_server):
    # One client due every 50 ms, answers take 120 ms: the n-th request goes out ~70·n ms
    # after it was due. Its answer alone takes 120 ms (the service time); counted from
    # its due time the latency grows with the backlog and the rate asked is not kept.
    res = _run(slow_server, 1, 20.0)
    assert 110 <= res["service_p50_ms"] <= 250
    assert res["p95_ms"] > 3 * res["service_p95_ms"]
    assert res["throughput_per_s"] < 0.6 * 20
