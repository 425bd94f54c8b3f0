"""The schema, one numbered step per change. Applied in order; each recorded in `migrations`."""

from ..hit_fields import check_view

SQLITE = [
    # 1: hits, append-only; domains.
    """
    CREATE TABLE hits (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        received_at TEXT NOT NULL,
        node TEXT NOT NULL,
        host TEXT NOT NULL,
        domain TEXT,
        scheme TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        query TEXT NOT NULL,
        http_version TEXT NOT NULL,
        client_ip TEXT,
        client_port INTEGER,
        peer_ip TEXT,
        peer_port INTEGER,
        server_port INTEGER,
        headers TEXT NOT NULL,
        user_agent TEXT,
        body_size INTEGER NOT NULL,
        body_sha256 TEXT,
        status INTEGER NOT NULL,
        duration_ms REAL NOT NULL,
        error TEXT
    );
    CREATE INDEX hits_received_at ON hits (received_at);
    CREATE INDEX hits_client_ip ON hits (client_ip, received_at);
    CREATE INDEX hits_domain ON hits (domain, received_at);
    -- Evidence is never edited in place.
    CREATE TRIGGER hits_no_update BEFORE UPDATE ON hits
    BEGIN SELECT RAISE(ABORT, 'hits are append-only'); END;
    CREATE TABLE domains (
        name TEXT PRIMARY KEY,
        agency TEXT,
        case_ref TEXT,
        legal_basis TEXT,
        language TEXT,
        status INTEGER,
        blocked_by TEXT,
        active INTEGER NOT NULL DEFAULT 1,
        notes TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 2: what the management API needs. client_ip_key: the client IP as 32 hex digits (IPv6, or
    # IPv4-mapped), so a CIDR is one indexed range; indexes end in id for keyset pages; API tokens
    # (only hashes kept); the audit log, which nothing may change or delete.
    """
    ALTER TABLE hits ADD COLUMN client_ip_key TEXT;
    DROP TRIGGER hits_no_update;
    UPDATE hits SET client_ip_key = ip_key(client_ip);
    CREATE TRIGGER hits_no_update BEFORE UPDATE ON hits
    BEGIN SELECT RAISE(ABORT, 'hits are append-only'); END;
    DROP INDEX hits_client_ip;
    DROP INDEX hits_domain;
    CREATE INDEX hits_client_ip ON hits (client_ip, id);
    CREATE INDEX hits_client_ip_key ON hits (client_ip_key, id);
    CREATE INDEX hits_domain ON hits (domain, id);
    CREATE INDEX hits_client_port ON hits (client_port, id);
    CREATE INDEX hits_node ON hits (node, id);
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'investigator', 'auditor')),
        secret_sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        revoked_at TEXT,
        last_used_at TEXT
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        token_name TEXT,
        role TEXT,
        client_ip TEXT,
        method TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        filters TEXT NOT NULL,
        rows INTEGER,
        status INTEGER NOT NULL
    );
    CREATE INDEX audit_at ON audit (at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # 3: config-file seeds are applied once per name, so a domain removed later stays removed.
    """
    CREATE TABLE domain_seeds (name TEXT PRIMARY KEY, seeded_at TEXT NOT NULL);
    INSERT INTO domain_seeds SELECT name, created_at FROM domains;
    """,
    # 4: IPTV clients. client_kind (browser, xtream_api, playlist, epg, stream, stalker, enigma2,
    # other); account (Xtream username or Stalker MAC) and device fields (JSON) to link a hit to a
    # subscriber; password_hmac, a keyed hash of a password sent, never the password.
    """
    ALTER TABLE hits ADD COLUMN client_kind TEXT;
    ALTER TABLE hits ADD COLUMN account TEXT;
    ALTER TABLE hits ADD COLUMN device TEXT;
    ALTER TABLE hits ADD COLUMN password_hmac TEXT;
    CREATE INDEX hits_account ON hits (account, id);
    CREATE INDEX hits_client_kind ON hits (client_kind, id);
    """,
    # 5: tamper evidence (see evidence.py): each node's hash chain, and checkpoints of its head.
    """
    ALTER TABLE hits ADD COLUMN prev_hash TEXT;
    ALTER TABLE hits ADD COLUMN hash TEXT;
    CREATE TABLE checkpoints (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        node TEXT NOT NULL,
        at TEXT NOT NULL,
        count INTEGER NOT NULL,
        last_id INTEGER NOT NULL,
        head TEXT NOT NULL,
        public_key TEXT,
        signature TEXT
    );
    CREATE INDEX checkpoints_node ON checkpoints (node, id);
    CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
    """,
    # 6: where the client is: country and city, autonomous system and its organisation (geo.py).
    """
    ALTER TABLE hits ADD COLUMN country TEXT;
    ALTER TABLE hits ADD COLUMN city TEXT;
    ALTER TABLE hits ADD COLUMN asn INTEGER;
    ALTER TABLE hits ADD COLUMN as_org TEXT;
    CREATE INDEX hits_asn ON hits (asn, id);
    CREATE INDEX hits_country ON hits (country, id);
    """,
    # 7: the seized panel's own subscriber records, imported per case, that hits are matched to.
    """
    CREATE TABLE subjects (
        case_ref TEXT NOT NULL,
        account TEXT NOT NULL,
        attributes TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        PRIMARY KEY (case_ref, account)
    );
    CREATE INDEX subjects_account ON subjects (account);
    """,
    # 8: retention. A purge deletes the oldest stretch of a node's chain and records where it cut,
    # so what remains still verifies from that point.
    """
    CREATE TABLE purges (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        node TEXT NOT NULL,
        at TEXT NOT NULL,
        cutoff TEXT NOT NULL,
        first_id INTEGER NOT NULL,
        last_id INTEGER NOT NULL,
        hits INTEGER NOT NULL,
        chained INTEGER NOT NULL,
        head_at_cut TEXT NOT NULL
    );
    CREATE TRIGGER purges_no_update BEFORE UPDATE ON purges
    BEGIN SELECT RAISE(ABORT, 'purge records are append-only'); END;
    CREATE TRIGGER purges_no_delete BEFORE DELETE ON purges
    BEGIN SELECT RAISE(ABORT, 'purge records are append-only'); END;
    """,
    # 9: the journal (journal.py) is ingested by its own process: how far each journal segment has
    # been read, committed with the rows it produced (so a crash repeats nothing), and the stretches
    # of a segment that could not be read (torn or corrupt records), kept as evidence of the gap.
    """
    CREATE TABLE journal_progress (
        segment TEXT PRIMARY KEY,
        offset INTEGER NOT NULL,
        records INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE journal_gaps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        segment TEXT NOT NULL,
        offset INTEGER NOT NULL,
        length INTEGER NOT NULL,
        reason TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE TRIGGER journal_gaps_no_update BEFORE UPDATE ON journal_gaps
    BEGIN SELECT RAISE(ABORT, 'journal gaps are append-only'); END;
    CREATE TRIGGER journal_gaps_no_delete BEFORE DELETE ON journal_gaps
    BEGIN SELECT RAISE(ABORT, 'journal gaps are append-only'); END;
    """,
]


# 10 on: compact hits (layout.py). The record's columns, as the view `hits` gives them back from
# `hit_rows` (alias r) and `header_sets` (alias s); in the order of the old table's columns. Frozen
# with migration 10: a change to the view is a new migration that replaces it (hits_view; the
# current view is HITS_VIEW_COLUMNS, after the last such migration).
def _hex(column: str) -> str:
    return f"CASE WHEN typeof(r.{column}) = 'blob' THEN lower(hex(r.{column})) ELSE r.{column} END"


def received_text(value: str) -> str:
    """SQL: a stored received_us back to '2026-11-23T06:00:25.123456Z'."""
    return (f"CASE WHEN typeof({value}) = 'integer' THEN strftime('%Y-%m-%dT%H:%M:%S', {value} / 1000000, 'unixepoch') "
            f"|| printf('.%06dZ', {value} % 1000000) ELSE {value} END")


V10_VIEW_COLUMNS = {
    "id": "r.id",
    "uid": _hex("uid"),
    "received_at": received_text("r.received_us"),
    "node": "r.node",
    "host": "s.host",
    "domain": "r.domain",
    "scheme": "s.scheme",
    "method": "r.method",
    "path": "r.path",
    "query": "r.query",
    "http_version": "s.http_version",
    "client_ip": "r.client_ip",
    "client_port": "r.client_port",
    "peer_ip": "CASE WHEN typeof(r.peer_ip) = 'blob' THEN r.client_ip ELSE r.peer_ip END",
    "peer_port": "CASE WHEN typeof(r.peer_port) = 'blob' THEN r.client_port ELSE r.peer_port END",
    "server_port": "r.server_port",
    "headers": "s.headers",
    "user_agent": "s.user_agent",
    "body_size": "r.body_size",
    "body_sha256": _hex("body_sha256"),
    "status": "r.status",
    "duration_ms": "CASE WHEN typeof(r.duration_us) = 'integer' THEN r.duration_us / 1000.0 ELSE r.duration_us END",
    "error": "r.error",
    "client_ip_key": _hex("client_ip_key"),
    **{c: f"r.{c}" for c in ("client_kind", "account", "device")},
    "password_hmac": _hex("password_hmac"),
    "prev_hash": _hex("prev_hash"),
    "hash": _hex("hash"),
    **{c: f"r.{c}" for c in ("country", "city", "asn", "as_org")},
}
HITS_FROM = "hit_rows r LEFT JOIN header_sets s ON s.id = r.header_set"
_OLD_HITS = tuple(V10_VIEW_COLUMNS)  # the columns of the table `hits` of versions 6 to 9

_NEW_RECEIVED = (  # in pure SQL: canonical UTC text from 1970 on -> microseconds; anything else as given
    "CASE WHEN NEW.received_at GLOB "
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z' "
    "AND substr(NEW.received_at, 1, 4) >= '1970' "
    "AND strftime('%Y-%m-%dT%H:%M:%S', CAST(strftime('%s', substr(NEW.received_at, 1, 19)) AS INTEGER), 'unixepoch') "
    "= substr(NEW.received_at, 1, 19) "
    "THEN CAST(strftime('%s', substr(NEW.received_at, 1, 19)) AS INTEGER) * 1000000 + CAST(substr(NEW.received_at, 21, 6) AS INTEGER) "
    "ELSE NEW.received_at END")
_NEW_SET = "CAST(json_array(NEW.headers, NEW.user_agent, NEW.host, NEW.scheme, NEW.http_version) AS BLOB)"
_NEW_DURATION = "CAST(round(NEW.duration_ms * 1000) AS INTEGER)"
_NEW_VALUES = {
    "id": "NEW.id", "received_us": _NEW_RECEIVED,
    "peer_ip": "CASE WHEN NEW.peer_ip = NEW.client_ip THEN X'' ELSE NEW.peer_ip END",
    "peer_port": "CASE WHEN NEW.peer_port = NEW.client_port THEN X'' ELSE NEW.peer_port END",
    "header_set": f"(SELECT id FROM header_sets WHERE digest = {_NEW_SET})",
    "duration_us": f"CASE WHEN typeof(NEW.duration_ms) IN ('integer', 'real') AND {_NEW_DURATION} / 1000.0 = NEW.duration_ms "
                   f"THEN {_NEW_DURATION} ELSE NEW.duration_ms END",
    **{c: f"CAST(NEW.{c} AS TEXT)" for c in ("uid", "body_sha256", "client_ip_key", "password_hmac", "prev_hash", "hash")},
}
_ROW_COLUMNS = ("id", "uid", "received_us", "node", "domain", "method", "path", "query",
                "client_ip", "client_port", "peer_ip", "peer_port", "server_port", "header_set", "body_size", "body_sha256",
                "status", "duration_us", "error", "client_ip_key", "client_kind", "account", "device", "password_hmac",
                "prev_hash", "hash", "country", "city", "asn", "as_org")

COMPACT_TABLES = """
CREATE TABLE header_sets (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,  -- SHA-256 of the JSON array of the other columns; through the view, that JSON itself
    headers TEXT NOT NULL,
    user_agent TEXT,
    -- how the request came: a box sends these the same each time, with the same headers
    host TEXT NOT NULL,
    scheme TEXT NOT NULL,
    http_version TEXT NOT NULL
);
CREATE TRIGGER header_sets_no_update BEFORE UPDATE ON header_sets
BEGIN SELECT RAISE(ABORT, 'header sets are append-only'); END;
CREATE TRIGGER header_sets_no_delete BEFORE DELETE ON header_sets
BEGIN SELECT RAISE(ABORT, 'header sets are append-only'); END;
CREATE TABLE hit_rows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid BLOB NOT NULL,            -- 16 bytes, or the text as given (see layout.py for every BLOB column)
    received_us BLOB NOT NULL,    -- microseconds since the epoch, or the text as given
    node TEXT NOT NULL,
    domain TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL,
    client_ip TEXT,
    client_port INTEGER,
    peer_ip BLOB,                 -- X'' when equal to client_ip
    peer_port BLOB,               -- X'' when equal to client_port
    server_port INTEGER,
    header_set INTEGER NOT NULL REFERENCES header_sets (id),
    body_size INTEGER NOT NULL,
    body_sha256 BLOB,
    status INTEGER NOT NULL,
    duration_us BLOB NOT NULL,    -- microseconds when that is exact, else duration_ms as given
    error TEXT,
    client_ip_key BLOB,
    client_kind TEXT,
    account TEXT,
    device TEXT,
    password_hmac BLOB,
    prev_hash BLOB,
    hash BLOB,
    country TEXT,
    city TEXT,
    asn INTEGER,
    as_org TEXT
);
"""
COMPACT_INDEXES = """
CREATE UNIQUE INDEX hit_rows_uid ON hit_rows (uid);
CREATE INDEX hit_rows_received ON hit_rows (received_us, id);
CREATE INDEX hit_rows_client_ip_key ON hit_rows (client_ip_key, id);
CREATE INDEX hit_rows_domain ON hit_rows (domain, id);
CREATE INDEX hit_rows_client_port ON hit_rows (client_port, id);
CREATE INDEX hit_rows_node ON hit_rows (node, id);
CREATE INDEX hit_rows_account ON hit_rows (account, id);
CREATE INDEX hit_rows_client_kind ON hit_rows (client_kind, id);
CREATE INDEX hit_rows_asn ON hit_rows (asn, id);
CREATE INDEX hit_rows_country ON hit_rows (country, id);
-- Evidence is never edited in place, and deleted only by a recorded purge (retention.py).
CREATE TRIGGER hit_rows_no_update BEFORE UPDATE ON hit_rows
BEGIN SELECT RAISE(ABORT, 'hits are append-only'); END;
CREATE TRIGGER hit_rows_no_delete BEFORE DELETE ON hit_rows
WHEN NOT EXISTS (SELECT 1 FROM purges p WHERE p.node = OLD.node AND OLD.id BETWEEN p.first_id AND p.last_id)
BEGIN SELECT RAISE(ABORT, 'hits are append-only: only a recorded purge deletes them'); END;
"""


def hits_view(view_columns: dict, row_columns: tuple) -> str:
    """The view `hits` of `view_columns` and its triggers: an INSERT into it writes `row_columns` of
    hit_rows (NEW.<name> unless _NEW_VALUES says otherwise), the other changes are refused."""
    return f"""
CREATE VIEW hits AS SELECT {', '.join(f'{sql} AS {name}' for name, sql in view_columns.items())} FROM {HITS_FROM};
CREATE TRIGGER hits_insert INSTEAD OF INSERT ON hits
BEGIN
    INSERT OR IGNORE INTO header_sets (digest, headers, user_agent, host, scheme, http_version)
    VALUES ({_NEW_SET}, NEW.headers, NEW.user_agent, NEW.host, NEW.scheme, NEW.http_version);
    INSERT INTO hit_rows ({', '.join(row_columns)})
    VALUES ({', '.join(_NEW_VALUES.get(c, f'NEW.{c}') for c in row_columns)});
END;
CREATE TRIGGER hits_no_update INSTEAD OF UPDATE ON hits
BEGIN SELECT RAISE(ABORT, 'hits are append-only'); END;
CREATE TRIGGER hits_no_delete INSTEAD OF DELETE ON hits
BEGIN SELECT RAISE(ABORT, 'hits are append-only'); END;
"""


COMPACT_VIEW = hits_view(V10_VIEW_COLUMNS, _ROW_COLUMNS)


def statements(script: str) -> list[str]:
    """A script's statements, one by one (executescript would commit the migration's transaction)."""
    import sqlite3

    done, current = [], ""
    for line in script.strip().splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            done.append(current.strip())
            current = ""
    assert not current.strip(), f"incomplete statement: {current}"
    return done


async def compact_hits(db) -> None:
    """Migration 10: the table `hits` becomes `hit_rows` plus `header_sets` (layout.py), and `hits` the
    view that reads them back. Every row is copied in id order with its id, uid and hashes, so the
    chains verify as before; the id sequence goes on where it was."""
    from .layout import STORED, HeaderSets, write_rows

    for statement in statements(COMPACT_TABLES):
        await db.execute(statement)
    old = {row[1] for row in await (await db.execute("PRAGMA table_info(hits)")).fetchall()}
    select = ", ".join(c if c in old else "NULL" for c in STORED)
    header_sets, after = HeaderSets(), 0
    while True:
        async with db.execute(f"SELECT id, {select} FROM hits WHERE id > ? ORDER BY id LIMIT 5000", (after,)) as cursor:
            rows = await cursor.fetchall()
        if not rows:
            break
        await write_rows(db, header_sets, rows, with_id=True, columns=_ROW_COLUMNS[1:])  # hit_rows as of 10
        after = rows[-1][0]
    sequence = await (await db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'hits'")).fetchone()
    await db.execute("DROP TABLE hits")
    await db.execute("DELETE FROM sqlite_sequence WHERE name = 'hit_rows'")
    await db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('hit_rows', ?)", (max(sequence[0] if sequence else 0, after),))
    for statement in statements(COMPACT_INDEXES) + statements(COMPACT_VIEW):
        await db.execute(statement)


SQLITE.append(compact_hits)

# 11: node leases: a node id is held by one running deployment at a time (its lease renewed while
# it runs); a second one claiming it is refused at start.
SQLITE.append("""
CREATE TABLE node_leases (
    node TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
""")

# 12: nothing outside the chain. `legacy_unhashed`: per node, the last id of the hits stored before
# this database had the chain (schema < 5), recorded once, now; verify accepts unhashed hits up to
# it and no others (a forged unhashed hit before a chain's start used to pass as such). Checkpoints
# can no longer be deleted (they could be updated only, until now).
SQLITE.append("""
CREATE TABLE legacy_unhashed (node TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
INSERT INTO legacy_unhashed (node, last_id)
    SELECT r.node, MAX(r.id) FROM hit_rows r
    WHERE r.hash IS NULL AND r.id > 0
      AND NOT EXISTS (SELECT 1 FROM hit_rows h WHERE h.node = r.node AND h.hash IS NOT NULL AND h.id < r.id)
    GROUP BY r.node;
CREATE TRIGGER legacy_unhashed_no_insert BEFORE INSERT ON legacy_unhashed
BEGIN SELECT RAISE(ABORT, 'legacy_unhashed is written once, by its migration'); END;
CREATE TRIGGER legacy_unhashed_no_update BEFORE UPDATE ON legacy_unhashed
BEGIN SELECT RAISE(ABORT, 'legacy_unhashed is append-only'); END;
CREATE TRIGGER legacy_unhashed_no_delete BEFORE DELETE ON legacy_unhashed
BEGIN SELECT RAISE(ABORT, 'legacy_unhashed is append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
""")

# 13: signed purges: a purge record carries the signer's public key and its Ed25519 signature
# (evidence.purge_message), so a purge record forged to cover deleted hits fails a pinned verify.
SQLITE.append("""
ALTER TABLE purges ADD COLUMN public_key TEXT;
ALTER TABLE purges ADD COLUMN signature TEXT;
""")

# 14: a checkpoint records the clock's measured state when it was made (clock.py: the kernel's
# synchronisation flag and error estimate, and any step of the wall clock since the last one).
SQLITE.append("""
ALTER TABLE checkpoints ADD COLUMN clock TEXT;
""")

# 15: trusted time: a checkpoint may carry an RFC 3161 timestamp token from a TSA (tsa.py: the DER
# TimeStampResp over SHA-256 of its message, base64), which verify checks against the TSA's certificate.
SQLITE.append("""
ALTER TABLE checkpoints ADD COLUMN tsa_token TEXT;
""")

# 16: chain format 2 (chain_format.py: a fixed field list, integers only, each record hashed to a
# leaf). Hits stored until now keep format 1: `chain_v1` records, per node, the last id hashed so.
SQLITE.append("""
CREATE TABLE chain_v1 (node TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
INSERT INTO chain_v1 (node, last_id)
    SELECT node, MAX(id) FROM hit_rows WHERE hash IS NOT NULL AND id > 0 GROUP BY node;
CREATE TRIGGER chain_v1_no_update BEFORE UPDATE ON chain_v1
BEGIN SELECT RAISE(ABORT, 'chain_v1 is append-only'); END;
CREATE TRIGGER chain_v1_no_delete BEFORE DELETE ON chain_v1
BEGIN SELECT RAISE(ABORT, 'chain_v1 is append-only'); END;
""")

# 17: a purge names the checkpoint that covers its cut (the first one whose chain passes through it,
# signed before the purge); verify checks the cut against it.
SQLITE.append("""
ALTER TABLE purges ADD COLUMN checkpoint_id INTEGER;
""")

# 18: the server's IP, the local address each connection arrived at (hit_fields: server_ip), in
# hit_rows (its last column) and in the view `hits`, before server_port; the view is made anew.
_V10_ITEMS = list(V10_VIEW_COLUMNS.items())
_AT_SERVER_PORT = list(V10_VIEW_COLUMNS).index("server_port")
# The current view: every reader's columns (sqlite.py).
HITS_VIEW_COLUMNS = dict([*_V10_ITEMS[:_AT_SERVER_PORT], ("server_ip", "r.server_ip"), *_V10_ITEMS[_AT_SERVER_PORT:]])
check_view("SQLite", HITS_VIEW_COLUMNS)
SQLITE.append(f"""
ALTER TABLE hit_rows ADD COLUMN server_ip TEXT;
DROP VIEW hits;
{hits_view(HITS_VIEW_COLUMNS, (*_ROW_COLUMNS, "server_ip"))}
""")
