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
