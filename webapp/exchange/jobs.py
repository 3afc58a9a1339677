"""Ledger import jobs: the dry run and the real run, in the background, with visible progress.

A job runs in a thread of the web process with its own database session (inline in
tests, where ``EXCHANGE_INLINE_JOBS`` is set or the app is testing). Progress is
written to the ``ledger_imports`` row in short transactions of their own, at most
once a second, so the page that polls it sees it move; the import itself is one
transaction that only touches that row at its very end.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import text

from webapp.auth import audit
from webapp.auth.models import User
from webapp.db import database
from webapp.exchange.importer import check_ledger, import_ledger
from webapp.exchange.ledger import LedgerUnreadable
from webapp.exchange.models import LedgerImport

PROBLEM_ROWS_SHOWN = 1000


def storage_dir(app: Flask | None = None) -> Path:
    app = app or current_app
    path = Path(app.config.get("EXCHANGE_DIR") or Path(app.config["VAR_DIR"]) / "imports")
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_path(imp: LedgerImport, app: Flask | None = None) -> Path:
    return storage_dir(app) / f"{imp.id}-{imp.sha256[:16]}{Path(imp.filename).suffix.lower()}"


def report_path(imp: LedgerImport, app: Flask | None = None) -> Path:
    return storage_dir(app) / f"{imp.id}-{imp.sha256[:16]}.report.csv"


def start(import_id: int, kind: str) -> None:
    """Run the ``kind`` ("check" or "import") job of an import, in the background if possible."""
    app = current_app._get_current_object()
    if app.config.get("EXCHANGE_INLINE_JOBS", app.testing):
        run(app, import_id, kind)
        return
    threading.Thread(
        target=run, args=(app, import_id, kind), name=f"ledger-{kind}-{import_id}", daemon=True
    ).start()


class _Progress:
    """Writes (stage, done, total) to the import's row, throttled, in its own transactions."""

    def __init__(self, app: Flask, import_id: int) -> None:
        self.app, self.import_id, self.last = app, import_id, 0.0

    def __call__(self, stage: str, done: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 1.0:
            return
        self.last = now
        s = database(self.app).sessions()
        try:
            s.execute(
                text(
                    "UPDATE ledger_imports SET progress_stage = :s, progress_done = :d, progress_total = :t, "
                    "updated_at = now() WHERE id = :i"
                ),
                {"s": stage[:40], "d": done, "t": total, "i": self.import_id},
            )
            s.commit()
        finally:
            s.close()


def _finish(session, import_id: int, **values) -> None:
    """Record the outcome in the job's own session (after its work was committed or rolled back)."""
    imp = session.get(LedgerImport, import_id)
    for k, v in values.items():
        setattr(imp, k, v)
    session.commit()


def run(app: Flask, import_id: int, kind: str) -> None:
    with app.app_context():
        progress = _Progress(app, import_id)
        session = database(app).sessions()
        try:
            imp = session.get(LedgerImport, import_id)
            path = file_path(imp, app)
            user = session.get(User, imp.user_id) if imp.user_id else None
            if kind == "check":
                county = user.county_code if user else None
                report = check_ledger(session, path, imp.crs, imp.filename, progress, county)
                session.rollback()
                report_path(imp, app).write_bytes(report.csv_bytes())
                summary = report.summary() | {"problems": report.problem_rows(PROBLEM_ROWS_SHOWN)}
                _finish(
                    session,
                    import_id,
                    state="checked",
                    summary=summary,
                    error=None,
                    progress_stage="检查完成",
                    progress_done=len(report.rows),
                    progress_total=len(report.rows),
                )
                return
            report = import_ledger(session, path, user, import_id, imp.crs, imp.filename, progress)
            report_path(imp, app).write_bytes(report.csv_bytes())
            imp = session.get(LedgerImport, import_id)
            imp.state = "done"
            imp.imported = report.imported
            imp.summary = report.summary() | {"problems": report.problem_rows(PROBLEM_ROWS_SHOWN)}
            imp.progress_stage = "导入完成"
            imp.progress_done = imp.progress_total = len(report.rows)
            audit.record(
                session,
                "ledger_import",
                user,
                detail={"import_id": import_id, "file": imp.filename, "imported": report.imported},
            )
            session.commit()
        except LedgerUnreadable as exc:
            session.rollback()
            _finish(session, import_id, state="failed", error=str(exc)[:2000])
        except Exception as exc:  # a job must always end in a state the page can show
            session.rollback()
            app.logger.exception("ledger import %s failed", import_id)
            _finish(
                session,
                import_id,
                state="failed",
                error=f"导入失败（内部错误：{type(exc).__name__}），未写入任何案件。",
            )
        finally:
            session.close()
