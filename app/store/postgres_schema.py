"""PostgreSQL's schema, one numbered step per change, each applied in a transaction and recorded in
`schema_migrations` (its own numbering: SQLite's steps are in migrations.py).

The same tables as SQLite's, in PostgreSQL's types: a hit row keeps hashes and ids as bytea,
received_at as timestamptz (microseconds, exact), the client as text (what the chain hashes), as
16 key bytes (client_ip_key) and as inet (CIDR filters). The view `hits` gives every reader the
record exactly as SQLite's view does. What is evidence is append-only, enforced by triggers."""

from datetime import datetime, timezone

from ..hit_fields import check_view

# The record's columns as text, read from hit_rows r and header_sets s: the view's columns, and
# what queries select (with their WHERE on r's own columns, so its indexes serve the filters).
RECORD_SQL = {
    "id": "r.id",
    "uid": "encode(r.uid, 'hex')",
    "received_at": "to_char(r.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
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
    "peer_ip": "COALESCE(r.peer_ip, CASE WHEN r.peer_same THEN r.client_ip END)",
    "peer_port": "COALESCE(r.peer_port, CASE WHEN r.peer_same THEN r.client_port END)",
    "server_ip": "r.server_ip",
    "server_port": "r.server_port",
    "headers": "s.headers",
    "user_agent": "s.user_agent",
    "body_size": "r.body_size",
    "body_sha256": "encode(r.body_sha256, 'hex')",
    "status": "r.status",
    "duration_ms": "r.duration_ms",
    "error": "r.error",
    "client_ip_key": "encode(r.client_ip_key, 'hex')",
    "client_kind": "r.client_kind",
    "account": "r.account",
    "device": "r.device",
    "password_hmac": "encode(r.password_hmac, 'hex')",
    "prev_hash": "encode(r.prev_hash, 'hex')",
    "hash": "encode(r.hash, 'hex')",
    "country": "r.country",
    "city": "r.city",
    "asn": "r.asn",
    "as_org": "r.as_org",
}
check_view("PostgreSQL", RECORD_SQL)
HITS_FROM = "hit_rows r LEFT JOIN header_sets s ON s.id = r.header_set"


def utc_text_sql(expression: str) -> str:
    """SQL: a timestamptz as the stored UTC text."""
    return f"to_char(({expression}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def month_of(moment: datetime) -> datetime:
    """The first instant (UTC) of the month `moment` falls in: where its hit_rows partition starts."""
    return moment.astimezone(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def partition_name(start: datetime) -> str:
    return f"hit_rows_{start:%Y_%m}"


def partition_sql(start: datetime) -> str:
    """hit_rows' partition for the month beginning at `start`. A TRUNCATE trigger of its own, since
    the parent's statement triggers do not reach a partition truncated directly."""
    name = partition_name(start)
    return f"""
    CREATE TABLE IF NOT EXISTS {name} PARTITION OF hit_rows
        FOR VALUES FROM ('{start.isoformat()}') TO ('{next_month(start).isoformat()}');
    CREATE OR REPLACE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name}
        FOR EACH STATEMENT EXECUTE FUNCTION seized_refuse('hits are append-only');
    """


def _append_only(table: str, what: str) -> str:
    return f"""
    CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION seized_refuse('{what} are append-only');
    CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION seized_refuse('{what} are append-only');
    """


POSTGRES = [
    # 1: everything SQLite's ten steps built, at once.
    """
    CREATE FUNCTION seized_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation'; END $$;

    CREATE TABLE domains (
        name text PRIMARY KEY,
        agency text, case_ref text, legal_basis text, language text, status integer, blocked_by text,
        active integer NOT NULL DEFAULT 1,
        notes text NOT NULL DEFAULT '',
        created_at text NOT NULL,
        updated_at text NOT NULL
    );
    -- every node's management process LISTENs, and rewrites its listeners' domain list at once
    CREATE FUNCTION seized_domains_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('seized_domains', ''); RETURN NULL; END $$;
    CREATE TRIGGER domains_changed AFTER INSERT OR UPDATE OR DELETE ON domains
        FOR EACH STATEMENT EXECUTE FUNCTION seized_domains_changed();
    CREATE TABLE domain_seeds (name text PRIMARY KEY, seeded_at text NOT NULL);
    CREATE TABLE tokens (
        id text PRIMARY KEY,
        name text NOT NULL UNIQUE,
        role text NOT NULL CHECK (role IN ('admin', 'investigator', 'auditor')),
        secret_sha256 text NOT NULL,
        created_at text NOT NULL,
        expires_at text, revoked_at text, last_used_at text
    );
    CREATE TABLE audit (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at text NOT NULL,
        token_name text, role text, client_ip text,
        method text NOT NULL, endpoint text NOT NULL, filters text NOT NULL,
        rows bigint,
        status integer NOT NULL
    );
    CREATE INDEX audit_at ON audit (at);
    CREATE TABLE checkpoints (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        node text NOT NULL, at text NOT NULL, count bigint NOT NULL, last_id bigint NOT NULL,
        head text NOT NULL, public_key text, signature text,
        clock text,  -- the clock's measured state when it was made (clock.py), JSON
        tsa_token text  -- an RFC 3161 TimeStampResp over its message (tsa.py), DER in base64
    );
    CREATE TABLE subjects (
        case_ref text NOT NULL, account text NOT NULL, attributes text NOT NULL, imported_at text NOT NULL,
        PRIMARY KEY (case_ref, account)
    );
    CREATE TABLE purges (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        node text NOT NULL, at text NOT NULL, cutoff text NOT NULL,
        first_id bigint NOT NULL, last_id bigint NOT NULL, hits bigint NOT NULL, chained bigint NOT NULL,
        head_at_cut text NOT NULL, public_key text, signature text, checkpoint_id bigint
    );
    CREATE TABLE legacy_unhashed (  -- filled only by a copy of an SQLite database that has such hits
        node text PRIMARY KEY, last_id bigint NOT NULL
    );
    CREATE TABLE chain_v1 (  -- hits in chain format 1: filled only by a copy of an older SQLite database
        node text PRIMARY KEY, last_id bigint NOT NULL
    );
    CREATE TABLE node_leases (
        node text PRIMARY KEY, holder text NOT NULL, claimed_at text NOT NULL, expires_at text NOT NULL
    );
    CREATE TABLE journal_progress (
        segment text PRIMARY KEY, "offset" bigint NOT NULL, records bigint NOT NULL, updated_at text NOT NULL
    );
    CREATE TABLE journal_gaps (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        segment text NOT NULL, "offset" bigint NOT NULL, length bigint NOT NULL, reason text NOT NULL, at text NOT NULL
    );
    CREATE TABLE header_sets (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        digest bytea NOT NULL UNIQUE,
        headers text NOT NULL, user_agent text, host text NOT NULL, scheme text NOT NULL, http_version text NOT NULL
    );
    CREATE TABLE hit_rows (
        id bigint GENERATED BY DEFAULT AS IDENTITY,
        uid bytea NOT NULL,
        received_at timestamptz NOT NULL,
        node text NOT NULL,
        domain text,
        method text NOT NULL,
        path text NOT NULL,
        query text NOT NULL,
        client_ip text,
        client_inet inet,
        client_ip_key bytea,
        client_port integer,
        peer_same boolean NOT NULL DEFAULT false,  -- peer_ip and peer_port are the client's (then null here)
        peer_ip text,
        peer_port integer,
        server_ip text,  -- the local address the connection arrived at, as text (what the chain hashes)
        server_port integer,
        header_set bigint NOT NULL REFERENCES header_sets (id),
        body_size bigint NOT NULL,
        body_sha256 bytea,
        status integer NOT NULL,
        duration_ms double precision NOT NULL,
        error text,
        client_kind text,
        account text,
        device text,
        password_hmac bytea,
        prev_hash bytea,
        hash bytea,
        country text,
        city text,
        asn bigint,
        as_org text,
        PRIMARY KEY (id, received_at)
    ) PARTITION BY RANGE (received_at);  -- a month a partition (partition_sql): retention drops whole ones
    CREATE UNIQUE INDEX hit_rows_uid ON hit_rows (uid, received_at);  -- a record's copies share its time
    CREATE INDEX hit_rows_received ON hit_rows (received_at, id);
    CREATE INDEX hit_rows_client_inet ON hit_rows (client_inet, id);
    CREATE INDEX hit_rows_domain ON hit_rows (domain, id);
    CREATE INDEX hit_rows_client_port ON hit_rows (client_port, id);
    CREATE INDEX hit_rows_node ON hit_rows (node, id);
    CREATE INDEX hit_rows_account ON hit_rows (account, id);

    CREATE FUNCTION seized_hit_rows_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM purges p WHERE p.node = OLD.node
                                        AND OLD.id BETWEEN p.first_id AND p.last_id) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'hits are append-only: only a recorded purge deletes them' USING ERRCODE = 'restrict_violation';
    END $$;
    CREATE TRIGGER hit_rows_append_only BEFORE UPDATE OR DELETE ON hit_rows
        FOR EACH ROW EXECUTE FUNCTION seized_hit_rows_guard();
    CREATE TRIGGER hit_rows_no_truncate BEFORE TRUNCATE ON hit_rows
        FOR EACH STATEMENT EXECUTE FUNCTION seized_refuse('hits are append-only');
    """
    + _append_only("audit", "audit records")
    + _append_only("checkpoints", "checkpoints")
    + _append_only("purges", "purge records")
    + _append_only("legacy_unhashed", "legacy unhashed ranges")
    + _append_only("chain_v1", "chain format 1 ranges")
    + _append_only("journal_gaps", "journal gaps")
    + _append_only("header_sets", "header sets")
    + "CREATE VIEW hits AS SELECT " + ", ".join(f"{sql} AS {name}" for name, sql in RECORD_SQL.items())
    + f" FROM {HITS_FROM};"
    + """
    CREATE TRIGGER hits_append_only INSTEAD OF UPDATE OR DELETE ON hits
        FOR EACH ROW EXECUTE FUNCTION seized_refuse('hits are append-only');
    """,
]
