#!/usr/bin/env python3
"""The figures of README's "Deploying" section: W1 and W3 served by the
primary vs by a streaming read replica, and W4 (login) before and after the
login limiter moved into PostgreSQL (9b29255), with the limits lifted and
as a login flood under the default limits.

It starts a private PostgreSQL primary (initdb, fsync off) and a replica of
it (pg_basebackup -R) on free ports under /tmp, as tests/api/read_replicas/
cluster.rs does, so the machine's own cluster is not touched; it stops them
and removes everything at exit. Run it with `bench/deploy.sh` (see README.md,
"Benchmarks"). wrk, both clusters and the server share this machine's cores.
"""

import argparse
import atexit
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run as bench  # noqa: E402

LIMITER_COMMIT = "9b29255"
LOCK_PATH = "/tmp/bench.lock"
READS_DB = "deploy_reads"
LOGIN_DBS = {"before": "deploy_login_before", "after": "deploy_login_after"}
CLUSTER_OPTIONS = "-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c hot_standby=on"
# An idle backend reports its transaction counts within this many seconds.
STATS_SETTLE_SECONDS = 11
FLOOD_CONNECTIONS = 32


def log(message):
    print(f"[deploy] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_binaries():
    """The newest installed PostgreSQL's binaries, as cluster.rs picks them."""
    if os.environ.get("PG_BIN_DIR"):
        return Path(os.environ["PG_BIN_DIR"])
    versions = sorted(int(p.name) for p in Path("/usr/lib/postgresql").iterdir() if p.name.isdigit())
    return Path(f"/usr/lib/postgresql/{versions[-1]}/bin")


class Cluster:
    """A primary and one streaming replica of it, private to this run."""

    def __init__(self):
        self.bin = postgres_binaries()
        # PostgreSQL refuses to run as root: root hands it to `postgres`.
        self.user = pwd.getpwnam("postgres") if os.getuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="customer-api-deploy-pg-"))
        if self.user:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.ports = {"primary": free_port(), "replica": free_port()}
        atexit.register(self.remove)
        self.watchdog()
        primary = self.data("primary")
        self.pg("initdb", "-D", primary, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start("primary")
        # initdb's pg_hba.conf allows replication from 127.0.0.1 with trust,
        # and wal_level=replica is the default.
        self.pg("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.ports["primary"]), "-U", "postgres",
                "-D", self.data("replica"), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync")
        self.start("replica")
        self.version = self.psql("replica", "postgres", "SHOW server_version")
        log(f"primary on port {self.ports['primary']}, replica on {self.ports['replica']} ({self.dir})")

    def data(self, name):
        return str(self.dir / name)

    def url(self, name, db=""):
        return f"postgres://postgres@127.0.0.1:{self.ports[name]}" + (f"/{db}" if db else "")

    def pg(self, program, *args, check=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        ids = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[]) if self.user else {}
        return subprocess.run([str(self.bin / program), *args], env=env, cwd="/", stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, check=check, **ids)

    def start(self, name):
        self.pg("pg_ctl", "start", "-w", "-t", "60", "-D", self.data(name), "-l", str(self.dir / f"{name}.log"),
                "-o", f"-p {self.ports[name]} -k {self.dir} {CLUSTER_OPTIONS}")

    def psql(self, name, db, sql):
        return bench.run(["psql", self.url(name, db), "-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql]).stdout.strip()

    def cpu_seconds(self, name):
        """CPU time of the postmaster and everything it started: its own, its
        ended children's (cutime, cstime), and its live children's."""
        postmaster = int((self.dir / name / "postmaster.pid").read_text().split()[0])
        clock = os.sysconf("SC_CLK_TCK")
        ticks = sum(int(x) for x in proc_stat(postmaster)[11:15])
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                fields = proc_stat(int(entry.name))
                if fields and int(fields[1]) == postmaster:
                    ticks += int(fields[11]) + int(fields[12])
        return ticks / clock

    def transactions(self, name, db):
        return int(self.psql(name, "postgres", "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                                               f"WHERE datname = '{db}'"))

    def until_replayed(self):
        target = self.psql("primary", "postgres", "SELECT pg_current_wal_lsn()")
        for _ in range(600):
            behind = self.psql("replica", "postgres", f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn())")
            if float(behind) <= 0:
                return
            time.sleep(0.5)
        raise SystemExit(f"the replica did not replay up to {target} within 5 minutes")

    def watchdog(self):
        """Stops both servers and removes the directory once this process is
        gone, however it ends (atexit does not run on SIGKILL)."""
        pg_ctl = self.bin / "pg_ctl"
        script = (f"while [ -d /proc/{os.getpid()} ]; do sleep 1; done; "
                  f"for d in replica primary; do '{pg_ctl}' stop -m immediate -D '{self.dir}'/$d; done; "
                  f"rm -rf '{self.dir}'")
        ids = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[]) if self.user else {}
        subprocess.Popen(["/bin/sh", "-c", script], cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, **ids)

    def remove(self):
        for name in ("replica", "primary"):
            if (self.dir / name / "postmaster.pid").exists():
                self.pg("pg_ctl", "stop", "-m", "immediate", "-D", self.data(name), check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def proc_stat(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


@contextmanager
def machine_lock():
    """Another benchmark may share these cores: one measures at a time."""
    with open(LOCK_PATH, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for {LOCK_PATH}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start_server(db, binary, log_path, **settings):
    server = bench.Server(db, free_port(), "warn", log_path, binary=binary, **settings)
    atexit.register(lambda: server.proc.poll() is None and server.stop())
    return server


def load(db, binary, n, workdir):
    """As run.py's main() does: a first server start migrates the database
    and bootstraps the admin, whose hash every loaded guest agent gets."""
    bench.psql("postgres", f"CREATE DATABASE {db}")
    server = start_server(db, binary, workdir / f"load-{db}.log")
    try:
        admin_hash = bench.psql(db, "SELECT password_hash FROM agents WHERE username = 'admin'")
        started = time.monotonic()
        bench.run(["psql", f"{bench.PG}/{db}", "-q", "-v", f"n={n}", "-v", f"hash={admin_hash}",
                   "-f", str(BENCH / "load.sql")])
    finally:
        server.stop()
    # Autovacuum would otherwise wake up in the middle of a run.
    bench.psql(db, "VACUUM ANALYZE")
    log(f"{db}: {n} customers loaded in {time.monotonic() - started:.1f} s (and VACUUM ANALYZE)")


def costs(server, cluster):
    return dict(statements=server.statements(),
                replica_statements=server.metric("customer_api_db_replica_statements_total"),
                hashes=server.metric("customer_api_password_hashes_total"),
                cpu=server.cpu_seconds(),
                primary_cpu=cluster.cpu_seconds("primary"), replica_cpu=cluster.cpu_seconds("replica"))


def priced(result, before, after):
    """The run's costs per request answered, and the clusters' CPU as a share of one core."""
    n = max(result["requests"], 1)
    seconds = result["duration_us"] / 1e6
    per = lambda key: (after[key] - before[key]) / n
    result.update(statements=per("statements"), replica_statements=per("replica_statements"),
                  hashes=per("hashes"), cpu_ms=per("cpu") * 1000,
                  primary_cpu_ms=per("primary_cpu") * 1000, replica_cpu_ms=per("replica_cpu") * 1000,
                  primary_cpu_pct=(after["primary_cpu"] - before["primary_cpu"]) * 100 / seconds,
                  replica_cpu_pct=(after["replica_cpu"] - before["replica_cpu"]) * 100 / seconds,
                  server_cpu_pct=(after["cpu"] - before["cpu"]) * 100 / seconds)
    return result


def measured(server, cluster, name, body, args, **kw):
    """A warm-up, then the run, under the machine's lock; the costs are read around the run alone."""
    with machine_lock():
        warm = bench.wrk(server, body, args.connections, args.warmup, **kw)
        before = costs(server, cluster)
        result = bench.wrk(server, body, args.connections, args.duration, **kw)
        after = costs(server, cluster)
    result = priced(result, before, after)
    result.update(connections=args.connections, warm_requests=warm["requests"])
    log(f"{name}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
        f"SQL/request {result['statements']:.2f} primary + {result['replica_statements']:.2f} replica, "
        f"CPU primary {result['primary_cpu_pct']:.0f}%, replica {result['replica_cpu_pct']:.0f}%")
    if result["errors"] or result["status_errors"]:
        raise SystemExit(f"{name}: {result['errors']} failed requests, {result['status_errors']} non-2xx")
    return result


def settled_transactions(cluster, db):
    time.sleep(STATS_SETTLE_SECONDS)
    return {name: cluster.transactions(name, db) for name in ("primary", "replica")}


def until_replica_serves(server, token):
    for _ in range(100):
        if server.metric("customer_api_db_replica_healthy") == 1:
            before = server.metric("customer_api_db_replica_statements_total")
            server.gql(bench.W1, token=token)
            if server.metric("customer_api_db_replica_statements_total") > before:
                return
        time.sleep(0.3)
    raise SystemExit("the server never read from its replica; see its log")


def reads_section(cluster, binary, args, workdir):
    """W1 and W3 from two servers running side by side on the same data: one
    with only DATABASE_URL, one also given the replica."""
    servers = {
        "primary": start_server(READS_DB, binary, workdir / "reads-primary.log"),
        "replica": start_server(READS_DB, binary, workdir / "reads-replica.log",
                                DATABASE_REPLICA_URLS=cluster.url("replica", READS_DB)),
    }
    try:
        tokens = {where: bench.admin_token(server) for where, server in servers.items()}
        until_replica_serves(servers["replica"], tokens["replica"])
        workloads = (("W1", {"query": bench.W1}, {}),
                     ("W3", {"query": bench.W3, "variables": {"id": "__ID__"}},
                      dict(mode="random_customer", max_id=args.customers)))
        rows = []
        # Transactions are counted by each cluster between settled readings, so
        # that each difference holds one run (its warm-up included) and no more.
        snapshot = settled_transactions(cluster, READS_DB)
        for workload, body, options in workloads:
            for round_ in (1, 2):
                for where, server in servers.items():
                    result = measured(server, cluster, f"{workload} served by the {where}, run {round_}", body,
                                      args, token=tokens[where], **options)
                    after = settled_transactions(cluster, READS_DB)
                    sent = result["requests"] + result["warm_requests"]
                    result["transactions"] = {c: (after[c] - snapshot[c]) / sent for c in after}
                    snapshot = after
                    rows.append(dict(result, workload=workload, where=where, round=round_))
    finally:
        for server in servers.values():
            server.stop()
    return rows


def login_section(cluster, binaries, args, workdir):
    """W4 as run.py measures it (limits lifted), each server on its own database."""
    login = {"query": bench.W4, "variables": {"u": "bench-customer-1", "p": bench.ADMIN_PASSWORD}}
    servers = {when: start_server(LOGIN_DBS[when], binaries[when], workdir / f"w4-{when}.log")
               for when in ("before", "after")}
    rows = []
    try:
        for server in servers.values():
            # From an address it has never logged in from, a user's first
            # concurrent attempts count against the per-username limit (5),
            # and the server before 9b29255 kept refusing W4's burst for good:
            # one login first makes 127.0.0.1 the user's own, as it is for a
            # user who logs in again.
            server.gql(login["query"], login["variables"])
        for round_ in (1, 2):
            for when, server in servers.items():
                result = measured(server, cluster, f"W4 {when} {LIMITER_COMMIT}, run {round_}", login, args,
                                  count='"token"')
                if result["counted"] < 0.99 * result["requests"]:
                    raise SystemExit(f"W4 {when}: {result['requests'] - result['counted']} logins got no token")
                rows.append(dict(result, when=when, round=round_))
    finally:
        for server in servers.values():
            server.stop()
    return rows


def flood_section(cluster, binaries, args, workdir):
    """Vector (2a) of run.py's abuse section: failed logins of unknown
    usernames from one address, against each server with the default limits."""
    for db in LOGIN_DBS.values():
        # W4's logins were counted in the database by the server after.
        bench.psql(db, "DO $$ BEGIN IF to_regclass('login_attempts') IS NOT NULL THEN "
                       "TRUNCATE login_attempts, login_known_addresses; END IF; END $$")
    servers = {when: start_server(LOGIN_DBS[when], binaries[when], workdir / f"flood-{when}.log",
                                  LOGIN_MAX_FAILURES_PER_ADDRESS=None, LOGIN_MAX_ATTEMPTS_PER_ADDRESS=None)
               for when in ("before", "after")}
    body = {"query": bench.W4, "variables": {"u": "__USERNAME__", "p": "wrong-password"}}
    sample = {"query": bench.W4, "variables": {"u": "flood-sample", "p": "wrong-password"}}
    rows = []
    try:
        # Round 1 starts from an empty limiter; round 2 finds the address refused.
        for round_ in (1, 2):
            for when, server in servers.items():
                with machine_lock():
                    before = costs(server, cluster)
                    result = bench.wrk(server, body, FLOOD_CONNECTIONS, args.flood_duration,
                                       mode="unique_username", tag=f"flood-{when}-{round_}",
                                       count="too many failed logins")
                    after = costs(server, cluster)
                result = priced(result, before, after)
                result.update(when=when, round=round_, connections=FLOOD_CONNECTIONS,
                              refused=result["counted"] / max(result["requests"], 1),
                              answer=bench.describe(*bench.request(server, "POST", "/graphql", sample)))
                log(f"flood {when}, round {round_}: {result['rps']:.0f} req/s, {result['refused']:.1%} refused, "
                    f"{result['statements']:.3f} SQL/request, {result['cpu_ms']:.3f} server CPU ms/request, "
                    f"{result['primary_cpu_ms']:.3f} database CPU ms/request; {result['answer']}")
                rows.append(result)
    finally:
        for server in servers.values():
            server.stop()
    return rows


def report(r, args, loads):
    best = lambda rows: max(rows, key=lambda x: x["rps"])
    reads, logins, flood = r["reads"], r["logins"], r["flood"]
    lines = [
        bench.machine_line(os.cpu_count()) + f" {r['date']}. Server: `{r['binary']}` (after {LIMITER_COMMIT}); "
        f"before {LIMITER_COMMIT}: {r['before']} (its parent, release build from a git worktree). "
        f"PostgreSQL: a private primary (initdb, **fsync=off**, max_connections=200, defaults otherwise) and a "
        f"streaming replica of it (pg_basebackup -R, hot_standby) on the same machine. {args.customers} customers "
        f"(bench/load.sql, then VACUUM ANALYZE) in each database. Runs of {args.duration} s after {args.warmup} s "
        f"of warm-up at {args.connections} connections, alternating, best of 2. "
        f"Load average (1 min) when the run started and ended: {loads[0]:.1f}, {loads[1]:.1f}.",
        "",
        "**Reads: the primary vs a read replica.** Two servers on the same database, running side by side: one "
        "with only `DATABASE_URL` (the primary serves), one also with `DATABASE_REPLICA_URLS` = the replica. "
        "SQL/request is the server's own count per pool (`customer_api_db_statements_total` for the primary, "
        "`customer_api_db_replica_statements_total` for the replica); transactions/request is each cluster's "
        "`pg_stat_database` (xact_commit + xact_rollback) for the database, over the run and its warm-up, "
        f"read {STATS_SETTLE_SECONDS} s after it (health checks and the webhook poll included); CPU is each "
        "cluster's postmaster and backends (`/proc`), in % of one core over the run.",
        "",
        "| Workload | Served by | Run | req/s | p50 ms | p99 ms | SQL/request on primary | SQL/request on replica | "
        "Transactions/request primary | Transactions/request replica | Server CPU % | Primary CPU % | Replica CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in reads:
        lines.append(f"| {x['workload']} | {x['where']} | {x['round']} | {x['rps']:.0f} | {x['p50_ms']:.2f} | "
                     f"{x['p99_ms']:.2f} | {x['statements']:.2f} | {x['replica_statements']:.2f} | "
                     f"{x['transactions']['primary']:.2f} | {x['transactions']['replica']:.2f} | "
                     f"{x['server_cpu_pct']:.0f} | {x['primary_cpu_pct']:.0f} | {x['replica_cpu_pct']:.0f} |")
    lines += ["", "| Best of 2 | Primary req/s | Replica req/s | Replica / primary |", "|---|---|---|---|"]
    for workload in ("W1", "W3"):
        p = best([x for x in reads if x["workload"] == workload and x["where"] == "primary"])
        q = best([x for x in reads if x["workload"] == workload and x["where"] == "replica"])
        lines.append(f"| {workload} | {p['rps']:.0f} | {q['rps']:.0f} | {q['rps'] / p['rps']:.2f} |")
    lines += ["", "- One machine of 2 cores runs wrk, the server, the primary and the replica: a replica here adds "
                  "no capacity, it only moves the same work to another PostgreSQL on the same cores. The ratio "
                  "above is therefore the cost of the routing (choosing a replica, its pool, the lag checks), not "
                  "the gain of a replica on hardware of its own, where the primary's share of the reads goes "
                  "elsewhere."]
    lines += ["", f"**W4 login, before and after {LIMITER_COMMIT}** (the limiter counting in PostgreSQL), with "
                  "the login limits lifted as run.py's W4 does (`LOGIN_MAX_FAILURES_PER_ADDRESS` and "
                  "`LOGIN_MAX_ATTEMPTS_PER_ADDRESS` = 1,000,000): `bench-customer-1` with the right password, "
                  "each server on a database of its own migrations with the same data, only the primary. "
                  "Database CPU is the primary's, per login.", "",
              "| Server | Run | req/s | p50 ms | p99 ms | SQL statements/login | argon2/login | "
              "Server CPU ms/login | Database CPU ms/login |",
              "|---|---|---|---|---|---|---|---|---|"]
    names = {"before": f"before ({r['before']})", "after": f"after ({r['binary_commit']})"}
    for x in logins:
        lines.append(f"| {names[x['when']]} | {x['round']} | {x['rps']:.1f} | {x['p50_ms']:.0f} | {x['p99_ms']:.0f} | "
                     f"{x['statements']:.2f} | {x['hashes']:.2f} | {x['cpu_ms']:.1f} | {x['primary_cpu_ms']:.2f} |")
    b = best([x for x in logins if x["when"] == "before"])
    a = best([x for x in logins if x["when"] == "after"])
    lines += ["", f"- Best of 2: before {b['rps']:.1f} logins/s, after {a['rps']:.1f} (after / before "
                  f"{a['rps'] / b['rps']:.2f}); SQL statements per login {b['statements']:.2f} → {a['statements']:.2f}."]
    lines += ["", f"**Login flood with the default limits**: unknown usernames (a new one per request), wrong "
                  f"password, all from 127.0.0.1, {FLOOD_CONNECTIONS} connections for {args.flood_duration} s, no "
                  f"warm-up (run.py's abuse vector 2a). Round 1 starts from an empty limiter (the address's first "
                  f"failures are answered before it is refused); round 2 follows on the same server, the address "
                  f"already refused. Refused: answers saying \"too many failed logins\".", "",
              "| Server | Round | req/s | The server answers | Refused | SQL statements/request | argon2/request | "
              "Server CPU ms/request | Database CPU ms/request | Database CPU % |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for x in flood:
        lines.append(f"| {names[x['when']]} | {x['round']} | {x['rps']:.0f} | {x['answer'].replace('|', '/')} | "
                     f"{x['refused']:.1%} | {x['statements']:.4f} | {x['hashes']:.4f} | {x['cpu_ms']:.3f} | "
                     f"{x['primary_cpu_ms']:.4f} | {x['primary_cpu_pct']:.1f} |")
    lines += ["", f"- The script took {r['seconds']:.0f} s (building the binary before {LIMITER_COMMIT} excluded "
                  "when it was cached).", ""]
    return lines


def binary_label(binary):
    match = re.fullmatch(r"customer-api-([0-9a-f]{7,40})", binary.name)
    return match.group(1) if match else "current"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", default=str(bench.SERVER),
                        help="the server to measure (the current one); built by nobody here")
    parser.add_argument("--binary-label", help="the commit the binary was built from (default: from a name "
                        "like customer-api-<commit>, else \"current\")")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each run")
    parser.add_argument("--flood-duration", type=int, default=5, help="seconds per login-flood run")
    parser.add_argument("--output", default=str(BENCH / "deploy-results.md"))
    args = parser.parse_args()
    binary = Path(args.binary).resolve()
    if not binary.exists():
        raise SystemExit(f"no server binary at {binary}: build it first (cargo build --release) or pass --binary")
    # atexit runs on SIGTERM too, so the clusters never outlive the script.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started, loads = time.monotonic(), [os.getloadavg()[0]]
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    before_binary, before_commit = bench.baseline_binary(LIMITER_COMMIT + "^")
    binaries = {"before": before_binary, "after": binary}
    workdir = Path(tempfile.mkdtemp(prefix="customer-api-deploy-"))
    atexit.register(shutil.rmtree, workdir, True)
    cluster = Cluster()
    bench.PG = cluster.url("primary")

    load(READS_DB, binary, args.customers, workdir)
    for when, db in LOGIN_DBS.items():
        load(db, binaries[when], args.customers, workdir)
    cluster.until_replayed()
    replica_rows = cluster.psql("replica", READS_DB, "SELECT count(*) FROM customers")
    log(f"the replica has replayed the loads ({replica_rows} customers in {READS_DB})")

    results = dict(date=date, binary=str(binary), before=before_commit,
                   binary_commit=args.binary_label or binary_label(binary))
    results["reads"] = reads_section(cluster, binary, args, workdir)
    results["logins"] = login_section(cluster, binaries, args, workdir)
    results["flood"] = flood_section(cluster, binaries, args, workdir)
    results["seconds"] = time.monotonic() - started
    loads.append(os.getloadavg()[0])
    text = "\n".join(report(results, args, loads))
    print(text)
    Path(args.output).write_text(text)
    log(f"wrote {args.output}")


if __name__ == "__main__":
    main()
