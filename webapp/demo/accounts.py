"""One demo account per role, with random passwords kept in a file only the owner reads."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.auth import accounts
from webapp.auth.models import User
from webapp.auth.roles import Role


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    display_name: str


DEMO_ACCOUNTS = [
    DemoAccount("wanggeyuan", Role.GRID_WORKER, "张网格（网格员）"),
    DemoAccount("xinxiyuan", Role.VILLAGE_INFORMANT, "李信息（村信息员）"),
    DemoAccount("xiangzhen", Role.TOWNSHIP_LEADER, "王镇长（乡镇领导）"),
    DemoAccount("xinfangju", Role.COUNTY_STAFF, "赵登记（县信访局）"),
    DemoAccount("baoan", Role.LEADER_IN_CHARGE, "刘包案（包案领导）"),
    DemoAccount("yanpan", Role.PLANNER, "陈研判（研判人员）"),
    DemoAccount("admin", Role.ADMIN, "系统管理员"),
]


class DemoPasswords:
    """New random passwords for the demo accounts, hashed in a thread of their own.

    Each scrypt hash takes a tenth of a second or more of one core (by design); the
    demo loader starts this before the cases load, so the hashing runs beside it
    (hashlib releases the GIL) instead of after it.
    """

    def __init__(self, usernames: list[str]) -> None:
        self.passwords = {name: accounts.new_password() for name in usernames}
        pool = ThreadPoolExecutor(1, thread_name_prefix="demo-passwords")
        self._hashes: dict[str, Future[str]] = {
            name: pool.submit(accounts.hash_password, pw) for name, pw in self.passwords.items()
        }
        pool.shutdown(wait=False)  # the thread ends when the last hash is made

    @classmethod
    def for_missing(cls, session: Session) -> DemoPasswords:
        """Passwords for the demo accounts that do not exist yet."""
        existing = set(session.scalars(select(User.username)))
        return cls([acc.username for acc in DEMO_ACCOUNTS if acc.username not in existing])

    def take(self, username: str) -> tuple[str, str | None]:
        """(password, its hash) for ``username``, waiting for the hash if need be."""
        if username not in self.passwords:  # made since: hashed here
            return accounts.new_password(), None
        return self.passwords[username], self._hashes[username].result()


def demo_areas(session: Session, county: str) -> dict[Role, str]:
    """Choose the demo accounts' areas: the grid with most cases in the county seat.

    Counted from the case tallies (exact, kept with every write), not by reading the
    cases: right after a load that is a random read of a fifth of the table.
    """
    grid = session.execute(
        text(
            """
            SELECT g.code FROM areas g LEFT JOIN case_tallies t ON t.grid_code = g.code
            WHERE g.level = 'grid' AND g.township_code = (
                SELECT min(code) FROM areas WHERE level = 'township' AND county_code = :county)
            GROUP BY g.code ORDER BY coalesce(sum(t.cases), 0) DESC, g.code LIMIT 1
            """
        ),
        {"county": county},
    ).scalar_one()
    return {
        Role.GRID_WORKER: grid,
        Role.VILLAGE_INFORMANT: grid[:12],
        Role.TOWNSHIP_LEADER: grid[:9],
        Role.COUNTY_STAFF: county,
        Role.LEADER_IN_CHARGE: county,
        Role.PLANNER: county,
        Role.ADMIN: county,
    }


def create_demo_accounts(
    session: Session, county: str, passwords: DemoPasswords | None = None
) -> dict[str, str]:
    """Create the accounts that do not exist yet; return {username: password} of the new ones.

    ``passwords``: made (and hashing) beforehand; else made here.
    """
    areas = demo_areas(session, county)
    created: dict[str, str] = {}
    for acc in DEMO_ACCOUNTS:
        if session.scalar(select(User).where(User.username == acc.username)) is not None:
            continue
        if passwords is None:
            password, hashed = accounts.new_password(), None
        else:
            password, hashed = passwords.take(acc.username)
        accounts.create_user(
            session,
            acc.username,
            acc.role,
            areas[acc.role],
            password,
            acc.display_name,
            unit="延津县信访局" if acc.role is Role.COUNTY_STAFF else None,
            password_hash=hashed,
        )
        created[acc.username] = password
    _give_demo_accounts_work(session, county)
    return created


def _give_demo_accounts_work(session: Session, county: str) -> None:
    """The grid worker reported the sweeps of their grid; the leader owns the hardest cases.

    Who reported a case and who leads it count in no tally, so the tallies' update
    trigger is told to stand aside for these two statements (it would otherwise
    re-read every updated case and its repeats: seconds after a big load, minutes
    while a rebuilding load has the indexes away).
    """
    session.execute(text("SELECT set_config('gridcase.defer_case_tallies', 'on', true)"))
    session.execute(
        text(
            """
            UPDATE cases c SET reporter_id = u.id
            FROM users u JOIN areas g ON g.code = u.area_code
            WHERE u.username = 'wanggeyuan' AND c.grid_id = g.id
              AND c.channel = 'grid_sweep' AND c.reporter_id IS NULL
            """
        )
    )
    session.execute(
        text(
            """
            UPDATE cases c SET leader_id = u.id
            FROM users u
            WHERE u.username = 'baoan' AND c.leader_id IS NULL AND c.id IN (
                SELECT id FROM cases
                WHERE county_code = :county AND status NOT IN ('resolved','closed','not_accepted')
                ORDER BY reported_at LIMIT 25)
            """
        ),
        {"county": county},
    )
    session.execute(text("SELECT set_config('gridcase.defer_case_tallies', 'off', true)"))
    session.flush()


def write_passwords(path: Path, passwords: dict[str, str]) -> None:
    """Append new demo passwords to ``path`` (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        for acc in DEMO_ACCOUNTS:
            if acc.username in passwords:
                fh.write(f"{acc.username}\t{passwords[acc.username]}\t{acc.role.label}\n")
