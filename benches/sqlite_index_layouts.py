#!/usr/bin/env python3
"""Index layouts of the access log table, compared outside Rust with Python's sqlite3.

The same rows as benches/access_log.rs (5,000 skewed clients, half signed in, 1M rows over
seven days, batches of 8,192), one layout per run; prints rows/s over the inserts only:

    python3 benches/sqlite_index_layouts.py cur 1000000      # (ip, time), (user, time)
    PAGE=32768 python3 benches/sqlite_index_layouts.py day   # led by the day: the crate's

Layouts: cur, day, hour, none (no client or user index). PAGE sets the page size, CACHE the
page cache in KiB. The database goes to /tmp/ing_<layout>.db.
"""
import os
import random
import sqlite3
import sys
import time

DAY = 86_400_000_000
LEADS = {"day": f"time_us / {DAY}, ", "hour": "time_us / 3600000000, ", "cur": ""}

layout = sys.argv[1]
total = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
path = f"/tmp/ing_{layout}.db"
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(path + suffix):
        os.remove(path + suffix)
db = sqlite3.connect(path, isolation_level=None)
db.execute(f"PRAGMA page_size={os.environ.get('PAGE', '4096')}")
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute(f"PRAGMA cache_size=-{os.environ.get('CACHE', '65536')}")
db.execute("PRAGMA wal_autocheckpoint=10000")
db.execute(
    "CREATE TABLE log (id INTEGER PRIMARY KEY, time_us BIGINT NOT NULL, method TEXT NOT NULL,"
    " path TEXT NOT NULL, query TEXT, body TEXT, referrer TEXT, ip TEXT NOT NULL,"
    " user_agent TEXT, session TEXT, user_id TEXT, status INTEGER NOT NULL,"
    " duration_us BIGINT NOT NULL, bytes_sent BIGINT NOT NULL, decision TEXT,"
    " enforced BOOLEAN, score INTEGER, reason TEXT)"
)
db.execute("CREATE INDEX lt ON log (time_us, decision, enforced, ip, path)")
if layout in LEADS:
    lead = LEADS[layout]
    db.execute(f"CREATE INDEX li ON log ({lead}ip, time_us)")
    db.execute(f"CREATE INDEX lu ON log ({lead}user_id, time_us) WHERE user_id IS NOT NULL")

rng = random.Random(1)
end = int(time.time()) * 1_000_000
span = 7 * DAY


def skewed(n):
    return min(rng.randrange(n), rng.randrange(n))


INSERT = (
    "INSERT INTO log (time_us, method, path, query, body, referrer, ip, user_agent, session,"
    " user_id, status, duration_us, bytes_sent, decision, enforced, score, reason)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
spent = 0.0
for first in range(0, total, 8192):
    rows = []
    for j in range(first, min(total, first + 8192)):
        c = skewed(5000)
        rows.append((
            end - span + span // total * j, "GET", f"/shop/items/{skewed(500)}/detail",
            "page=1&sort=price", None, "https://www.example.com/shop/search?q=shoes",
            f"10.0.{c >> 8}.{c & 255}", UA, "s%016x" % rng.getrandbits(64),
            f"user{c // 2}" if c % 2 == 0 else None, 200, 1234, 5678, "allow", 1, 3, None,
        ))
    started = time.perf_counter()
    db.execute("BEGIN")
    db.executemany(INSERT, rows)
    db.execute("COMMIT")
    spent += time.perf_counter() - started
print(f"{layout}: {total} rows, {total / spent:.0f} rows/s (inserts only)")
