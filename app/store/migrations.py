"""The schema, one numbered step per change. Applied in order; each recorded in `migrations`."""

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
]
