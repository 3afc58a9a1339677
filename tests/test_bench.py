"""The benchmark suite at a tiny size, so that its code cannot rot between `make bench` runs.

Every workload runs once against its baseline on a few hundred cases (in databases of
its own, dropped afterwards); the run must finish without a failed workload and write
a BENCHMARKS.md with every section. The figures themselves mean nothing at this size.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bench import loadgen
from bench.__main__ import main
from bench.common import percentile

TINY = [
    "--scales",
    "400",
    "--seconds",
    "1",
    "--clients",
    "2",
    "--repeat",
    "1",
    "--load-repeat",
    "1",
    "--stops",
    "30",
    "--province-grids",
    "300",
    "--province-cases",
    "1000",
    "--counties",
    "2",
    "--cases-per-county",
    "400",
    "--rebuild-indexes",
    "always",
]


def test_every_workload_runs_at_a_tiny_size(tmp_path, server_url):
    out, raw = tmp_path / "BENCHMARKS.md", tmp_path / "results.json"
    prefix = f"gridcase_bench_t{os.getpid()}"
    code = main([*TINY, "--output", str(out), "--json", str(raw), "--prefix", prefix])
    results = json.loads(raw.read_text(encoding="utf-8"))
    assert results["errors"] == [] and code == 0
    scale = next(iter(results["scales"].values()))
    for workload in ("load", "ledger", "field", "maps", "stats", "hotspots", "visits"):
        assert "error" not in scale[workload], workload
    assert scale["load"]["inserted"] + scale["load"]["outside"] == scale["load"]["rows"]
    # The path a big load takes (indexes and foreign keys dropped, rebuilt after), with the
    # schema checked unchanged by the bench after each load.
    assert scale["load"]["rebuilt_indexes"] is True
    assert scale["field"]["reports_1"]["ok"] > 0 and scale["field"]["reports_1"]["failed"] == 0
    # Every acknowledged report is stored (warm-up requests are stored but not counted).
    field = scale["field"]
    acknowledged = field["reports_1"]["ok"] + field["reports_2"]["ok"] + field["paced_2"]["ok"]
    assert field["reports_stored"] >= acknowledged > 0
    # The paced scenario (the latency target's load) ran at the rate asked.
    assert field["paced_2"]["rate_per_s"] == 300 and field["paced_2"]["p95_ms"] > 0
    # Every county map page was built, measured and opened in chromium; the naive map
    # carries every case of the county.
    pages = scale["maps"]["pages"]
    assert {
        "heat",
        "choropleth by grid",
        "hot spots by grid",
        "cases (counts per township)",
    } <= set(pages)
    assert all(p["html_bytes"] > 0 and p["page_ready_ms"] > 0 for p in pages.values())
    assert scale["maps"]["naive"]["points"] >= scale["load"]["inserted"]
    assert results["province"]["gi_star"]["grids"] > 0
    assert results["counties"]["measure"]["checkpoints"]
    text = out.read_text(encoding="utf-8")
    assert "reports paced at 300/s" in text
    for heading in (
        "## Machine",
        "## 1. Bulk load",
        "## 2. Field reports",
        "## 3. Map pages",
        "## 4. Figures",
        "## 5. Hot spots",
        "## 6. Visit plans",
        "## Beyond one machine",
    ):
        assert heading in text

    # A later run of one workload replaces its figures and keeps the others, saying so.
    first = results
    code = main(
        [
            *TINY,
            "--only",
            "stats",
            "--merge",
            "--output",
            str(out),
            "--json",
            str(raw),
            "--prefix",
            prefix,
        ]
    )
    merged = json.loads(raw.read_text(encoding="utf-8"))
    assert code == 0 and len(merged["runs"]) == 2
    assert merged["runs"][1]["workloads"] == ["stats"]
    again = next(iter(merged["scales"].values()))
    assert again["stats"]["run"] == merged["runs"][1]["date"] != scale["stats"]["run"]
    assert again["load"] == scale["load"] and again["maps"] == scale["maps"]
    assert merged["province"] == first["province"]
    text = out.read_text(encoding="utf-8")
    assert merged["runs"][0]["date"] in text and merged["runs"][1]["date"] in text
    assert "## 6. Visit plans" in text


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0, 1.0), (50, 2.5), (100, 4.0), (25, 1.75)],
    ids=["min", "median", "max", "q1"],
)
def test_percentile_interpolates_between_ranks(p, expected):
    assert percentile([4.0, 1.0, 3.0, 2.0], p) == pytest.approx(expected)
    assert percentile(list(np.arange(1, 101, dtype=float)), 95) == pytest.approx(95.05)


def test_load_generator_counts_failures_and_statuses():
    result = loadgen.Result(
        2, 2.0, [0.001, 0.002, 0.003], {201: 2, 500: 1}, {"ConnectionResetError": 1}
    )
    assert result.ok == 2 and result.failed == 2
    assert result.throughput == pytest.approx(1.0)
    assert result.to_dict()["statuses"] == {"201": 2, "500": 1}
