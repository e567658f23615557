#!/usr/bin/env python3
"""The benchmark suite: loads a data set, measures the SQL ceiling with
pgbench, then the server with wrk, then what abusive requests cost it, and
prints the tables of results; then, in a database of its own, the search
section (`customers(filter: ...)`, written to bench/search-results.md).
The events section (`--events-only`, written to bench/events-results.md)
runs only when asked for: it builds a second server, the baseline without
the event log, from a git worktree.

Run it with `bench/run.sh` (see README.md, "Benchmarks"). Everything runs on
this machine: the load tool, PostgreSQL and the server share its cores.
"""

import argparse
import atexit
import base64
import contextlib
import hashlib
import hmac
import http.client as httpclient
import http.server as httpserver
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SERVER = ROOT / "target" / "release" / "customer-api"
ADMIN_PASSWORD = "bench-admin-password"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")

FIELDS = ("id username name detail webhookMethod webhookUri lineSecret lineToken "
          "permissionIds tmCreate tmUpdate tmDelete guestAgent { id username name permission }")
W1 = "{ customers(first: 50) { edges { cursor node { %s } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }" % FIELDS
W2 = "query($after: String) { customers(first: 50, after: $after) { edges { cursor node { %s } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }" % FIELDS
W3 = "query($id: UUID!) { customer(id: $id) { %s } }" % FIELDS
W4 = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }"
W5 = "mutation($u: String!, $p: String!) { createCustomer(input: {username: $u, password: $p, name: \"Bench\"}) { customer { id } } }"


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def psql(db, sql, *extra):
    out = run(["psql", f"{PG}/{db}", "-Atq", "-v", "ON_ERROR_STOP=1", *extra, "-c", sql])
    return out.stdout.strip()


def http(url, body=None, token=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read().decode()


class Server:
    def __init__(self, db, port, rust_log, log_path, binary=None, **settings):
        """`settings` are environment variables; by default the login limits
        are lifted, as the bench logs in thousands of times from one address.
        `binary` runs another build of the server (the events section's baseline)."""
        limits = {"LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000", "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "1000000"}
        env = dict(os.environ,
                   DATABASE_URL=f"{PG}/{db}", LISTEN_ADDR=f"127.0.0.1:{port}",
                   ADMIN_PASSWORD=ADMIN_PASSWORD, TOKEN_SECRET="bench-token-secret-at-least-32-bytes-long",
                   RUST_LOG=rust_log, NO_COLOR="1", **{**limits, **settings})
        for name, value in list(env.items()):
            if value is None:
                del env[name]
        self.started = time.monotonic()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([str(binary or SERVER)], env=env, stdout=self.log, stderr=self.log)
        for _ in range(300):
            try:
                http(self.url + "/readyz", timeout=1)
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the server exited; see {log_path}")
                time.sleep(0.1)
        raise SystemExit("the server did not become ready")

    def gql(self, query, variables=None, token=None):
        body = json.loads(http(self.url + "/graphql", {"query": query, "variables": variables or {}}, token))
        if body.get("errors"):
            raise SystemExit(f"GraphQL error: {body['errors']}")
        return body["data"]

    def metric(self, name):
        text = http(self.url + "/metrics")
        match = re.search(rf"^{name}(?:{{[^}}]*}})? ([\d.e+]+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    def statements(self):
        return int(self.metric("customer_api_db_statements_total"))

    def memory_mib(self, field):
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024

    def peak_rss_mib(self):
        return self.memory_mib("VmHWM")

    def rss_mib(self):
        return self.memory_mib("VmRSS")

    def cpu_seconds(self):
        """User and system CPU time of the whole process (every thread)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


def wrk_env(body, token=None, mode="fixed", max_id=1, tag="0", method="POST", headers=None, count=""):
    """The environment of graphql.lua; the body goes through a file, as it
    may be larger than the environment allows. With mode "bodies", `body`
    is a list of bodies, one per line of the file."""
    fd, path = tempfile.mkstemp(prefix="customer-api-body-", suffix=".json")
    atexit.register(os.unlink, path)
    with os.fdopen(fd, "w") as f:
        if mode == "bodies":
            f.write("\n".join(json.dumps(b) for b in body) + "\n")
        else:
            json.dump(body, f)
    return dict(os.environ, BENCH_BODY_FILE=path, BENCH_TOKEN=token or "",
                BENCH_MODE=mode, BENCH_MAX=str(max_id), BENCH_TAG=tag, BENCH_METHOD=method,
                BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in (headers or {}).items()), BENCH_COUNT=count)


def wrk_command(server, connections, duration, path="/graphql", threads=None):
    threads = threads or min(2, connections)
    return ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
            "--timeout", "30s", "-s", str(BENCH / "wrk" / "graphql.lua"), server.url + path]


def wrk_result(out):
    result = json.loads(out.strip().splitlines()[-1])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def wrk(server, body, connections, duration, token=None, mode="fixed", max_id=1, tag="0", path="/graphql", **kw):
    env = wrk_env(body, token, mode, max_id, tag, **kw)
    return wrk_result(run(wrk_command(server, connections, duration, path), env=env).stdout)


def measure(server, name, body, args, connections=None, **kw):
    connections = connections or args.connections
    wrk(server, body, connections, args.warmup, **kw)
    before = server.statements()
    result = wrk(server, body, connections, args.duration, **kw)
    result["statements"] = (server.statements() - before) / max(result["requests"], 1)
    result["connections"] = connections
    log(f"{name}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms, {result['statements']:.2f} statements/request, "
        f"{result['errors']} errors")
    if result["errors"]:
        raise SystemExit(f"{name}: {result['errors']} failed requests")
    return result


def pgbench(db, name, script, params, args, workdir, clients=None):
    clients = clients or args.connections
    path = workdir / f"{name}.sql"
    path.write_text(script)
    base = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(2, clients)), "-f", str(path)]
    for key, value in params.items():
        base += ["-D", f"{key}={value}"]
    run(base + ["-T", str(args.warmup), f"{PG}/{db}"])
    prefix = workdir / f"log-{name}"
    for stale in workdir.glob(f"log-{name}.*"):
        stale.unlink()
    out = run(base + ["-T", str(args.duration), "-l", f"--log-prefix={prefix}", f"{PG}/{db}"]).stdout
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
    latencies = []
    for log_file in workdir.glob(f"log-{name}.*"):
        for line in log_file.read_text().splitlines():
            latencies.append(int(line.split()[2]) / 1000)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    result = {"rps": tps, "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": latencies[-1],
              "p99_as_wrk_ms": p99_as_wrk(latencies, args.duration * 1000 * clients / len(latencies)),
              "statements": script.count(";"), "connections": clients}
    log(f"pgbench {name}: {tps:.0f} tx/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms "
        f"(as wrk counts it {result['p99_as_wrk_ms']:.2f} ms), max {result['max_ms']:.1f} ms")
    return result


def p99_as_wrk(latencies, interval_ms):
    """The p99 wrk would report for these latencies. wrk corrects for
    coordinated omission: a request that took v counts as well the requests
    its connection would have sent meanwhile, one per mean interval, at
    v - interval, v - 2 * interval, and so on. One long stall thus weighs
    as much as the requests it held back."""
    counted = list(latencies)
    for latency in latencies:
        held_back = latency - interval_ms
        while held_back >= interval_ms:
            counted.append(held_back)
            held_back -= interval_ms
    counted.sort()
    return counted[min(len(counted) - 1, int(0.99 * len(counted)))]


class Burners:
    """Busy loops, one per core, at the niceness of the server's argon2
    threads (HASHING_NICENESS in src/auth/password.rs): CPU-bound work of
    low priority, with no server in the way."""

    def __init__(self, cores, niceness=10):
        self.cores, self.niceness = cores, niceness

    def __enter__(self):
        self.procs = [subprocess.Popen(["nice", "-n", str(self.niceness), sys.executable, "-c", "while True: pass"])
                      for _ in range(self.cores)]
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait()


AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


def autogroup_settings():
    """The kernel settings the rows beside floods are measured under: the
    machine's own, then, where it had autogroup on and lets us turn it off
    (root), autogroup off. With autogroup on, each session (PostgreSQL's
    postmaster, the server) is a scheduling group of its own, groups share
    the CPU equally, and niceness ranks threads only within their group: the
    hashing threads at niceness 10 then rank below the server's own threads
    but not below PostgreSQL's backends. Off, niceness spans processes, as
    it does between threads of one container or one cgroup."""
    try:
        if AUTOGROUP.read_text().strip() == "1" and os.access(AUTOGROUP, os.W_OK):
            return ["", "_flat"]
    except OSError:
        pass
    return [""]


@contextlib.contextmanager
def autogroup_off(suffix):
    """Autogroup off for the rows of `suffix` "_flat", restored after."""
    if suffix != "_flat":
        yield
        return
    AUTOGROUP.write_text("0")
    try:
        yield
    finally:
        AUTOGROUP.write_text("1")


def captured_sql(log_path, since):
    text = Path(log_path).read_text()[since:]
    # tracing prints the field Debug-quoted, which reads as a JSON string.
    return [json.loads(m.group(1)) for m in re.finditer(r'statement sql=(".*")$', text, re.M)]


def placeholders(sql):
    return sorted({int(n) for n in re.findall(r"\$(\d+)", sql)})

# Issue 18, "Cheap requests that cost the server dearly": each vector is run
# against its own bound, and priced in the server's own CPU time and memory,
# and in what it does to light traffic running beside it.

# 260 KB of `a:1` arguments: 65,000 tokens, within MAX_BODY_BYTES (256 KiB).
BIG_ARGUMENTS = "{me(" + "a:1 " * 65_000 + ")}"
# A valid query of about 9,750 tokens (650 fields with two directives each).
PERSISTED_FIELDS = "username @include(if: true) @skip(if: false) " * 650
# 10,000 tokens of unknown fields in five operations: 9,950 validation errors.
UNKNOWN_FIELDS = " ".join("query q%d {me{agent{%s}}}" % (k, " ".join(f"f{j}" for j in range(1990))) for k in range(5))
# 10,000 tokens of inline fragments in three operations: within every limit,
# and the densest parsed tree per token measured (247 bytes).
DENSE = " ".join("query q%d {me{agent{%s}}}" % (k, "...{__typename} " * 830) for k in range(3))
TOTAL_COUNTS = "{ " + " ".join(f"c{i}: customers(first: 1) {{ totalCount }}" for i in range(20)) + " }"
LIGHT_CONNECTIONS = 4


def persisted_document(tag):
    return "{me{agent{%s}}} # %s" % (PERSISTED_FIELDS, tag)


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(query=None, hash_of=None):
    body = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(hash_of or query)}}}
    if query is not None:
        body["query"] = query
    return body


def request(server, method, path, body=None, headers=None):
    """One request as the load sends it: status, headers, body."""
    connection = httpclient.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=60)
    data = json.dumps(body).encode() if body is not None else None
    all_headers = dict(headers or {})
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    connection.request(method, path, body=data, headers=all_headers)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def describe(status, headers, payload):
    """What the server answered, in a few words."""
    if "json" not in headers.get("content-type", ""):
        encoding = headers.get("content-encoding")
        return f"{status}" + (f" {encoding}" if encoding else "") + f", {len(payload)} bytes"
    body = json.loads(payload)
    first = body[0] if isinstance(body, list) else body
    errors = first.get("errors") or []
    prefix = f"{status}" + (f", {len(body)} answers" if isinstance(body, list) else "")
    if not errors:
        return f"{prefix}: data"
    extensions = errors[0].get("extensions") or {}
    what = extensions.get("limit") or extensions.get("code") or ""
    message = errors[0].get("message", "")
    if what in ("", "BAD_USER_INPUT", "UNAUTHENTICATED", "SERVICE_UNAVAILABLE"):
        what = f"{what} ({message[:48]})".strip()
    more = f", {len(errors)} errors" if len(errors) > 1 else ""
    return f"{prefix}: {what}{more}"


def until_assets_are_compressed(server):
    """The GraphiQL assets are compressed at start-up on a thread of their own."""
    page = request(server, "GET", "/graphql", headers={"Accept": "text/html"})[2].decode()
    asset = re.search(r'"(/graphiql/[^"/]+/graphiql\.js)"', page).group(1)
    for _ in range(600):
        if "content-encoding" in request(server, "GET", asset, headers={"Accept-Encoding": "br"})[1]:
            return asset
        time.sleep(0.1)
    raise SystemExit("the GraphiQL assets were never compressed")


def abuse_vectors(server, token, asset):
    """Each vector: what wrk sends, and one request like it for the answer."""
    stale = re.sub(r"/graphiql/[^/]+/", "/graphiql/0123456789abcdef/", asset)
    unknown_key = "vb_" + "A" * 43
    batch = lambda entry: [entry] * 10
    persisted_query = persisted_document("vector 1c")
    registrations = [persisted(persisted_document(f"vector 4b {i}")) for i in range(6000)]

    def register_big_arguments():
        # Refused by MAX_TOKENS, so never persisted: its hash stays unknown.
        request(server, "POST", "/graphql", persisted(BIG_ARGUMENTS))

    def register_persisted():
        status, headers, payload = request(server, "POST", "/graphql", persisted(persisted_query),
                                           {"Authorization": f"Bearer {token}"})
        if "errors" in json.loads(payload):
            raise SystemExit(f"registering the persisted query failed: {payload[:300]}")

    return [
        dict(key="1a", name="(1) 260 KB document of 65,000 arguments, a new one each time",
             body={"query": "# __USERNAME__\n" + BIG_ARGUMENTS}, mode="unique_username",
             sample={"query": "# sample\n" + BIG_ARGUMENTS}),
        dict(key="1b", name="(1) hash-only batch of 10 for that document (registering it was refused)",
             body=batch(persisted(hash_of=BIG_ARGUMENTS)), prepare=register_big_arguments),
        dict(key="1c", name="(1) hash-only batch of 10 for a persisted valid 9,750-token document",
             body=batch(persisted(hash_of=persisted_query)), token=token, prepare=register_persisted),
        dict(key="1d", name="(1) 54 KB of unknown fields: 5 operations of 1,990 (9,950 validation errors)",
             body={"query": UNKNOWN_FIELDS}),
        dict(key="2a", name="(2) login flood, unknown usernames, one address (default limits)",
             body={"query": W4, "variables": {"u": "__USERNAME__", "p": "wrong-password"}},
             mode="unique_username", count="too many failed logins",
             sample={"query": W4, "variables": {"u": "flood-sample", "p": "wrong-password"}}),
        dict(key="2b", name="(2) login flood, unknown usernames, a new X-Forwarded-For address each",
             body={"query": W4, "variables": {"u": "__USERNAME__", "p": "wrong-password"}},
             mode="login_flood", count="SERVICE_UNAVAILABLE", connections=128,
             sample={"query": W4, "variables": {"u": "flood-sample", "p": "wrong-password"}},
             sample_headers={"X-Forwarded-For": "10.255.255.1"}),
        dict(key="3a", name="(3) GET graphiql.js, Accept-Encoding: br", method="GET", path=asset,
             headers={"Accept-Encoding": "br"}),
        dict(key="3b", name="(3) GET graphiql.js of another build, Accept-Encoding: br", method="GET", path=stale,
             headers={"Accept-Encoding": "br"}),
        dict(key="4a", name="(4) 40 KB documents within the limits (10,000 tokens), a new one each time",
             body={"query": DENSE + " # __USERNAME__"}, mode="unique_username",
             sample={"query": DENSE + " # sample"}),
        dict(key="4b", name="(4) persisted-query registrations of distinct 28 KB documents, a new one each time",
             body=registrations[:3000], mixed_body=registrations[3000:], mode="bodies", token=token, threads=1,
             sample=persisted(persisted_document("vector 4b sample"))),
        dict(key="5", name="(5) batch of 10 x 20 aliased customers(first: 1) { totalCount }",
             body=batch({"query": TOTAL_COUNTS}), token=token),
        dict(key="6a", name="(6) batch of 10 with a new unknown access key each time",
             body=batch({"query": "{ me { permissions } }"}), mode="unique_key",
             sample_headers={"Authorization": "Bearer vb_" + "B" * 43}),
        dict(key="6b", name="(6) batch of 10 with the same unknown access key",
             body=batch({"query": "{ me { permissions } }"}), token=unknown_key),
        dict(key="x1", name="alias flood (31 aliases)",
             body={"query": "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"}, token=token),
        dict(key="x2", name="complexity (3 x 100 customers)", body={"query": "{ " + " ".join(
            f"c{i}: customers(first: 100) {{ nodes {{ {FIELDS} }} }}" for i in range(3)) + " }"}, token=token),
        dict(key="x3", name="batch of 11", body=[{"query": "{ __typename }"}] * 11, token=token),
        dict(key="x4", name="300 KiB body", body={"query": "{ __typename }", "variables": {"pad": "x" * 300_000}},
             token=token),
    ]


def light_run(server, light, duration):
    """W3 at a few connections: the traffic that abuse must not starve."""
    return wrk(server, light["body"], LIGHT_CONNECTIONS, duration, token=light["token"],
               mode="random_customer", max_id=light["max_id"])


def run_vector(server, vector, light, duration, tag):
    """The vector alone (its cost), then beside light traffic (its harm)."""
    connections = vector.get("connections", 32)
    options = dict(token=vector.get("token"), mode=vector.get("mode", "fixed"), tag=tag,
                   method=vector.get("method", "POST"), headers=vector.get("headers"), count=vector.get("count", ""))
    path = vector.get("path", "/graphql")
    env = wrk_env(vector.get("body"), **options)
    command = wrk_command(server, connections, duration, path, vector.get("threads"))
    if "prepare" in vector:
        vector["prepare"]()
    before = dict(cpu=server.cpu_seconds(), statements=server.statements(),
                  hashes=server.metric("customer_api_password_hashes_total"))
    alone = wrk_result(run(command, env=env).stdout)
    requests_done = max(alone["requests"], 1)
    result = dict(
        alone,
        connections=connections,
        cpu_ms=(server.cpu_seconds() - before["cpu"]) * 1000 / requests_done,
        statements=(server.statements() - before["statements"]) / requests_done,
        hashes=(server.metric("customer_api_password_hashes_total") - before["hashes"]) / requests_done,
        bytes_per_response=alone["bytes"] / requests_done,
        counted_share=alone["counted"] / requests_done,
        rss_after=server.rss_mib(),
        peak=server.peak_rss_mib(),
        count=vector.get("count"),
    )
    headers = dict(vector.get("headers") or {})
    if vector.get("token"):
        headers["Authorization"] = f"Bearer {vector['token']}"
    headers.update(vector.get("sample_headers") or {})
    sample = vector.get("sample", vector.get("body"))
    result["answer"] = describe(*request(server, vector.get("method", "POST"), path,
                                         sample if vector.get("method", "POST") == "POST" else None, headers))
    background = subprocess.Popen(wrk_command(server, connections, duration + 2, path, vector.get("threads")),
                                  env=wrk_env(vector.get("mixed_body", vector.get("body")),
                                              **{**options, "tag": tag + "m"}),
                                  stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    result["light"] = light_run(server, light, duration)
    background.communicate()
    log(f"abuse {vector['key']}: {result['rps']:.0f} req/s, {result['cpu_ms']:.3f} CPU ms/request, "
        f"{result['bytes_per_response']:.0f} bytes/response, RSS {result['rss_after']:.1f} MiB, "
        f"light p99 {result['light']['p99_ms']:.2f} ms; {result['answer']}")
    return result


def open_idle(server, count):
    """`count` keep-alive connections, each after one request; returns the sockets.
    All connect first, then all send, so that their idle clocks start together."""
    port = int(server.url.rsplit(":", 1)[1])
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    for s in sockets:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sockets


def answered_and_closed(sockets, wait):
    """How many sockets got an answer, and how many the server closed, within `wait` s."""
    answered, closed = set(), set()
    with selectors.DefaultSelector() as selector:
        for s in sockets:
            selector.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and len(closed) < len(sockets):
            for key, _ in selector.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if data:
                    answered.add(s)
                else:
                    closed.add(s)
                    selector.unregister(s)
    return len(answered), len(closed)


def run_idle_vector(server, count, light, duration):
    """(7) idle keep-alive connections: their cost, and light traffic beside them."""
    cpu = server.cpu_seconds()
    sockets = open_idle(server, count)
    answered, _ = answered_and_closed(sockets, 1.5)
    rss_open = server.rss_mib()
    _, closed = answered_and_closed(sockets, 12)
    result = dict(requests=count, connections=count, rps=0.0, bytes_per_response=0.0, statements=0.0, hashes=0.0,
                  cpu_ms=(server.cpu_seconds() - cpu) * 1000 / count, rss_after=rss_open, counted_share=0.0,
                  peak=server.peak_rss_mib(),
                  answer=f"{answered} answered at once; {closed} closed by the server within 12 s")
    for s in sockets:
        s.close()
    time.sleep(0.5)
    sockets = open_idle(server, count)
    result["light"] = light_run(server, light, duration)
    for s in sockets:
        s.close()
    result["answer"] += f"; light traffic's slowest request {result['light']['max_ms'] / 1000:.2f} s"
    log(f"abuse idle {count}: {result['cpu_ms']:.3f} CPU ms/connection, RSS {rss_open:.1f} MiB, "
        f"light p99 {result['light']['p99_ms']:.2f} ms; {result['answer']}")
    return result


def abuse_section(db, args, workdir, random_max):
    # Login counts are kept in the database: W4's thousands of logins from
    # this address would otherwise refuse the section's own admin login.
    psql(db, "DO $$ BEGIN IF to_regclass('login_attempts') IS NOT NULL THEN TRUNCATE login_attempts; END IF; END $$")
    # Default login limits, and client addresses from X-Forwarded-For so that
    # one load generator can be many addresses.
    server = Server(db, args.port, "info", workdir / "abuse.log", TRUST_FORWARDED_FOR="true",
                    LOGIN_MAX_FAILURES_PER_ADDRESS=None, LOGIN_MAX_ATTEMPTS_PER_ADDRESS=None)
    try:
        return abuse_runs(server, args, random_max)
    finally:
        server.stop()


def abuse_runs(server, args, random_max):
    asset = until_assets_are_compressed(server)
    token = server.gql(f'mutation {{ login(input: {{username: "admin", password: "{ADMIN_PASSWORD}"}}) {{ token }} }}')["login"]["token"]
    # Start-up leaves memory with threads that exit after 10 s idle.
    time.sleep(max(0.0, 11 - (time.monotonic() - server.started)))
    settled_rss = server.rss_mib()
    light = dict(body={"query": W3, "variables": {"id": "__ID__"}}, token=token, max_id=random_max)
    alone = light_run(server, light, args.abuse_duration)
    log(f"light W3 alone: p50 {alone['p50_ms']:.2f} ms, p99 {alone['p99_ms']:.2f} ms")
    rows = []
    for i, vector in enumerate(abuse_vectors(server, token, asset)):
        rows.append((vector["name"], run_vector(server, vector, light, args.abuse_duration, f"abuse{i}")))
    for count in (1000, 1100):
        rows.append((f"(7) {count:,} idle keep-alive connections", run_idle_vector(
            server, count, light, args.abuse_duration if count <= 1000 else args.abuse_duration + 6)))
    peak = server.peak_rss_mib()
    log(f"abuse section done; load average {os.getloadavg()[0]:.1f}")
    return dict(rows=rows, light_alone=alone, settled_rss=settled_rss, peak_rss=peak)


# The search section: `customers(filter: ..., first: 50)` at --search-customers
# (1,000,000 by default) in a database of its own, 1% frozen and 1% deleted.

SEARCH_PAGE = ("query($filter: CustomerFilter) { customers(filter: $filter, first: 50) { %s"
               "edges { cursor node { %s } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }")
SEARCH_CHECK = "query($filter: CustomerFilter) { customers(filter: $filter, first: 50) { totalCount nodes { id status } } }"
SEARCH_DB = "customer_api_bench_search"


def search_workloads(n):
    """Each workload: its filter, whether it selects totalCount, and the
    condition (independent SQL) that the rows it lists must meet."""
    # tm_create advances one second every three rows (bench/load.sql): an
    # hour in the middle of the data is 10,800 customers.
    middle = 1640995200 + (n // 2) // 3
    start = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(middle))
    end = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(middle + 3600))
    live = "tm_delete IS NULL"
    like = lambda term: f"{live} AND (username ILIKE '%{term}%' OR name ILIKE '%{term}%')"
    return [
        dict(key="S1", name='S1 selective search "Customer 12345"', filter={"search": "Customer 12345"},
             where=like("Customer 12345"), few=True),
        dict(key="S1b", name='S1b selective search "12345" (digits only)', filter={"search": "12345"},
             where=like("12345"), few=True),
        dict(key="S2", name='S2 common search "communications"', filter={"search": "communications"},
             where=like("communications")),
        dict(key="S3", name="S3 status FROZEN", filter={"status": "FROZEN"},
             where=f"{live} AND tm_freeze IS NOT NULL", status="FROZEN"),
        dict(key="S4", name=f"S4 created in [{start[11:16]}, {end[11:16]}) on {start[:10]} (middle)",
             filter={"createdAfter": start, "createdBefore": end},
             where=f"{live} AND tm_create >= '{start}' AND tm_create < '{end}'"),
        dict(key="S5", name="S5 status DELETED", filter={"status": "DELETED"},
             where="tm_delete IS NOT NULL", status="DELETED"),
        dict(key="S6", name='S6 search "bench-customer-1" (matches among the oldest)',
             filter={"search": "bench-customer-1"}, where=like("bench-customer-1")),
        dict(key="S7", name="S7 = S1 with totalCount", filter={"search": "Customer 12345"},
             where=like("Customer 12345"), few=True, total=True),
    ]


def load_search_data(db, n, server):
    """bench/load.sql with the trigram indexes built after the rows rather
    than maintained row by row; then 1% frozen and 1% deleted, spread over
    the whole age range (every hundredth customer), and ANALYZE."""
    admin_hash = psql(db, "SELECT password_hash FROM agents WHERE username = 'admin'")
    gin = psql(db, "SELECT indexname || E'\\t' || indexdef FROM pg_indexes "
                   "WHERE tablename = 'customers' AND indexdef LIKE '% USING gin %'").splitlines()
    for line in gin:
        psql(db, f"DROP INDEX {line.split(chr(9))[0]}")
    started = time.monotonic()
    run(["psql", f"{PG}/{db}", "-q", "-v", f"n={n}", "-v", f"hash={admin_hash}", "-f", str(BENCH / "load.sql")])
    loaded = time.monotonic() - started
    log(f"search: loaded {n} customers in {loaded:.1f} s; building {len(gin)} trigram indexes")
    started = time.monotonic()
    for line in gin:
        run(["psql", f"{PG}/{db}", "-Atq", "-v", "ON_ERROR_STOP=1",
             "-c", "SET maintenance_work_mem = '256MB'", "-c", line.split(chr(9))[1]])
    indexed = time.monotonic() - started
    started = time.monotonic()
    number = "split_part(username, '-', 3)::int"
    psql(db, "UPDATE customers SET tm_freeze = tm_create + interval '30 days', tm_update = tm_create + interval '30 days' "
             f"WHERE username LIKE 'bench-customer-%' AND {number} % 100 = 50")
    psql(db, "UPDATE customers SET tm_delete = tm_create + interval '60 days', tm_update = tm_create + interval '60 days' "
             f"WHERE username LIKE 'bench-customer-%' AND {number} % 100 = 75")
    psql(db, "UPDATE agents SET tm_delete = c.tm_delete, tm_update = c.tm_delete FROM customers c "
             "WHERE agents.customer_id = c.id AND c.tm_delete IS NOT NULL AND agents.tm_delete IS NULL")
    psql(db, "VACUUM ANALYZE customers")
    psql(db, "VACUUM ANALYZE agents")
    prepared = time.monotonic() - started
    counts = psql(db, "SELECT count(*) FILTER (WHERE tm_freeze IS NOT NULL AND tm_delete IS NULL), "
                      "count(*) FILTER (WHERE tm_delete IS NOT NULL) FROM customers").split("|")
    log(f"search: indexes in {indexed:.1f} s; {counts[0]} frozen, {counts[1]} deleted, "
        f"updated and analyzed in {prepared:.1f} s")
    return dict(load_seconds=loaded, index_seconds=indexed, prepare_seconds=prepared,
                frozen=int(counts[0]), deleted=int(counts[1]))


def search_body(workload):
    total = "totalCount " if workload.get("total") else ""
    return {"query": SEARCH_PAGE % (total, FIELDS), "variables": {"filter": workload["filter"]}}


def check_search(db, server, token, w):
    """The page the server lists is the page the independent SQL condition
    selects, newest first; the statuses are the ones asked for."""
    page = server.gql(w["body"]["query"], w["body"]["variables"], token)["customers"]
    got = [e["node"]["id"] for e in page["edges"]]
    expected = psql(db, f"SELECT id FROM customers WHERE {w['where']} ORDER BY tm_create DESC, id DESC LIMIT 50").split()
    matches = int(psql(db, f"SELECT count(*) FROM customers WHERE {w['where']}"))
    if got != expected:
        raise SystemExit(f"{w['key']}: the server listed {len(got)} customers {got[:3]}..., "
                         f"the SQL condition selects {len(expected)} {expected[:3]}...")
    if w.get("few") and not 1 <= matches <= 20:
        raise SystemExit(f"{w['key']}: {matches} customers match, not 1 to 20")
    if not w.get("few") and len(got) != 50:
        raise SystemExit(f"{w['key']}: {len(got)} customers listed, not a full page")
    if w.get("total") and page["totalCount"] != matches:
        raise SystemExit(f"{w['key']}: totalCount {page['totalCount']}, but {matches} match")
    nodes = server.gql(SEARCH_CHECK, {"filter": w["filter"]}, token)["customers"]
    statuses = sorted({x["status"] for x in nodes["nodes"]})
    if w.get("status") and statuses != [w["status"]]:
        raise SystemExit(f"{w['key']}: statuses {statuses}, expected only {w['status']}")
    if not w.get("status") and "DELETED" in statuses:
        raise SystemExit(f"{w['key']}: lists deleted customers")
    if nodes["totalCount"] != matches:
        raise SystemExit(f"{w['key']}: totalCount {nodes['totalCount']}, but {matches} match")
    w["matches"], w["listed"], w["statuses"] = matches, len(got), statuses
    log(f"{w['key']}: lists {len(got)} of {matches} matching customers (statuses {', '.join(statuses)})")


def literal(value):
    return "'" + str(value).replace("'", "''") + "'"


def with_binds(sql, w):
    """The server's statement with its bind values written in (the bind
    values are not logged; they follow from the filter)."""
    f = w["filter"]
    values = {}
    rules = ((r"ILIKE \$(\d+)", lambda: literal("%" + f["search"] + "%")),
             (r'"tm_create" >= \$(\d+)', lambda: literal(f["createdAfter"]) + "::timestamptz"),
             (r'"tm_create" < \$(\d+)', lambda: literal(f["createdBefore"]) + "::timestamptz"),
             (r"LIMIT \$(\d+)", lambda: "51"),
             (r"OFFSET \$(\d+)", lambda: "0"))
    for pattern, value in rules:
        for number in re.findall(pattern, sql):
            values[int(number)] = value()
    if sorted(values) != placeholders(sql):
        raise SystemExit(f"{w['key']}: cannot fill in the binds of {sql}")
    for i in sorted(values, reverse=True):
        sql = sql.replace(f"${i}", values[i])
    return sql


def explain(db, sql):
    plan = psql(db, "EXPLAIN (ANALYZE, COSTS OFF) " + sql).splitlines()
    execution = float(re.search(r"Execution Time: ([\d.]+) ms", "\n".join(plan)).group(1))
    nodes = [l.strip().lstrip("-> ").split(" (actual")[0] for l in plan
             if (l is plan[0] or "->" in l) and "(actual" in l]
    # The top node, and the first nodes down to the one that reads the table.
    path = []
    for i, node in enumerate(nodes):
        path.append(node)
        if "Scan" in node:
            if node.startswith("Bitmap Heap Scan"):
                path.append(" + ".join(x for x in nodes[i + 1:] if x.startswith("Bitmap Index Scan")))
            break
    removed = [l.strip() for l in plan if "Rows Removed by" in l]
    return dict(plan=plan, execution_ms=execution, path=path, removed=removed[:2])


def search_section(args, workdir):
    n = args.search_customers
    db = SEARCH_DB
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db}")
    capture_log = workdir / "search-capture.log"
    server = Server(db, args.port, "warn,customer_api::sql=trace", capture_log)
    try:
        log(f"search: loading {n} customers into {db}")
        data = load_search_data(db, n, server)
        token = server.gql(f'mutation {{ login(input: {{username: "admin", password: "{ADMIN_PASSWORD}"}}) {{ token }} }}')["login"]["token"]
        workloads = search_workloads(n)
        for w in workloads:
            w["body"] = search_body(w)
            time.sleep(0.3)
            since = len(capture_log.read_text())
            server.gql(w["body"]["query"], w["body"]["variables"], token)
            time.sleep(0.3)
            w["sql"] = [s for s in captured_sql(capture_log, since) if ' FROM "customers" WHERE ' in s]
            check_search(db, server, token, w)
    finally:
        server.stop()
    for w in workloads:
        w["plans"] = []
        for sql in w["sql"]:
            plan = explain(db, with_binds(sql, w))
            plan["sql"] = with_binds(sql, w)
            w["plans"].append(plan)
            log(f"{w['key']}: {' / '.join(plan['path'])}; {plan['execution_ms']:.2f} ms")
    server = Server(db, args.port, "info", workdir / "search-server.log")
    try:
        token = server.gql(f'mutation {{ login(input: {{username: "admin", password: "{ADMIN_PASSWORD}"}}) {{ token }} }}')["login"]["token"]
        for w in workloads:
            w["result"] = measure(server, w["name"], w["body"], args, token=token)
    finally:
        server.stop()
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return dict(data, workloads=workloads)


def search_report(search, args, cores, loads):
    lines = [
        machine_line(cores) + f" {args.search_customers} customers (bench/load.sql) in a database of their own, "
        f"{search['frozen']} of them frozen and {search['deleted']} soft-deleted (every hundredth, so spread over all "
        f"ages), then VACUUM ANALYZE; {args.duration} s per run after {args.warmup} s of warm-up, release build. "
        f"Load average (1 min) when the section started and ended: {loads[0]:.1f}, {loads[1]:.1f}.",
        "",
        f"Every workload is `customers(filter: ..., first: 50)` newest first with W1's fields (`guestAgent` too) and "
        f"`pageInfo`, by a super admin. Before measuring, each was checked against an independent SQL condition: "
        f"the server's page is that condition's first 50 rows, newest first, with the statuses asked for.",
        "",
        "| Workload | Connections | req/s | p50 ms | p99 ms | SQL statements/request | Requests | Matching customers | Listed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    few = []
    for w in search["workloads"]:
        x = w["result"]
        lines.append(f"| {w['name']} | {x['connections']} | {x['rps']:.0f} | {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | "
                     f"{x['statements']:.2f} | {x['requests']} | {w['matches']} | {w['listed']} |")
        if x["requests"] < 10 * x["connections"]:
            few.append(w["key"])
    if few:
        lines += ["", f"- {', '.join(few)}: fewer than ten requests per connection were answered in the run, so "
                      f"SQL statements/request is skewed (statements are counted when they start, requests when "
                      f"they are answered, and requests in flight at either end of the run count on one side only)."]
    lines += ["", "The plan PostgreSQL chose for the server's statement (EXPLAIN (ANALYZE, COSTS OFF), "
                  "run once after the checks, with the bind values written in):", "",
              "| Workload | Statement | Plan, from the top node to the table scan | Execution ms |",
              "|---|---|---|---|"]
    for w in search["workloads"]:
        for plan in w["plans"]:
            what = "count" if "count(" in plan["sql"].lower() else "page"
            path = " → ".join(plan["path"] + plan["removed"]).replace("|", "/")
            lines.append(f"| {w['key']} | {what} | {path} | {plan['execution_ms']:.2f} |")
    lines += ["", f"- The section took {search['seconds']:.0f} s, loading included."]
    lines += [f"- Loading {args.search_customers} customers with their guest agents: {search['load_seconds']:.1f} s "
                  f"(trigram indexes dropped first), building the two trigram indexes: {search['index_seconds']:.1f} s, "
                  f"freezing, deleting and VACUUM ANALYZE: {search['prepare_seconds']:.1f} s.", "",
              "Full plans:", ""]
    for w in search["workloads"]:
        for plan in w["plans"]:
            lines += [f"{w['key']}:", "", "```", plan["sql"], *plan["plan"], "```", ""]
    return lines


def machine_line(cores):
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "unknown CPU")
    pg_version = run(["psql", f"{PG}/postgres", "-Atqc", "SHOW server_version"]).stdout.strip()
    return (f"Machine: {cores} cores ({cpu}), PostgreSQL {pg_version}; wrk, PostgreSQL and the server share the cores.")


def run_search(args, workdir, cores):
    loads = [os.getloadavg()[0]]
    started = time.monotonic()
    search = search_section(args, workdir)
    search["seconds"] = time.monotonic() - started
    loads.append(os.getloadavg()[0])
    text = "\n".join(search_report(search, args, cores, loads)) + "\n"
    print(text)
    Path(args.search_output).write_text(text)
    log(f"wrote {args.search_output}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each run")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--abuse-duration", type=int, default=5, help="seconds per abusive run (each runs twice)")
    parser.add_argument("--abuse-only", action="store_true",
                        help="load the data and run only the abuse section (printed, not written)")
    parser.add_argument("--output", default=str(BENCH / "results.md"))
    parser.add_argument("--search-customers", type=int, default=1_000_000,
                        help="customers in the search section's own database")
    parser.add_argument("--search-only", action="store_true",
                        help="run only the search section (written to --search-output)")
    parser.add_argument("--no-search", action="store_true", help="leave the search section out of a full run")
    parser.add_argument("--search-output", default=str(BENCH / "search-results.md"))
    parser.add_argument("--events-only", action="store_true",
                        help="run only the events section (written to --events-output): W5 with and without the "
                             "event log, events appended per second, webhook delivery throughput. Not part of a "
                             "full run: it builds --baseline-commit's release binary (minutes, cached in /tmp)")
    parser.add_argument("--baseline-commit", default="0f375e3",
                        help="the server without the event log, for the events section (default: the parent of "
                             "25f7617, which added it)")
    parser.add_argument("--events-webhook-customers", type=int, default=200,
                        help="customers with a webhook, renamed concurrently (events section)")
    parser.add_argument("--events-per-customer", type=int, default=20, help="renames of each of them")
    parser.add_argument("--events-one-customer", type=int, default=500,
                        help="renames of the one customer whose deliveries are timed alone")
    parser.add_argument("--events-output", default=str(BENCH / "events-results.md"))
    parser.add_argument("--peer-only", action="store_true",
                        help="load the data and run only the peer section, PostGraphile beside the server on W1-W3 "
                             "(bench/peer.py; written to --peer-output)")
    parser.add_argument("--no-peer", action="store_true", help="leave the peer section out of a full run")
    parser.add_argument("--peer-output", default=str(BENCH / "peer-results.md"))
    parser.add_argument("--binary", help="a prebuilt server binary instead of target/release/customer-api "
                                         "(bench/run.sh then skips cargo build)")
    args = parser.parse_args()
    if args.binary:
        global SERVER
        SERVER = Path(args.binary).resolve()
    n = args.customers
    db = "customer_api_bench"
    workdir = Path(tempfile.mkdtemp(prefix="customer-api-bench-"))
    cores = os.cpu_count()

    load_at_start = os.getloadavg()[0]
    if args.events_only:
        run_events(args, workdir, cores)
        shutil.rmtree(workdir, ignore_errors=True)
        return
    if args.search_only:
        run_search(args, workdir, cores)
        shutil.rmtree(workdir, ignore_errors=True)
        return
    if args.peer_only:
        load_bench_db(db, n, args.port, workdir)
        run_peer(db, n, args, workdir, cores)
        psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        shutil.rmtree(workdir, ignore_errors=True)
        return
    if args.abuse_only:
        psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        psql("postgres", f"CREATE DATABASE {db}")
        server = Server(db, args.port, "warn", workdir / "load.log")
        admin_hash = psql(db, "SELECT password_hash FROM agents WHERE username = 'admin'")
        run(["psql", f"{PG}/{db}", "-q", "-v", f"n={n}", "-v", f"hash={admin_hash}", "-f", str(BENCH / "load.sql")])
        server.stop()
        abuse = abuse_section(db, args, workdir, n)
        psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        print("\n".join(abuse_lines(abuse, args)))
        return

    log("measuring argon2")
    argon = run(["cargo", "bench", "--quiet", "--bench", "argon2"], cwd=ROOT).stdout
    hash_ms = float(re.search(r"hash_ms=([\d.]+)", argon).group(1))
    verify_ms = float(re.search(r"verify_ms=([\d.]+)", argon).group(1))
    pool_rates = (float(re.search(r"pool_verifies_per_s=([\d.]+)", argon).group(1)),
                  float(re.search(r"pool_hashes_per_s=([\d.]+)", argon).group(1)))

    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db}")

    # A first server run migrates, bootstraps the admin, and, logging its SQL,
    # shows what each workload sends to PostgreSQL.
    capture_log = workdir / "capture.log"
    server = Server(db, args.port, "warn,customer_api::sql=trace", capture_log)
    admin_hash = psql(db, "SELECT password_hash FROM agents WHERE username = 'admin'")
    log(f"loading {n} customers with their guest agents")
    started = time.monotonic()
    run(["psql", f"{PG}/{db}", "-q", "-v", f"n={n}", "-v", f"hash={admin_hash}", "-f", str(BENCH / "load.sql")])
    load_seconds = time.monotonic() - started
    log(f"loaded in {load_seconds:.1f} s")

    token = server.gql(f'mutation {{ login(input: {{username: "admin", password: "{ADMIN_PASSWORD}"}}) {{ token }} }}')["login"]["token"]
    server.gql("{ me { permissions } }", token=token)
    # 75% of the way through the listing: the cursor of the row at that offset.
    deep_row = psql(db, f"SELECT (extract(epoch FROM tm_create) * 1000000)::bigint, tm_create, id "
                        f"FROM customers WHERE tm_delete IS NULL "
                        f"ORDER BY tm_create DESC, id DESC OFFSET {int(n * 0.75)} LIMIT 1")
    micros, deep_tm, deep_id = deep_row.split("|")
    # The server's cursor format (src/graphql/pagination.rs).
    deep_cursor = base64.urlsafe_b64encode(f"c1:{micros}:{deep_id}".encode()).decode().rstrip("=")
    random_max = n
    sample_id = f"00000000-0000-4000-8000-{n // 2:012x}"

    sql = {}
    for name, query, variables in (("w1", W1, {}), ("w2", W2, {"after": deep_cursor}), ("w3", W3, {"id": sample_id})):
        # The first answer to a new document is async-graphql's; from the
        # second on the fast path answers, with its own SQL: capture that.
        server.gql(query, variables, token)
        time.sleep(0.3)
        since = len(capture_log.read_text())
        server.gql(query, variables, token)
        time.sleep(0.3)
        # Only the request's reads: background work (the webhook queue's
        # poll, the event bus) logs its statements into the same window.
        sql[name] = [statement for statement in captured_sql(capture_log, since)
                     if statement.startswith(('SELECT "customers".', 'SELECT "agents".'))]
        log(f"{name} sends {len(sql[name])} statements")
    server.stop()

    # pgbench scripts: the server's own SQL, its binds as pgbench variables.
    first_page = psql(db, "SELECT string_agg(id::text, ',') FROM (SELECT id FROM customers WHERE tm_delete IS NULL "
                          "ORDER BY tm_create DESC, id DESC LIMIT 50) p")
    deep_page = psql(db, f"SELECT string_agg(id::text, ',') FROM (SELECT id FROM customers WHERE tm_delete IS NULL "
                         f"AND (tm_create, id) < ('{deep_tm}', '{deep_id}') ORDER BY tm_create DESC, id DESC LIMIT 50) p")

    # pgbench cannot make a UUID from a random number, so W3 lets PostgreSQL
    # build it from one (the same rule bench/load.sql used).
    random_uuid = "('00000000-0000-4000-8000-' || lpad(to_hex(:i::bigint), 12, '0'))::uuid"

    def binds(name, statement):
        """The pgbench variables standing for a captured statement's binds."""
        if "= ANY(" in statement:
            return [f"ARRAY[{random_uuid}]" if name == "w3" else ":ids"]
        if name == "w2":
            return [":tm", ":id"]
        if name == "w3":
            return [random_uuid, ":one"]
        return []

    def script(name):
        lines = ["\\set i random(1, %d)" % random_max] if name == "w3" else []
        for statement in sql[name]:
            values = binds(name, statement)
            if placeholders(statement) != list(range(1, len(values) + 1)):
                raise SystemExit(f"unexpected binds in {statement}")
            for i in range(len(values), 0, -1):
                statement = statement.replace(f"${i}", values[i - 1])
            lines.append(statement + ";")
        return "\n".join(lines) + "\n"

    scripts = {
        "w1": (script("w1"), {"ids": "{" + first_page + "}"}),
        "w2": (script("w2"), {"tm": deep_tm, "id": deep_id, "ids": "{" + deep_page + "}"}),
        "w3": (script("w3"), {"one": 1}),
    }
    results = {}
    for name, (text, params) in scripts.items():
        results[f"pg_{name}"] = pgbench(db, name, text, params, args, workdir)
        results[f"pg_{name}"]["statements"] = len(sql[name])
    # The floor under "W1 (light) while W5 saturates": the same light load
    # on PostgreSQL alone, then beside CPU-bound threads of the hashers'
    # priority and no server at all.
    quarter = max(1, args.connections // 4)
    w1_text, w1_params = scripts["w1"]
    settings = autogroup_settings()
    for suffix in settings:
        with autogroup_off(suffix):
            results[f"pg_w1_light{suffix}"] = pgbench(db, "w1_light", w1_text, w1_params, args, workdir,
                                                      clients=quarter)
            with Burners(cores):
                results[f"pg_w1_burn{suffix}"] = pgbench(db, "w1_burn", w1_text, w1_params, args, workdir,
                                                         clients=quarter)
    # Before the writes of W4/W5, while the data is as bench/load.sql left it.
    peer = None if args.no_peer else run_peer(db, n, args, workdir, cores)

    server = Server(db, args.port, "info", workdir / "server.log")
    token = server.gql(f'mutation {{ login(input: {{username: "admin", password: "{ADMIN_PASSWORD}"}}) {{ token }} }}')["login"]["token"]
    w1 = {"query": W1}
    results["w1_64"] = measure(server, "W1 at 64 connections", w1, args, connections=64, token=token)
    peak_rss = server.peak_rss_mib()
    results["w1"] = measure(server, "W1", w1, args, token=token)
    results["w2"] = measure(server, "W2", {"query": W2, "variables": {"after": deep_cursor}}, args, token=token)
    results["w3"] = measure(server, "W3", {"query": W3, "variables": {"id": "__ID__"}}, args, token=token,
                            mode="random_customer", max_id=random_max)
    login = {"query": W4, "variables": {"u": "bench-customer-1", "p": ADMIN_PASSWORD}}
    create = {"query": W5, "variables": {"u": "__USERNAME__", "p": "bench-password"}}
    results["w4"] = measure(server, "W4", login, args)
    results["w5"] = measure(server, "W5", create, args, token=token, mode="unique_username", tag="alone")
    for suffix in settings:
        with autogroup_off(suffix):
            light_beside_floods(server, w1, login, create, token, args, quarter, results, suffix)
    server.stop()
    abuse = abuse_section(db, args, workdir, random_max)
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

    loads = (load_at_start, os.getloadavg()[0])
    report(results, abuse, args, cores, hash_ms, verify_ms, pool_rates, load_seconds, peak_rss, loads, peer)
    if not args.no_search:
        run_search(args, workdir, cores)
    shutil.rmtree(workdir, ignore_errors=True)


def light_beside_floods(server, w1, login, create, token, args, quarter, results, suffix):
    """Light W1 alone, then beside 50 logins, then beside 50 creates."""
    results[f"w1_light{suffix}"] = measure(server, f"W1 light{suffix}", w1, args, connections=quarter, token=token)
    for name, body, extra in (("w4", login, {}), ("w5", create, {"token": token, "mode": "unique_username", "tag": "mix"})):
        env = wrk_env(body, extra.get("token"), extra.get("mode", "fixed"), tag=extra.get("tag", "0") + suffix.strip("_") + "bg")
        saturate = subprocess.Popen(
            # 50 concurrent logins or creates, as the login-flood figure asks for.
            ["wrk", "-t", "1", "-c", str(max(50, args.connections)), "-d", f"{args.duration + args.warmup + 2}s", "--timeout", "30s",
             "-s", str(BENCH / "wrk" / "graphql.lua"), server.url + "/graphql"],
            env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        results[f"w1_with_{name}{suffix}"] = measure(server, f"W1 light while {name.upper()} saturates{suffix}",
                                                      w1, args, connections=quarter, token=token)
        out, _ = saturate.communicate()
        background_result = json.loads(out.strip().splitlines()[-1])
        background_result["rps"] = background_result["requests"] / (background_result["duration_us"] / 1e6)
        results[f"{name}_mixed{suffix}"] = background_result


def load_bench_db(db, n, port, workdir):
    """A fresh database of the server's migrations with n customers."""
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db}")
    server = Server(db, port, "warn", workdir / "load.log")
    admin_hash = psql(db, "SELECT password_hash FROM agents WHERE username = 'admin'")
    run(["psql", f"{PG}/{db}", "-q", "-v", f"n={n}", "-v", f"hash={admin_hash}", "-f", str(BENCH / "load.sql")])
    server.stop()


def run_peer(db, n, args, workdir, cores):
    """The peer section (bench/peer.py): prints its lines, writes them to
    --peer-output and returns them for the full report."""
    import peer  # bench/peer.py; it imports this file for Server and wrk
    lines = peer.peer_lines(peer.peer_section(db, n, args, workdir, SERVER), args, cores)
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.peer_output).write_text(text)
    log(f"wrote {args.peer_output}")
    return lines


def abuse_lines(abuse, args):
    alone = abuse["light_alone"]
    lines = [
        f"Abusive requests (issue 18), against a server with the default limits (TRUST_FORWARDED_FOR on): "
        f"each vector alone for {args.abuse_duration} s for its cost (the server's CPU time over the requests "
        f"answered), then again beside light traffic (W3, one customer by id, {LIGHT_CONNECTIONS} connections) "
        f"for its harm. RSS is read after each vector, on the same server process.",
        "",
        "| Vector | Connections | req/s | The server answers | CPU ms/request | Bytes/response | SQL/request | "
        "argon2/request | RSS after MiB | Peak MiB | Light p50 ms | Light p99 ms | Light p99 / alone |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| light W3 alone | {LIGHT_CONNECTIONS} | {alone['rps']:.0f} | data | | | | | {abuse['settled_rss']:.1f} | | "
        f"{alone['p50_ms']:.2f} | {alone['p99_ms']:.2f} | 1.00 |",
    ]
    for name, x in abuse["rows"]:
        answer = x["answer"].replace("|", "/")
        if x.get("counted_share") and x.get("count"):
            answer += f"; {x['counted_share']:.1%} {x['count']}"
        light = x["light"]
        rps = f"{x['rps']:.0f}" if x["rps"] else ""
        per = "connection" if name.startswith("(7)") else "request"
        lines.append(
            f"| {name} | {x['connections']} | {rps} | {answer} | {x['cpu_ms']:.3f}{' per ' + per if per != 'request' else ''} | "
            f"{x['bytes_per_response']:.0f} | {x['statements']:.2f} | {x['hashes']:.3f} | {x['rss_after']:.1f} | "
            f"{x['peak']:.1f} | "
            f"{light['p50_ms']:.2f} | {light['p99_ms']:.2f} | {light['p99_ms'] / alone['p99_ms']:.2f} |")
    lines += ["", f"- RSS of the abused server once started and settled: {abuse['settled_rss']:.1f} MiB; "
                  f"peak over the whole section: {abuse['peak_rss']:.1f} MiB."]
    return lines


def report(r, abuse, args, cores, hash_ms, verify_ms, pool_rates, load_seconds, peak_rss, loads, peer=None):
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "unknown CPU")
    pg_version = run(["psql", f"{PG}/postgres", "-Atqc", "SHOW server_version"]).stdout.strip()
    row = lambda name, x: (f"| {name} | {x['connections']} | {x['rps']:.0f} | {x['p50_ms']:.2f} | "
                           f"{x['p99_ms']:.2f} | {x.get('statements', 0):.2f} |")
    lines = [
        f"Machine: {cores} cores ({cpu}), PostgreSQL {pg_version}; wrk, PostgreSQL and the server share the cores. "
        f"{args.customers} customers, {args.duration} s per run after {args.warmup} s of warm-up, release build. "
        f"Load average (1 min) when the run started and ended: {loads[0]:.1f}, {loads[1]:.1f}.",
        "",
        "| Workload | Connections | req/s | p50 ms | p99 ms | SQL statements/request |",
        "|---|---|---|---|---|---|",
        row("pgbench W1 (the server's SQL for W1)", r["pg_w1"]),
        row("pgbench W2 (the server's SQL for W2, the deep page)", r["pg_w2"]),
        row("pgbench W3 (the server's SQL for W3, one customer)", r["pg_w3"]),
        row("W1 first page of 50", r["w1"]),
        row("W2 page of 50 at 75%", r["w2"]),
        row("W3 one customer by id", r["w3"]),
        row("W4 login", r["w4"]),
        row("W5 createCustomer", r["w5"]),
        row("W1 at 64 connections", r["w1_64"]),
    ]
    # The rows beside floods, per kernel setting measured (autogroup_settings).
    settings = [(suffix, label) for suffix, label in (("", ""), ("_flat", " (autogroup off)"))
                if f"w1_light{suffix}" in r]
    for suffix, setting in settings:
        lines += [
            row(f"W1 alone (light){setting}", r[f"w1_light{suffix}"]),
            row(f"W1 (light) while W4 saturates{setting}", r[f"w1_with_w4{suffix}"]),
            row(f"W1 (light) while W5 saturates{setting}", r[f"w1_with_w5{suffix}"]),
            row(f"pgbench W1 (light){setting}", r[f"pg_w1_light{suffix}"]),
            row(f"pgbench W1 (light) beside a busy thread per core at the hashers' priority{setting}",
                r[f"pg_w1_burn{suffix}"]),
        ]
    # What the hashing pool completes with every core busy: the ceiling.
    login_ceiling, create_ceiling = pool_rates
    checks = [
        ("W1 / pgbench W1", r["w1"]["rps"] / r["pg_w1"]["rps"], ">= 0.60"),
        ("W3 / pgbench W3", r["w3"]["rps"] / r["pg_w3"]["rps"], ">= 0.60"),
        ("W2 / W1", r["w2"]["rps"] / r["w1"]["rps"], ">= 0.90"),
        ("W4 / argon2 ceiling", r["w4"]["rps"] / login_ceiling, ">= 0.80"),
        ("W5 / argon2 ceiling", r["w5"]["rps"] / create_ceiling, ">= 0.80"),
    ]
    for suffix, setting in settings:
        checks += [
            (f"W1 p99 while W4 saturates / alone{setting}",
             r[f"w1_with_w4{suffix}"]["p99_ms"] / r[f"w1_light{suffix}"]["p99_ms"], "<= 3"),
            (f"W1 p99 while W5 saturates / alone{setting}",
             r[f"w1_with_w5{suffix}"]["p99_ms"] / r[f"w1_light{suffix}"]["p99_ms"], "<= 3"),
            (f"pgbench W1 (light) p99 beside busy threads / alone, counted as wrk counts{setting}",
             r[f"pg_w1_burn{suffix}"]["p99_as_wrk_ms"] / r[f"pg_w1_light{suffix}"]["p99_as_wrk_ms"],
             "(the machine's own)"),
        ]
    lines += ["", "| Ratio | Measured | Target |", "|---|---|---|"]
    lines += [f"| {name} | {value:.2f} | {target} |" for name, value, target in checks]
    lines += [
        "",
        f"- argon2id (19 MiB, 2 passes): hash {hash_ms:.1f} ms, verify {verify_ms:.1f} ms on one core alone "
        f"({cores * 1000 / verify_ms:.0f} logins/s, {cores * 1000 / hash_ms:.0f} creates/s if {cores} cores hashed as fast "
        f"together); the hashing pool with every core busy (the ceiling): {login_ceiling:.0f} verifications/s, "
        f"{create_ceiling:.0f} hashes/s. "
        f"W4 and W5 alone reached {r['w4']['rps']:.0f} and {r['w5']['rps']:.0f}; while saturating beside light W1 traffic, "
        f"{r['w4_mixed']['rps']:.0f} and {r['w5_mixed']['rps']:.0f}.",
        f"- The light pgbench rows are the floor under the rows \"while W4/W5 saturates\": PostgreSQL alone, "
        f"beside {cores} busy loops at niceness 10 and no server, p99 {r['pg_w1_light']['p99_ms']:.2f} -> "
        f"{r['pg_w1_burn']['p99_ms']:.2f} ms, max {r['pg_w1_light']['max_ms']:.1f} -> {r['pg_w1_burn']['max_ms']:.1f} ms. "
        f"wrk counts a stalled request again for each request its connection could have sent meanwhile; counted "
        f"so, PostgreSQL's p99 goes {r['pg_w1_light']['p99_as_wrk_ms']:.2f} -> {r['pg_w1_burn']['p99_as_wrk_ms']:.2f} ms.",
        *([f"- Autogroup off: the rows marked so ran with /proc/sys/kernel/sched_autogroup_enabled at 0 (restored "
           f"to 1 after). With it on, the machine's setting, PostgreSQL and the server are scheduling groups of "
           f"their own that share the CPU equally, and niceness ranks the hashing threads only below the server's "
           f"own threads; off, also below PostgreSQL's backends, as within one container or cgroup. "
           f"Light W1 p99 alone -> beside creates: {r['w1_light']['p99_ms']:.2f} -> {r['w1_with_w5']['p99_ms']:.2f} ms "
           f"(autogroup on), {r['w1_light_flat']['p99_ms']:.2f} -> {r['w1_with_w5_flat']['p99_ms']:.2f} ms (off); "
           f"W4 and W5 while saturating beside it, autogroup off: {r['w4_mixed_flat']['rps']:.0f} and "
           f"{r['w5_mixed_flat']['rps']:.0f}."] if "w1_light_flat" in r else []),
        f"- Peak RSS of the server after W1 at 64 connections: {peak_rss:.1f} MiB (target <= 64).",
        f"- Loading {args.customers} customers with their guest agents: {load_seconds:.1f} s.",
        "",
    ]
    lines += abuse_lines(abuse, args)
    if peer:
        lines += ["", "Side by side with PostGraphile (the peer section, also in bench/peer-results.md):", "", *peer]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.output).write_text(text)
    log(f"wrote {args.output}")


# The events section (issue 13): what the event log costs createCustomer
# (W5 against the server without it, built from --baseline-commit), the
# events appended while creating, and webhook delivery throughput to a
# receiver on 127.0.0.1. Opt-in (`--events-only`): it builds a second server.

EVENTS_DB = "customer_api_bench_events"
EVENTS_BASELINE_DB = "customer_api_bench_events_baseline"
WEBHOOKS_DB = "customer_api_bench_webhooks"
CREATE_HOOKED = ("mutation($u: String!, $p: String!, $uri: String!) { createCustomer(input: {username: $u, "
                 "password: $p, name: \"Hooked\", webhookMethod: POST, webhookUri: $uri}) "
                 "{ customer { id webhookSecret } } }")
RENAME = "mutation($id: UUID!, $name: String!) { updateCustomer(input: {id: $id, name: $name}) { customer { id } } }"


def baseline_binary(commit):
    """The release binary of `commit`, built once from a git worktree in
    /tmp with a target directory of its own (the project's is untouched)."""
    full = run(["git", "-C", str(ROOT), "rev-parse", "--verify", commit + "^{commit}"]).stdout.strip()
    short = full[:7]
    target = Path(tempfile.gettempdir()) / f"bench-baseline-target-{short}"
    binary = target / "release" / "customer-api"
    if binary.exists():
        log(f"events: baseline {short}: using {binary}")
        return binary, short
    tree = Path(tempfile.gettempdir()) / f"bench-baseline-{short}"
    if not tree.exists():
        run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), full])
    log(f"events: building the baseline {short} in {tree} (release, a few minutes)")
    started = time.monotonic()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=tree, check=True,
                   env=dict(os.environ, CARGO_TARGET_DIR=str(target)))
    log(f"events: built the baseline in {time.monotonic() - started:.0f} s")
    return binary, short


def admin_token(server):
    return server.gql(f'mutation {{ login(input: {{username: "admin", password: "{ADMIN_PASSWORD}"}}) '
                      f'{{ token }} }}')["login"]["token"]


def count(db, table):
    return int(psql(db, f"SELECT count(*) FROM {table}"))


def prepare_events_db(db, binary, n, port, log_path):
    """A database of the server's own migrations, loaded with bench/load.sql;
    then one createCustomer with the SQL log on: the transaction it sends."""
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db}")
    server = Server(db, port, "warn,customer_api::sql=trace", log_path, binary=binary)
    try:
        admin_hash = psql(db, "SELECT password_hash FROM agents WHERE username = 'admin'")
        run(["psql", f"{PG}/{db}", "-q", "-v", f"n={n}", "-v", f"hash={admin_hash}", "-f", str(BENCH / "load.sql")])
        # bench/load.sql gives most customers a webhook on hooks.example.com:
        # renaming them would queue deliveries there. Nothing leaves this machine.
        psql(db, "UPDATE customers SET webhook_uri = '' WHERE webhook_uri <> ''")
        token = admin_token(server)
        time.sleep(0.3)
        since = len(log_path.read_text())
        server.gql(W5, {"u": "bench-capture", "p": "bench-password"}, token)
        time.sleep(0.3)
        statements = captured_sql(log_path, since)
    finally:
        server.stop()
    # The transaction that inserts the customer, without what the server's
    # background tasks (the webhook worker's claims) sent meanwhile.
    begin = max(i for i, s in enumerate(statements) if s == "BEGIN" and
                any(x.startswith('INSERT INTO "customers"') for x in statements[i:]))
    end = statements.index("COMMIT", begin)
    transaction = [s for s in statements[begin:end + 1] if "webhook_deliveries" not in s]
    log(f"events: {db}: a create sends {len(transaction)} statements: "
        + "; ".join(s.split(" (")[0].split(" RETURNING")[0] for s in transaction))
    psql(db, "VACUUM ANALYZE")
    return transaction


def sql_literals(db, table, where, order=""):
    """Each row's columns as SQL literals with their types, for pgbench."""
    columns = psql(db, f"SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), E'\\x1f' ORDER BY attnum) "
                       f"FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped")
    names = [c.split(":", 1) for c in columns.split("\x1f")]
    select = ", ".join(f"quote_nullable({name}::text)" for name, _ in names)
    rows = run(["psql", f"{PG}/{db}", "-Atq", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
                "-c", f"SELECT {select} FROM {table} WHERE {where} {order}"]).stdout.splitlines()
    return [{name: f"{value}::{kind}" for (name, kind), value in zip(names, row.split("\x1f"))} for row in rows]


def create_script(db, transaction, without_events=False):
    """The create transaction as a pgbench script: the captured row's values
    written in, but new ids and username on every run (from one random
    number, as W3's script builds ids) and the time of the run."""
    customer = sql_literals(db, "customers", "username = 'bench-capture'")[0]
    cid = customer["id"].split("::")[0]
    rows = {"customers": [customer], "agents": sql_literals(db, "agents", f"customer_id = {cid}")}
    if to_regclass(db, "events"):
        rows["events"] = sql_literals(db, "events", f"customer_id = {cid}", "ORDER BY id")
    uuid = lambda prefix: f"('ffffffff-0000-4000-{prefix}-' || lpad(to_hex(:r::bigint), 12, '0'))::uuid"
    unique = {"customers": uuid("a000"), "agents": uuid("b000")}
    seen = {}
    lines = ["\\set r random(1, 281474976710655)"]
    for statement in transaction:
        match = re.match(r'INSERT INTO "(\w+)" \(([^)]*)\) VALUES \(([^)]*)\)', statement)
        if not match:
            if placeholders(statement):
                raise ValueError(f"a statement other than an INSERT takes binds: {statement[:80]}")
            lines.append(statement + ";")
            continue
        table = match.group(1)
        if without_events and table == "events":
            continue
        index = seen[table] = seen.get(table, -1) + 1
        row = rows[table][index]
        values = {}
        for column, value in zip(match.group(2).split(", "), match.group(3).split(", ")):
            column = column.strip('"')
            if not value.startswith("$"):
                continue
            if column == "id":
                values[value] = unique.get(table) or uuid(f"c{index:03d}")
            elif column == "customer_id":
                values[value] = unique["customers"]
            elif column == "username":
                values[value] = "'pgbench-' || :r::text"
            elif column == "tm_create":
                values[value] = "now()"
            else:
                values[value] = row[column]
        if sorted(int(v[1:]) for v in values) != placeholders(statement):
            raise ValueError(f"cannot fill in the binds of {statement[:80]}")
        # In one pass: a value written in (a password hash) may hold "$2".
        statement = re.sub(r"\$\d+", lambda bind: values[bind.group(0)], statement)
        lines.append(statement + ";")
    return "\n".join(lines) + "\n", sum(1 for l in lines if l.endswith(";"))


def to_regclass(db, table):
    return psql(db, f"SELECT to_regclass('{table}') IS NOT NULL") == "t"


def write_run(server, db, token, args, tag, with_events, workload):
    """A write workload as the main table measures W5 (args.connections,
    warm-up, then args.duration), with the customers and events appended
    meanwhile, counted in the database before and after."""
    body, options = workload
    wrk(server, body, args.connections, args.warmup, token=token, tag=tag + "w", **options)
    before = dict(statements=server.statements(), customers=count(db, "customers"),
                  events=count(db, "events") if with_events else 0)
    result = wrk(server, body, args.connections, args.duration, token=token, tag=tag, **options)
    after = dict(statements=server.statements(), customers=count(db, "customers"),
                 events=count(db, "events") if with_events else 0)
    seconds = result["duration_us"] / 1e6
    result.update(connections=args.connections,
                  statements=(after["statements"] - before["statements"]) / max(result["requests"], 1),
                  created=after["customers"] - before["customers"],
                  events=after["events"] - before["events"])
    result["events_per_second"] = result["events"] / seconds
    # A create commits its customer and its events together, so this ratio
    # is exact whatever was in flight when the counts were taken.
    result["events_per_create"] = result["events"] / max(result["created"], 1)
    result["events_per_request"] = result["events"] / max(result["requests"], 1)
    log(f"{tag}: {result['rps']:.1f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"{result['statements']:.2f} statements/request, {result['created']} customers and {result['events']} "
        f"events appended ({result['events_per_second']:.1f} events/s), {result['errors']} errors")
    if result["errors"]:
        raise SystemExit(f"{tag}: {result['errors']} failed requests")
    return result


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 204 to every request, counts
    them and the distinct X-VoIPBIN-Event-Id, and checks each signature
    against the secret of the customer its path names (/hook/<customer id>)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests, self.ids, self.bad_signatures, self.secrets = 0, set(), 0, {}
        receiver = self

        class Handler(httpserver.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                secret = receiver.secrets.get(self.path.rsplit("/", 1)[-1], "")
                expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                good = hmac.compare_digest(expected, self.headers.get("X-VoIPBIN-Signature", ""))
                with receiver.lock:
                    receiver.requests += 1
                    receiver.ids.add(self.headers.get("X-VoIPBIN-Event-Id"))
                    receiver.bad_signatures += not good
                self.send_response(204)
                self.end_headers()

            do_PUT = do_GET = do_DELETE = do_POST

            def log_message(self, *_):
                pass

        self.httpd = httpserver.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return self.requests, len(self.ids), self.bad_signatures

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def gql_pool(server, token, bodies, threads):
    """Sends each body once, `threads` at a time, each thread on a keep-alive
    connection of its own; raises on any error."""
    port = int(server.url.rsplit(":", 1)[1])
    local = threading.local()

    def send(body):
        if not hasattr(local, "connection"):
            local.connection = httpclient.HTTPConnection("127.0.0.1", port, timeout=60)
        local.connection.request("POST", "/graphql", body=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        answer = json.loads(local.connection.getresponse().read())
        if answer.get("errors"):
            raise SystemExit(f"GraphQL error: {answer['errors']}")
        return answer["data"]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(send, bodies))


def delivery_counts(db, since):
    """Deliveries of events appended after `since` (a database timestamp), by state."""
    rows = psql(db, f"SELECT state, count(*) FROM webhook_deliveries WHERE tm_create > '{since}' GROUP BY state")
    return {state: int(n) for state, n in (line.split("|") for line in rows.splitlines())}


def until_delivered(db, since, receiver, receiver_before, total, timeout):
    """Waits for the receiver to have `total` more requests and the queue to
    say `total` delivered; returns the time the queue said so."""
    deadline = time.monotonic() + timeout
    while receiver.snapshot()[0] - receiver_before < total and time.monotonic() < deadline:
        time.sleep(0.01)
    while time.monotonic() < deadline:
        counts = delivery_counts(db, since)
        if counts.get("failed"):
            raise SystemExit(f"webhooks: {counts['failed']} deliveries failed; see the server's log")
        if counts.get("delivered", 0) >= total:
            return time.monotonic()
        time.sleep(0.05)
    raise SystemExit(f"webhooks: not all {total} deliveries were delivered within {timeout} s: {delivery_counts(db, since)}")


def renames(customers, per_customer, tag):
    """per_customer renames of each customer, round-robin over the customers."""
    return [{"query": RENAME, "variables": {"id": c, "name": f"Hooked {tag} {k}"}}
            for k in range(per_customer) for c in customers]


def live_deliveries(db, server, token, receiver, customers, per_customer, threads, label):
    """Renames through the API while the server delivers; deliveries/s from
    the first rename to the moment the queue has them all delivered."""
    since = psql(db, "SELECT now()")
    before = receiver.snapshot()
    events_before = count(db, "events")
    bodies = renames(customers, per_customer, label)
    started = time.monotonic()
    gql_pool(server, token, bodies, threads)
    generated = time.monotonic() - started
    total = len(bodies)
    done = until_delivered(db, since, receiver, before[0], total, timeout=max(120, total))
    seconds = done - started
    time.sleep(0.5)
    after = receiver.snapshot()
    result = dict(label=label, customers=len(customers), events=count(db, "events") - events_before, total=total,
                  generated_seconds=generated, seconds=seconds, rate=total / seconds,
                  received=after[0] - before[0], distinct=after[1] - before[1], bad=after[2] - before[2],
                  delivered=delivery_counts(db, since).get("delivered", 0), threads=threads)
    log(f"webhooks {label}: {total} renames in {generated:.1f} s, all delivered after {seconds:.1f} s: "
        f"{result['rate']:.0f} deliveries/s; receiver {result['received']} requests, {result['distinct']} event ids, "
        f"{result['bad']} bad signatures")
    return result


def backlog_deliveries(args, workdir, receiver, customers, per_customer, threads, label):
    """The renames queued by a server that does not deliver, then sent by
    one that does, from its start: delivery alone, without the renames
    competing for the cores. Timed from the first claim to the last
    settlement, by the database's clock."""
    server = Server(WEBHOOKS_DB, args.port, "warn", workdir / "webhooks-queue.log",
                    WEBHOOK_DELIVERY="false", WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
    try:
        since = psql(WEBHOOKS_DB, "SELECT now()")
        bodies = renames(customers, per_customer, label)
        started = time.monotonic()
        gql_pool(server, admin_token(server), bodies, threads)
        generated = time.monotonic() - started
    finally:
        server.stop()
    before = receiver.snapshot()
    started = time.monotonic()
    server = Server(WEBHOOKS_DB, args.port, "warn", workdir / "webhooks-backlog.log",
                    WEBHOOK_DELIVERY="true", WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
    try:
        until_delivered(WEBHOOKS_DB, since, receiver, before[0], len(bodies), timeout=max(120, len(bodies)))
        wall = time.monotonic() - started
    finally:
        server.stop()
    time.sleep(0.5)
    after = receiver.snapshot()
    window = float(psql(WEBHOOKS_DB, "SELECT extract(epoch FROM max(tm_update) - min(last_attempt_at)) "
                                     f"FROM webhook_deliveries WHERE tm_create > '{since}'"))
    attempts = int(psql(WEBHOOKS_DB, f"SELECT max(attempts) FROM webhook_deliveries WHERE tm_create > '{since}'"))
    result = dict(label=label + ", queued backlog", customers=len(customers), total=len(bodies),
                  generated_seconds=generated, seconds=window, wall=wall, rate=len(bodies) / window,
                  received=after[0] - before[0], distinct=after[1] - before[1], bad=after[2] - before[2],
                  delivered=delivery_counts(WEBHOOKS_DB, since).get("delivered", 0), attempts=attempts,
                  threads=threads, backlog=True)
    log(f"webhooks {result['label']}: {len(bodies)} delivered in {window:.1f} s from the first claim "
        f"({wall:.1f} s from starting the server): {result['rate']:.0f} deliveries/s; receiver "
        f"{result['received']} requests, {result['distinct']} event ids, {result['bad']} bad signatures")
    return result


def webhook_section(args, workdir):
    psql("postgres", f"DROP DATABASE IF EXISTS {WEBHOOKS_DB} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {WEBHOOKS_DB}")
    receiver = Receiver()
    rows, ids = [], []
    server = Server(WEBHOOKS_DB, args.port, "warn", workdir / "webhooks.log",
                    WEBHOOK_DELIVERY="true", WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
    try:
        token = admin_token(server)
        n = args.events_webhook_customers + 1
        created = gql_pool(server, token, [
            {"query": CREATE_HOOKED, "variables": {"u": f"hooked-{i}", "p": "bench-password",
                                                   "uri": f"http://127.0.0.1:{receiver.port}/hook/{i}"}}
            for i in range(n)], 8)
        for i, data in enumerate(created):
            customer = data["createCustomer"]["customer"]
            receiver.secrets[str(i)] = customer["webhookSecret"]
            ids.append(customer["id"])
        # Their customer_created and agent_created deliveries go first.
        until_delivered(WEBHOOKS_DB, "-infinity", receiver, 0, 2 * n, timeout=300)
        log(f"webhooks: {n} customers created with webhooks to 127.0.0.1:{receiver.port}; their "
            f"{2 * n} creation events delivered")
        many, one = ids[:-1], ids[-1:]
        cases = (("many customers", many, args.events_per_customer, 16),
                 ("one customer", one, args.events_one_customer, 1))
        for label, customers, per, threads in cases:
            rows.append(live_deliveries(WEBHOOKS_DB, server, token, receiver, customers, per, threads, label))
    finally:
        server.stop()
    for label, customers, per, threads in cases:
        rows.append(backlog_deliveries(args, workdir, receiver, customers, per, threads, label))
    receiver.stop()
    psql("postgres", f"DROP DATABASE IF EXISTS {WEBHOOKS_DB} WITH (FORCE)")
    return rows


def events_section(args, workdir):
    baseline, short = baseline_binary(args.baseline_commit)
    head = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).stdout.strip()
    n = args.customers
    servers = {"baseline": (baseline, EVENTS_BASELINE_DB, args.port + 1), "current": (SERVER, EVENTS_DB, args.port)}
    transactions = {}
    for name, (binary, db, port) in servers.items():
        log(f"events: {name}: {db} with {n} customers")
        transactions[name] = prepare_events_db(db, binary, n, port, workdir / f"events-{name}-capture.log")
    running = {name: Server(db, port, "info", workdir / f"events-{name}.log", binary=binary)
               for name, (binary, db, port) in servers.items()}
    create = ({"query": W5, "variables": {"u": "__USERNAME__", "p": "bench-password"}}, dict(mode="unique_username"))
    rename = ({"query": RENAME, "variables": {"id": "__ID__", "name": "Renamed"}},
              dict(mode="random_customer", max_id=n))
    runs = {"baseline": [], "current": [], "rename_baseline": [], "rename_current": []}
    try:
        tokens = {name: admin_token(server) for name, server in running.items()}
        for key, workload in (("", create), ("rename_", rename)):
            for round_ in (1, 2):
                for name in ("baseline", "current"):
                    tag = f"{'W5' if not key else 'rename'} {name} {round_}".replace(" ", "-")
                    runs[key + name].append(write_run(running[name], servers[name][1], tokens[name], args, tag,
                                                      name == "current", workload))
    finally:
        for server in running.values():
            server.stop()
    pg = {}
    scripts = {}
    try:
        scripts["baseline"] = (EVENTS_BASELINE_DB, *create_script(EVENTS_BASELINE_DB, transactions["baseline"]))
        scripts["current"] = (EVENTS_DB, *create_script(EVENTS_DB, transactions["current"]))
        scripts["current_no_events"] = (EVENTS_DB, *create_script(EVENTS_DB, transactions["current"], True))
    except ValueError as error:
        log(f"events: no pgbench of the create transaction: {error}")
        scripts = {}
    for name, (db, text, statements) in scripts.items():
        pg[name] = pgbench(db, f"create_{name}", text, {}, args, workdir)
        pg[name]["statements"] = statements
        pg[name]["script"] = text
    # What the events INSERTs cost without their NOTIFY (a diagnostic, on
    # this database only, which is dropped next).
    notify_trigger = "events_notify_appended"
    if scripts and psql(EVENTS_DB, f"SELECT count(*) FROM pg_trigger WHERE tgname = '{notify_trigger}'") == "1":
        psql(EVENTS_DB, f"ALTER TABLE events DISABLE TRIGGER {notify_trigger}")
        db, text, statements = scripts["current"]
        pg["current_no_notify"] = pgbench(db, "create_current_no_notify", text, {}, args, workdir)
        pg["current_no_notify"]["statements"] = statements
    for db in (EVENTS_DB, EVENTS_BASELINE_DB):
        psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    webhooks = webhook_section(args, workdir)
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(SERVER.stat().st_mtime))
    return dict(baseline=short, head=head, built=built, runs=runs, transactions=transactions, pg=pg, webhooks=webhooks)


def events_report(ev, args, cores, loads):
    best = {name: max(runs, key=lambda x: x["rps"]) for name, runs in ev["runs"].items()}
    ratio = best["current"]["rps"] / best["baseline"]["rps"]
    rename_ratio = best["rename_current"]["rps"] / best["rename_baseline"]["rps"]
    base, cur = f"baseline ({ev['baseline']})", "current"
    lines = [
        machine_line(cores) + f" Release builds: current = target/release/customer-api, built {ev['built']} from "
        f"this working tree (HEAD {ev['head']} at the run), "
        f"baseline = {ev['baseline']}, the same server without the event log (--baseline-commit). Each on a "
        f"database of its own migrations with {args.customers} customers (bench/load.sql, webhook URIs cleared), "
        f"both servers running throughout. Every run is {args.duration} s after {args.warmup} s of warm-up, "
        f"alternately (baseline, current, baseline, current). "
        f"Load average (1 min) when the section started and ended: {loads[0]:.1f}, {loads[1]:.1f}.",
        "",
        "W5 (createCustomer, as in the main table: argon2 hash included) with and without the event log, then "
        "the same for `updateCustomer` renaming a random customer (no argon2: the write path alone). Events "
        "appended are counted in the database (`count(*)`) before and after each run:",
        "",
        "| Workload | Server | Run | Connections | req/s | p50 ms | p99 ms | SQL statements/request | "
        "Customers created | Events appended | Events/s | Events per create (per request) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, workload in (("", "W5 createCustomer"), ("rename_", "updateCustomer (rename)")):
        for name in ("baseline", "current"):
            for i, x in enumerate(ev["runs"][key + name], 1):
                per = (f"{x['events_per_create']:.2f}" if not key else f"({x['events_per_request']:.2f})")
                events = (f"{x['events']} | {x['events_per_second']:.1f} | {per}" if name == "current" else "0 | 0 | 0")
                lines.append(f"| {workload} | {base if name == 'baseline' else cur} | {i} | {x['connections']} | "
                             f"{x['rps']:.1f} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | {x['statements']:.2f} | "
                             f"{x['created']} | {events} |")
    lines += ["", "| Ratio | Measured | Target |", "|---|---|---|",
              f"| W5 current / baseline (req/s, best of 2 each) | {ratio:.2f} | >= 0.90 |",
              f"| updateCustomer current / baseline (req/s, best of 2 each) | {rename_ratio:.2f} | |"]
    pg = ev["pg"]
    if pg:
        lines.append(f"| pgbench create transaction, current / baseline (tx/s) | "
                     f"{pg['current']['rps'] / pg['baseline']['rps']:.2f} | |")
    b, c = best["baseline"], best["current"]
    lines += ["", f"- W5, best of 2: baseline {b['rps']:.1f} req/s (p50 {b['p50_ms']:.0f} ms, p99 {b['p99_ms']:.0f} ms), "
                  f"current {c['rps']:.1f} req/s (p50 {c['p50_ms']:.0f} ms, p99 {c['p99_ms']:.0f} ms); the current "
                  f"server appended {c['events_per_second']:.1f} events/s alongside, {c['events_per_create']:.2f} per "
                  f"create (`customer_created` and `agent_created`). W5 is bound by argon2 (one hash per create, on a "
                  f"pool of one thread per core), which hides the SQL; the rename rows and the pgbench rows below "
                  f"show what the event log costs the database.",
              "- SQL statements/request counts every statement the server ran during the run over the requests "
              "answered: the current server's webhook worker also polls the queue (one statement every "
              "`WEBHOOK_POLL_INTERVAL_MS`, 500 ms)."]
    lines += ["", "The SQL of one createCustomer, captured from the server's statement log "
                  "(`RUST_LOG=customer_api::sql=trace`):", "",
              "| Server | Statements | The transaction |", "|---|---|---|"]
    for name in ("baseline", "current"):
        statements = ev["transactions"][name]
        what = "; ".join(s.split(" (")[0].split(" RETURNING")[0].replace('"', "") for s in statements)
        lines.append(f"| {base if name == 'baseline' else cur} | {len(statements)} | {what} |")
    if pg:
        lines += ["", f"That transaction alone, with pgbench -M prepared at {args.connections} connections "
                      f"({args.duration} s after {args.warmup} s of warm-up): the captured statements with the "
                      f"captured create's values written in, a new id and username per run, and `now()` for the "
                      f"events' time (the events' triggers fire as they do for the server: the webhook queue "
                      f"lookup{', and NOTIFY at commit' if 'current_no_notify' in pg else ''}):", "",
                  "| Transaction | Statements | tx/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
        names = {"baseline": f"baseline ({ev['baseline']})", "current": "current",
                 "current_no_events": "current without its events INSERTs",
                 "current_no_notify": "current, its events INSERTs without their NOTIFY (trigger disabled)"}
        for name, x in pg.items():
            lines.append(f"| {names[name]} | {x['statements']} | {x['rps']:.0f} | {x['p50_ms']:.2f} | {x['p99_ms']:.2f} |")
    else:
        lines += ["", "- The create transaction could not be turned into a pgbench script (see the log); "
                      "SQL statements/request above is the only SQL figure."]
    lines += ["", "Webhook deliveries to a receiver on 127.0.0.1 (a Python threaded HTTP server in run.py answering "
                  "204 and checking every signature), from a server started with `WEBHOOK_DELIVERY=true "
                  "WEBHOOK_ALLOW_PRIVATE_TARGETS=true` and the other webhook settings at their defaults. Each event "
                  "is an `updateCustomer` rename through the API (one `customer_updated` each), round-robin over "
                  "customers created through the API with the receiver as `webhookUri`. The server sends up to 32 "
                  "deliveries at once, one at a time per customer, in order. Live: renames sent while the server "
                  "delivers, timed from the first rename to the moment `count(*) ... WHERE state = 'delivered'` "
                  "reached the total (the receiver had them all first). Backlog: the same renames queued by a "
                  "server with `WEBHOOK_DELIVERY=false`, then sent by a server that delivers, timed from the first "
                  "claim to the last settlement by the queue's own timestamps (`last_attempt_at`, `tm_update`).",
              "",
              "| Case | Customers | Events | Renamed in s (threads) | Delivered after s | Deliveries/s | "
              "Delivered (queue) | Receiver requests | Distinct event ids | Bad signatures |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for w in ev["webhooks"]:
        after = (f"{w['seconds']:.1f} from the first claim ({w['wall']:.1f} from starting the server)"
                 if w.get("backlog") else f"{w['seconds']:.1f}")
        lines.append(f"| {w['label']} | {w['customers']} | {w['total']} | {w['generated_seconds']:.1f} "
                     f"({w['threads']}) | {after} | {w['rate']:.0f} | {w['delivered']} | {w['received']} | "
                     f"{w['distinct']} | {w['bad']} |")
    live = [w for w in ev["webhooks"] if not w.get("backlog")]
    if any(w["seconds"] - w["generated_seconds"] < 0.2 * w["seconds"] for w in live):
        lines += ["", "- Where a live row's deliveries finished within a few tenths of a second of its last "
                      "rename, delivery kept up with the renames and its rate is theirs (the load generator and "
                      "the renames share the cores with the deliveries); the backlog rows are the delivery "
                      "throughput."]
    lines += ["", f"- The section took {ev['seconds']:.0f} s (building the baseline excluded when it was cached)."]
    if pg:
        lines += ["", "The pgbench scripts (the other rows run the current one less its events INSERTs, or with the NOTIFY trigger disabled):", ""]
        for name in ("baseline", "current"):
            lines += [f"{names[name]}:", "", "```", pg[name]["script"].rstrip(), "```", ""]
    return lines


def run_events(args, workdir, cores):
    loads = [os.getloadavg()[0]]
    started = time.monotonic()
    ev = events_section(args, workdir)
    ev["seconds"] = time.monotonic() - started
    loads.append(os.getloadavg()[0])
    text = "\n".join(events_report(ev, args, cores, loads)) + "\n"
    print(text)
    Path(args.events_output).write_text(text)
    log(f"wrote {args.events_output}")


if __name__ == "__main__":
    main()
