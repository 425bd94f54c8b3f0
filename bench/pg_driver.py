"""Which PostgreSQL driver ingests hits fastest: asyncpg or psycopg 3, by COPY or by multi-row
inserts, on rows shaped like ours (30 columns, 5,000 per transaction as ingest commits them).
Prints rows/s (wall) and the client's CPU µs per row (what the ingest process pays).

    .venv/bin/python bench/pg_driver.py [--dsn postgresql://postgres@127.0.0.1:5432/test] [--rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import time

import asyncpg
import psycopg

TABLE = "bench_driver_rows"
COLUMNS = (
    ("uid", "bytea"), ("received_us", "bigint"), ("node", "text"), ("domain", "text"), ("method", "text"),
    ("path", "text"), ("query", "text"), ("client_ip", "inet"), ("client_port", "integer"), ("peer_ip", "inet"),
    ("peer_port", "integer"), ("server_port", "integer"), ("header_set", "bigint"), ("body_size", "bigint"),
    ("body_sha256", "bytea"), ("status", "integer"), ("duration_us", "bigint"), ("error", "text"),
    ("client_kind", "text"), ("account", "text"), ("device", "text"), ("password_hmac", "bytea"),
    ("hash", "bytea"), ("country", "text"), ("city", "text"), ("asn", "integer"), ("as_org", "text"),
)
NAMES = [name for name, _ in COLUMNS]
BATCH = 5000


def make_rows(count: int) -> list[tuple]:
    return [(os.urandom(16), 1_790_000_000_000_000 + i, "node-a", "seized-iptv.example", "GET",
             f"/live/user{i}/***/{i}.ts", "", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1024 + i % 60000,
             None, None, 80, 1, 0, None, 451, 1200, None, "xtream", f"user{i % 5000}", None, os.urandom(32),
             os.urandom(32), "IT", "Rome", 3269, "Telecom Italia") for i in range(count)]


def create_sql() -> str:
    return (f"DROP TABLE IF EXISTS {TABLE}; CREATE UNLOGGED TABLE {TABLE} (id bigserial PRIMARY KEY, "
            + ", ".join(f"{n} {t}" for n, t in COLUMNS) + ")")


def cpu() -> float:
    return time.process_time()


async def with_asyncpg(dsn: str, rows: list[tuple], copy: bool) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(create_sql())
        insert = f"INSERT INTO {TABLE} ({', '.join(NAMES)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(NAMES)))})"
        for start in range(0, len(rows), BATCH):
            async with conn.transaction():
                part = rows[start:start + BATCH]
                if copy:
                    await conn.copy_records_to_table(TABLE, records=part, columns=NAMES)
                else:
                    await conn.executemany(insert, part)
    finally:
        await conn.close()


def with_psycopg(dsn: str, rows: list[tuple], copy: bool) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(create_sql())
        conn.commit()
        insert = f"INSERT INTO {TABLE} ({', '.join(NAMES)}) VALUES ({', '.join('%s' for _ in NAMES)})"
        for start in range(0, len(rows), BATCH):
            part = rows[start:start + BATCH]
            with conn.transaction(), conn.cursor() as cursor:
                if copy:
                    with cursor.copy(f"COPY {TABLE} ({', '.join(NAMES)}) FROM STDIN (FORMAT BINARY)") as writer:
                        writer.set_types([t for _, t in COLUMNS])
                        for row in part:  # its inet dumper takes ipaddress objects, not text
                            writer.write_row((*row[:7], ipaddress.ip_address(row[7]), *row[8:]))
                else:
                    cursor.executemany(insert, part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    rows = make_rows(args.rows)
    print(f"{'driver':<34}{'rows/s':>10}{'client CPU µs/row':>20}")
    runs = [
        ("asyncpg COPY (binary)", lambda: asyncio.run(with_asyncpg(args.dsn, rows, True))),
        ("asyncpg executemany (pipelined)", lambda: asyncio.run(with_asyncpg(args.dsn, rows, False))),
        ("psycopg 3 COPY (binary)", lambda: with_psycopg(args.dsn, rows, True)),
        ("psycopg 3 executemany (pipelined)", lambda: with_psycopg(args.dsn, rows, False)),
    ]
    for name, run in runs:
        wall, used = time.perf_counter(), cpu()
        run()
        wall, used = time.perf_counter() - wall, cpu() - used
        print(f"{name:<34}{args.rows / wall:>10,.0f}{used / args.rows * 1e6:>20.1f}")
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


if __name__ == "__main__":
    main()
