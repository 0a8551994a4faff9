"""The results store of a campaign: one SQLite database per campaign directory (stdlib ``sqlite3``).

Layout of ``DIR/campaign.sqlite`` (schema version :data:`SCHEMA_VERSION`):

  * ``schema_version(version)``: one row;
  * ``settings(key, value)``: the campaign settings and the code versions it was started with, values as JSON
    (``claims``, ``shards``, ``examples``, ``profile``, ``dps``, ``shrink_seconds``, ``seed``, ``versions``);
  * ``shards(claim_id, shard, seed, verdict, examples, worst_margin, seconds, session, finished_at, result)``:
    one row per finished shard, ``result`` the shard's plain result as JSON; ``session`` numbers the client
    invocations (1 for the first run, 2 for the first ``--resume``, ...).

Writes come from the client only, one transaction per shard, in WAL mode, so ``python -m proofs_check report
DIR`` can read the store while a campaign writes to it. A shard row is inserted once: a second result for the
same (claim, shard) is an error, never an overwrite. Opening a store runs ``PRAGMA integrity_check`` and checks
the schema; a damaged or truncated file raises :class:`StoreError` and is never merged.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Any

__all__ = ["SCHEMA_VERSION", "DB_NAME", "StoreError", "Store", "db_path"]

SCHEMA_VERSION = 1
DB_NAME = "campaign.sqlite"

_TABLES = {
    "schema_version": {"version"},
    "settings": {"key", "value"},
    "shards": {"claim_id", "shard", "seed", "verdict", "examples", "worst_margin", "seconds", "session",
               "finished_at", "result"},
}

_DDL = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shards (
    claim_id TEXT NOT NULL,
    shard INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    examples INTEGER NOT NULL,
    worst_margin REAL,
    seconds REAL NOT NULL,
    session INTEGER NOT NULL,
    finished_at REAL NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (claim_id, shard)
);
"""

_RESULT_KEYS = {"claim_id", "shard", "seed", "verdict", "examples", "worst_margin", "counterexample", "seconds"}


class StoreError(RuntimeError):
    """The store is missing, damaged, of another schema, or its settings differ from the requested campaign."""


def db_path(directory: str | os.PathLike) -> str:
    return os.path.join(os.fspath(directory), DB_NAME)


class Store:
    """An open campaign database. Use :meth:`create` for a new campaign and :meth:`open` for an existing one."""

    def __init__(self, conn: sqlite3.Connection, path: str):
        self._conn = conn
        self.path = path

    # --- opening ------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, directory, settings: dict) -> "Store":
        """A new store in ``directory`` (created if needed); refuses to overwrite an existing database."""
        os.makedirs(directory, exist_ok=True)
        path = db_path(directory)
        if os.path.exists(path) and os.path.getsize(path) > 0:
            raise StoreError(f"{path} already holds a campaign: continue it with --resume {directory}, "
                             f"or choose another --dir (or --force-new to start over)")
        conn = cls._connect(path)
        with conn:
            conn.executescript(_DDL)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            conn.executemany("INSERT INTO settings (key, value) VALUES (?, ?)",
                             [(k, json.dumps(v, sort_keys=True)) for k, v in settings.items()])
        return cls(conn, path)

    @classmethod
    def open(cls, directory) -> "Store":
        """An existing store, checked: file header, ``PRAGMA integrity_check``, schema version and tables,
        and every stored shard result parses. Raises :class:`StoreError` describing what is wrong."""
        path = db_path(directory)
        if not os.path.exists(path):
            raise StoreError(f"no campaign database at {path}")
        with open(path, "rb") as fh:
            head = fh.read(100)
        if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
            raise StoreError(f"{path} is not an SQLite database (truncated or overwritten); not merged")
        try:
            conn = cls._connect(path)
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if rows != ["ok"]:
                raise StoreError(f"{path} is corrupt (PRAGMA integrity_check: {'; '.join(map(str, rows[:5]))}); "
                                 f"not merged")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            for name, cols in _TABLES.items():
                if name not in tables:
                    raise StoreError(f"{path}: table {name!r} is missing; not a campaign database of schema "
                                     f"{SCHEMA_VERSION}")
                have = {r[1] for r in conn.execute(f"PRAGMA table_info({name})")}
                if not cols <= have:
                    raise StoreError(f"{path}: table {name!r} lacks columns {sorted(cols - have)}")
            ver = conn.execute("SELECT version FROM schema_version").fetchall()
            if ver != [(SCHEMA_VERSION,)]:
                raise StoreError(f"{path}: schema version {ver} is not {SCHEMA_VERSION}")
            store = cls(conn, path)
            store.settings()
            store.results()  # parses every row
            return store
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is corrupt or truncated ({exc}); not merged") from exc

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        conn.isolation_level = ""  # transactions opened by `with conn:` (one per shard)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- contents -----------------------------------------------------------------------------------------
    def settings(self) -> dict:
        try:
            return {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM settings")}
        except json.JSONDecodeError as exc:
            raise StoreError(f"{self.path}: a settings value is not JSON ({exc}); not merged") from exc

    def next_session(self) -> int:
        (n,) = self._conn.execute("SELECT COALESCE(MAX(session), 0) FROM shards").fetchone()
        return int(n) + 1

    def done(self) -> set[tuple[str, int]]:
        """(claim id, shard index) of every stored shard."""
        return {(c, int(s)) for c, s in self._conn.execute("SELECT claim_id, shard FROM shards")}

    def rows(self) -> list[tuple]:
        """(claim id, shard, session, finished_at) of every stored shard, ordered (tests count recomputation)."""
        return list(self._conn.execute("SELECT claim_id, shard, session, finished_at FROM shards "
                                       "ORDER BY claim_id, shard"))

    def add(self, result: dict, *, session: int) -> None:
        """Store one finished shard in its own transaction."""
        with self._conn:
            self._conn.execute(
                "INSERT INTO shards (claim_id, shard, seed, verdict, examples, worst_margin, seconds, session, "
                "finished_at, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (result["claim_id"], int(result["shard"]), int(result["seed"]), result["verdict"],
                 int(result["examples"]), result["worst_margin"], float(result["seconds"]), int(session),
                 time.time(), json.dumps(result, sort_keys=True, allow_nan=False, default=str)),
            )

    def results(self) -> list[dict]:
        """Every stored shard result (plain dicts), ordered by (claim id, shard)."""
        out = []
        for cid, shard, text in self._conn.execute("SELECT claim_id, shard, result FROM shards ORDER BY claim_id, shard"):
            try:
                res = json.loads(text)
            except json.JSONDecodeError as exc:
                raise StoreError(f"{self.path}: result of shard {cid}/{shard} is not JSON ({exc}); not merged") from exc
            if not isinstance(res, dict) or not _RESULT_KEYS <= set(res) or (res["claim_id"], res["shard"]) != (cid, shard):
                raise StoreError(f"{self.path}: result of shard {cid}/{shard} is malformed; not merged")
            out.append(res)
        return out


def describe_difference(stored: dict, wanted: dict) -> list[str]:
    """Human-readable differences between stored and requested settings (empty when they agree)."""
    diffs = []
    for key in sorted(set(stored) | set(wanted)):
        a, b = stored.get(key), wanted.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    diffs.append(f"{key}.{k}: stored {a.get(k)!r}, now {b.get(k)!r}")
        else:
            diffs.append(f"{key}: stored {a!r}, now {b!r}")
    return diffs
