"""``python -m bench`` (``make bench``): every workload beside its baseline, at each scale.

Writes BENCHMARKS.md (figures, machine, date) and the raw results as JSON under
``var/bench/``. Every database it makes (``gridcase_bench_*`` on the embedded
cluster) is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import common, report

WORKLOADS = (
    "load",
    "ledger",
    "field",
    "maps",
    "stats",
    "hotspots",
    "visits",
    "province",
    "counties",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--scales", default="10000,100000,1000000", help="cases per run, comma-separated"
    )
    p.add_argument("--only", default=",".join(WORKLOADS), help="workloads to run")
    p.add_argument("--repeat", type=int, default=5, help="measured repetitions of fast workloads")
    p.add_argument("--load-repeat", type=int, default=3, help="repetitions of each bulk load")
    p.add_argument(
        "--rebuild-indexes",
        choices=("auto", "always"),
        default="auto",
        help="whether the demo load rebuilds the indexes (auto: the loader decides by size)",
    )
    p.add_argument(
        "--seconds", type=float, default=15.0, help="duration of each load-test scenario"
    )
    p.add_argument("--clients", type=int, default=20, help="concurrent clients posting reports")
    p.add_argument(
        "--field-server",
        default=None,
        help="gunicorn worker class:workers[:threads] of the field bench (default: as make run)",
    )
    p.add_argument(
        "--field-generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator of the field bench (auto: wrk if installed)",
    )
    p.add_argument(
        "--field-rate",
        type=float,
        default=None,
        help="reports a second of the field bench's paced scenario, all clients together "
        "(default: the target's 300)",
    )
    p.add_argument("--stops", type=int, default=1000, help="stops of the visit plan")
    p.add_argument("--province-grids", type=int, default=100_000)
    p.add_argument("--province-cases", type=int, default=500_000)
    p.add_argument("--counties", type=int, default=20)
    p.add_argument("--cases-per-county", type=int, default=50_000)
    p.add_argument("--output", default=str(common.ROOT / "BENCHMARKS.md"))
    p.add_argument("--json", default=str(common.ROOT / "var" / "bench" / "results.json"))
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the figures of the workloads not run now from the previous results (--json)",
    )
    p.add_argument("--keep", action="store_true", help="keep the bench databases")
    p.add_argument("--prefix", default="gridcase_bench", help="names of the bench databases")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scales = [int(s) for s in args.scales.split(",") if s.strip()]
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = only - set(WORKLOADS)
    if unknown:
        print(f"unknown workloads: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    log_dir = Path(args.json).parent
    log_dir.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        print(line, flush=True)

    from bench import counties, field, hotspots, load, maps, stats, visits

    started = time.perf_counter()
    now = datetime.now(UTC)
    base_name = f"{args.prefix}_base"
    log(f"bench: building {base_name} (schema and the demo county's boundaries)")
    base_url = load.build_base(base_name)
    results: dict = {
        "machine": common.machine(base_url),
        "args": vars(args),
        "started": now.isoformat(),
        "scales": {},
        "errors": [],
    }
    made: list[str] = [base_name]

    def attempt(key: str, where: dict, fn, *a, **kw):
        before = common.load_average()
        t0 = time.perf_counter()
        try:
            where[key] = fn(*a, **kw)
        except Exception as exc:  # one failing workload must not hide the others' figures
            traceback.print_exc()
            where[key] = {"error": f"{type(exc).__name__}: {exc}"}
            results["errors"].append(f"{key}: {type(exc).__name__}: {exc}")
        if isinstance(where.get(key), dict):
            where[key]["run"] = now.isoformat()
            where[key]["load_avg"] = {"before": before, "after": common.load_average()}
            where[key]["workload_s"] = time.perf_counter() - t0
        log(f"bench: {key} took {time.perf_counter() - t0:.1f} s")

    try:
        for n in scales:
            name = f"{args.prefix}_{n}"
            made.append(name)
            log(f"bench: {n:,} cases")
            r: dict = {}
            results["scales"][n] = r
            if only & {"load", "ledger", "field", "maps", "stats", "hotspots", "visits"}:
                attempt(
                    "load",
                    r,
                    load.demo_load,
                    base_name,
                    name,
                    n,
                    args.load_repeat if "load" in only else 1,
                    now,
                    log,
                    True if args.rebuild_indexes == "always" else None,
                )
            url = common.db_url(name)
            if "ledger" in only:
                rows = max(1000, n // 10)
                app = common.app_for(url)
                from webapp.db import database

                with app.app_context():
                    session = database(app).sessions()
                    path = load.write_ledger(session, log_dir / f"ledger-{rows}.csv", rows)
                    session.close()
                    database(app).engine.dispose()
                attempt("ledger", r, load.ledger_import, url, path, rows, args.load_repeat, log)
            if "field" in only:
                attempt(
                    "field",
                    r,
                    field.field_reports,
                    url,
                    name,
                    args.seconds,
                    args.clients,
                    log,
                    log_dir,
                    args.field_server or field.SERVER,
                    args.field_generator,
                    args.field_rate or field.RATE,
                )
            if "maps" in only:
                attempt("maps", r, maps.maps, url, args.repeat, log, log_dir)
            if "stats" in only:
                attempt("stats", r, stats.stats, url, args.repeat, log)
            if "hotspots" in only:
                attempt("hotspots", r, hotspots.county, url, args.repeat, log)
            if "visits" in only:
                attempt("visits", r, visits.plan, url, args.stops, max(2, args.repeat // 2), log)
            if not args.keep:
                common.drop_db(name)
        if "province" in only:
            log(f"bench: a province of {args.province_grids:,} grids")
            p: dict = {}
            results["province"] = p
            made.append(hotspots.PROVINCE_DB)
            attempt(
                "build",
                p,
                lambda: hotspots.build_province(
                    base_name, args.province_grids, args.province_cases, load.SEED, log
                )[1],
            )
            if "error" not in p["build"]:
                attempt(
                    "gi_star",
                    p,
                    hotspots.province,
                    common.db_url(hotspots.PROVINCE_DB),
                    min(3, args.repeat),
                    log,
                )
            if not args.keep:
                hotspots.drop_province()
        if "counties" in only:
            log(f"bench: {args.counties} counties in one database")
            c: dict = {}
            results["counties"] = c
            made.append(counties.DB)
            attempt(
                "build_s",
                c,
                lambda: _timed(
                    counties.build, base_name, args.counties, args.cases_per_county, load.SEED, log
                ),
            )
            if "error" not in c["build_s"]:
                attempt(
                    "measure",
                    c,
                    counties.measure,
                    common.db_url(counties.DB),
                    args.counties,
                    args.repeat,
                    log,
                )
            if not args.keep:
                counties.drop()
    finally:
        if not args.keep:
            for name in made:
                common.drop_db(name)
        results["seconds"] = time.perf_counter() - started
        results["load_avg_at_end"] = common.load_average()
        previous = Path(args.json)
        if args.merge and previous.exists():
            results = merge(json.loads(previous.read_text(encoding="utf-8")), results, only)
        Path(args.json).write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    Path(args.output).write_text(report.markdown(results), encoding="utf-8")
    took = (time.perf_counter() - started) / 60
    log(f"bench: done in {took:.1f} min; wrote {args.output} and {args.json}")
    return 1 if results["errors"] else 0


# The workloads whose figures a run makes; the demo load also runs as the set-up of the
# others (once, not repeated), and only counts as figures when it was asked for.
SCALE_WORKLOADS = ("load", "ledger", "field", "maps", "stats", "hotspots", "visits")


def merge(previous: dict, current: dict, only: set[str]) -> dict:
    """The previous results with the workloads of ``current`` (those in ``only``) replaced.

    Every workload keeps the time of the run it comes from (``run``); ``runs`` lists the
    runs the figures come from, so the report can say which figure is from which run.
    """
    merged = dict(previous)
    first = previous.get("runs") or [_run_of(previous, set(WORKLOADS))]
    merged["runs"] = [*first, _run_of(current, only)]
    merged["scales"] = {int(n): dict(s) for n, s in previous.get("scales", {}).items()}
    for n, s in current["scales"].items():
        target = merged["scales"].setdefault(int(n), {})
        for key, figures in s.items():
            if key in only:
                target[key] = figures
    for name in ("province", "counties"):
        if name in only and name in current:
            merged[name] = current[name]
    merged["errors"] = [*previous.get("errors", []), *current.get("errors", [])]
    merged["machine"] = current["machine"]
    merged["seconds"] = sum(run["seconds"] for run in merged["runs"])
    merged["load_avg_at_end"] = current.get("load_avg_at_end")
    return merged


def _run_of(results: dict, only: set[str]) -> dict:
    return {
        "date": results.get("started") or results["machine"]["date"],
        "seconds": results.get("seconds", 0),
        "workloads": [w for w in WORKLOADS if w in only],
        "scales": [int(n) for n in results.get("scales", {})],
    }


def _timed(fn, *a) -> dict:
    t0 = time.perf_counter()
    fn(*a)
    return {"seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
