#!/usr/bin/env python3
"""The benchmark suite: loads a data set, measures the SQL ceiling with
pgbench, then the server with wrk, and prints one table of results.

Run it with `bench/run.sh` (see README.md, "Benchmarks"). Everything runs on
this machine: the load tool, PostgreSQL and the server share its cores.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
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
    def __init__(self, db, port, rust_log, log_path):
        env = dict(os.environ,
                   DATABASE_URL=f"{PG}/{db}", LISTEN_ADDR=f"127.0.0.1:{port}",
                   ADMIN_PASSWORD=ADMIN_PASSWORD, TOKEN_SECRET="bench-token-secret-at-least-32-bytes-long",
                   RUST_LOG=rust_log, NO_COLOR="1",
                   # The bench logs in thousands of times from one address.
                   LOGIN_MAX_FAILURES_PER_ADDRESS="1000000")
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([str(SERVER)], env=env, stdout=self.log, stderr=self.log)
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

    def statements(self):
        text = http(self.url + "/metrics")
        match = re.search(r"^customer_api_db_statements_total (\d+)", text, re.M)
        return int(match.group(1))

    def peak_rss_mib(self):
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


def wrk_env(body, token=None, mode="fixed", max_id=1, tag="0"):
    """The environment of graphql.lua; the body goes through a file, as it
    may be larger than the environment allows."""
    fd, path = tempfile.mkstemp(prefix="customer-api-body-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(body, f)
    return dict(os.environ, BENCH_BODY_FILE=path, BENCH_TOKEN=token or "",
                BENCH_MODE=mode, BENCH_MAX=str(max_id), BENCH_TAG=tag)


def wrk(server, body, connections, duration, token=None, mode="fixed", max_id=1, tag="0"):
    env = wrk_env(body, token, mode, max_id, tag)
    threads = str(min(2, connections))
    cmd = ["wrk", "-t", threads, "-c", str(connections), "-d", f"{duration}s",
           "--timeout", "30s", "-s", str(BENCH / "wrk" / "graphql.lua"), server.url + "/graphql"]
    out = run(cmd, env=env).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


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


def pgbench(db, name, script, params, args, workdir):
    path = workdir / f"{name}.sql"
    path.write_text(script)
    base = ["pgbench", "-n", "-M", "prepared", "-c", str(args.connections), "-j", "2", "-f", str(path)]
    for key, value in params.items():
        base += ["-D", f"{key}={value}"]
    run(base + ["-T", str(args.warmup), f"{PG}/{db}"])
    prefix = workdir / f"log-{name}"
    out = run(base + ["-T", str(args.duration), "-l", f"--log-prefix={prefix}", f"{PG}/{db}"]).stdout
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
    latencies = []
    for log_file in workdir.glob(f"log-{name}.*"):
        for line in log_file.read_text().splitlines():
            latencies.append(int(line.split()[2]) / 1000)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    result = {"rps": tps, "p50_ms": pick(0.50), "p99_ms": pick(0.99),
              "statements": script.count(";"), "connections": args.connections}
    log(f"pgbench {name}: {tps:.0f} tx/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms")
    return result


def captured_sql(log_path, since):
    text = Path(log_path).read_text()[since:]
    # tracing prints the field Debug-quoted, which reads as a JSON string.
    return [json.loads(m.group(1)) for m in re.finditer(r'statement sql=(".*")$', text, re.M)]


def placeholders(sql):
    return sorted({int(n) for n in re.findall(r"\$(\d+)", sql)})


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each run")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--output", default=str(BENCH / "results.md"))
    args = parser.parse_args()
    n = args.customers
    db = "customer_api_bench"
    workdir = Path(tempfile.mkdtemp(prefix="customer-api-bench-"))
    cores = os.cpu_count()

    log("measuring argon2")
    argon = run(["cargo", "bench", "--quiet", "--bench", "argon2"], cwd=ROOT).stdout
    hash_ms = float(re.search(r"hash_ms=([\d.]+)", argon).group(1))
    verify_ms = float(re.search(r"verify_ms=([\d.]+)", argon).group(1))

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
        time.sleep(0.3)
        since = len(capture_log.read_text())
        server.gql(query, variables, token)
        time.sleep(0.3)
        sql[name] = captured_sql(capture_log, since)
        log(f"{name} sends {len(sql[name])} statements")
    server.stop()

    # pgbench scripts: the server's own SQL, its binds as pgbench variables.
    first_page = psql(db, "SELECT string_agg(id::text, ',') FROM (SELECT id FROM customers WHERE tm_delete IS NULL "
                          "ORDER BY tm_create DESC, id DESC LIMIT 50) p")
    deep_page = psql(db, f"SELECT string_agg(id::text, ',') FROM (SELECT id FROM customers WHERE tm_delete IS NULL "
                         f"AND (tm_create, id) < ('{deep_tm}', '{deep_id}') ORDER BY tm_create DESC, id DESC LIMIT 50) p")

    def script(statements, binds):
        lines = []
        for statement, values in zip(statements, binds):
            if placeholders(statement) != list(range(1, len(values) + 1)):
                raise SystemExit(f"unexpected binds in {statement}")
            for i in range(len(values), 0, -1):
                statement = statement.replace(f"${i}", values[i - 1])
            lines.append(statement + ";")
        return "\n".join(lines) + "\n"

    scripts = {
        "w1": (script(sql["w1"], [[":limit"], [":ids"]]), {"limit": 51, "ids": "{" + first_page + "}"}),
        "w2": (script(sql["w2"], [[":tm", ":id", ":limit"], [":ids"]]),
               {"tm": deep_tm, "id": deep_id, "limit": 51, "ids": "{" + deep_page + "}"}),
        # pgbench cannot make a UUID from a random number, so the script lets
        # PostgreSQL build it from one (the same rule bench/load.sql used).
        "w3": ("\\set i random(1, %d)\n" % random_max + script(sql["w3"], [
            ["('00000000-0000-4000-8000-' || lpad(to_hex(:i::bigint), 12, '0'))::uuid", ":one"],
            ["ARRAY[('00000000-0000-4000-8000-' || lpad(to_hex(:i::bigint), 12, '0'))::uuid]"]]), {"one": 1}),
    }
    # The alternative: the page and its guest agents in one statement.
    join = (sql["w1"][0].split(" FROM ")[0] +
            ', "agents"."id", "agents"."username", "agents"."name", "agents"."permission"'
            ' FROM "customers" LEFT JOIN "agents" ON "agents"."customer_id" = "customers"."id" AND "agents"."is_guest"'
            ' WHERE "customers"."tm_delete" IS NULL ORDER BY "customers"."tm_create" DESC, "customers"."id" DESC LIMIT :limit;\n')
    results = {}
    for name, (text, params) in scripts.items():
        results[f"pg_{name}"] = pgbench(db, name, text, params, args, workdir)
    results["pg_w1_join"] = pgbench(db, "w1_join", join, {"limit": 51}, args, workdir)

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
    quarter = max(1, args.connections // 4)
    results["w1_light"] = measure(server, "W1 light", w1, args, connections=quarter, token=token)
    for name, body, extra in (("w4", login, {}), ("w5", create, {"token": token, "mode": "unique_username", "tag": "mix"})):
        env = wrk_env(body, extra.get("token"), extra.get("mode", "fixed"), tag=extra.get("tag", "0") + "bg")
        saturate = subprocess.Popen(
            # 50 concurrent logins or creates, as the login-flood figure asks for.
            ["wrk", "-t", "1", "-c", str(max(50, args.connections)), "-d", f"{args.duration + args.warmup + 2}s", "--timeout", "30s",
             "-s", str(BENCH / "wrk" / "graphql.lua"), server.url + "/graphql"],
            env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        results[f"w1_with_{name}"] = measure(server, f"W1 light while {name.upper()} saturates", w1, args,
                                             connections=quarter, token=token)
        out, _ = saturate.communicate()
        background_result = json.loads(out.strip().splitlines()[-1])
        background_result["rps"] = background_result["requests"] / (background_result["duration_us"] / 1e6)
        results[f"{name}_mixed"] = background_result

    abuse = {
        "alias flood (31 aliases)": {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"},
        "complexity (3 x 100 customers)": {"query": "{ " + " ".join(
            f"c{i}: customers(first: 100) {{ nodes {{ {FIELDS} }} }}" for i in range(3)) + " }"},
        "batch of 11": [{"query": "{ __typename }"}] * 11,
        "300 KiB body": {"query": "{ __typename }", "variables": {"pad": "x" * 300_000}},
    }
    for name, body in abuse.items():
        env = wrk_env(body, token)
        out = run(["wrk", "-t", "2", "-c", str(args.connections), "-d", "5s", "-s",
                   str(BENCH / "wrk" / "graphql.lua"), server.url + "/graphql"], env=env).stdout
        refused = json.loads(out.strip().splitlines()[-1])
        refused["rps"] = refused["requests"] / (refused["duration_us"] / 1e6)
        results[f"abuse: {name}"] = refused
        log(f"abuse {name}: {refused['requests']} refused, p50 {refused['p50_ms']:.2f} ms, p99 {refused['p99_ms']:.2f} ms")
    server.stop()
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    shutil.rmtree(workdir, ignore_errors=True)

    report(results, args, cores, hash_ms, verify_ms, load_seconds, peak_rss)


def report(r, args, cores, hash_ms, verify_ms, load_seconds, peak_rss):
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "unknown CPU")
    pg_version = run(["psql", f"{PG}/postgres", "-Atqc", "SHOW server_version"]).stdout.strip()
    row = lambda name, x: (f"| {name} | {x['connections']} | {x['rps']:.0f} | {x['p50_ms']:.2f} | "
                           f"{x['p99_ms']:.2f} | {x.get('statements', 0):.2f} |")
    lines = [
        f"Machine: {cores} cores ({cpu}), PostgreSQL {pg_version}; wrk, PostgreSQL and the server share the cores. "
        f"{args.customers} customers, {args.duration} s per run after {args.warmup} s of warm-up, release build.",
        "",
        "| Workload | Connections | req/s | p50 ms | p99 ms | SQL statements/request |",
        "|---|---|---|---|---|---|",
        row("pgbench W1 (server's SQL: page + guest agents)", r["pg_w1"]),
        row("pgbench W1 as one join", r["pg_w1_join"]),
        row("pgbench W2 (deep page)", r["pg_w2"]),
        row("pgbench W3 (one customer)", r["pg_w3"]),
        row("W1 first page of 50", r["w1"]),
        row("W2 page of 50 at 75%", r["w2"]),
        row("W3 one customer by id", r["w3"]),
        row("W4 login", r["w4"]),
        row("W5 createCustomer", r["w5"]),
        row("W1 at 64 connections", r["w1_64"]),
        row("W1 alone (light)", r["w1_light"]),
        row("W1 (light) while W4 saturates", r["w1_with_w4"]),
        row("W1 (light) while W5 saturates", r["w1_with_w5"]),
    ]
    for name, x in r.items():
        if name.startswith("abuse: "):
            lines.append(f"| refused: {name[7:]} | {args.connections} | {x['rps']:.0f} | {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | 0 |")
    login_ceiling = cores * 1000 / verify_ms
    create_ceiling = cores * 1000 / hash_ms
    checks = [
        ("W1 / pgbench W1", r["w1"]["rps"] / r["pg_w1"]["rps"], ">= 0.60"),
        ("W3 / pgbench W3", r["w3"]["rps"] / r["pg_w3"]["rps"], ">= 0.60"),
        ("W2 / W1", r["w2"]["rps"] / r["w1"]["rps"], ">= 0.90"),
        ("W4 / argon2 ceiling", r["w4"]["rps"] / login_ceiling, ">= 0.80"),
        ("W5 / argon2 ceiling", r["w5"]["rps"] / create_ceiling, ">= 0.80"),
        ("W1 p99 while W4 saturates / alone", r["w1_with_w4"]["p99_ms"] / r["w1_light"]["p99_ms"], "<= 3"),
        ("W1 p99 while W5 saturates / alone", r["w1_with_w5"]["p99_ms"] / r["w1_light"]["p99_ms"], "<= 3"),
    ]
    lines += ["", "| Ratio | Measured | Target |", "|---|---|---|"]
    lines += [f"| {name} | {value:.2f} | {target} |" for name, value, target in checks]
    lines += [
        "",
        f"- argon2id (19 MiB, 2 passes): hash {hash_ms:.1f} ms, verify {verify_ms:.1f} ms on one core; "
        f"ceiling on {cores} cores: {login_ceiling:.0f} logins/s, {create_ceiling:.0f} creates/s. "
        f"W4 and W5 alone reached {r['w4']['rps']:.0f} and {r['w5']['rps']:.0f}; while saturating beside light W1 traffic, "
        f"{r['w4_mixed']['rps']:.0f} and {r['w5_mixed']['rps']:.0f}.",
        f"- Peak RSS of the server after W1 at 64 connections: {peak_rss:.1f} MiB (target <= 64).",
        f"- Loading {args.customers} customers with their guest agents: {load_seconds:.1f} s.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.output).write_text(text)
    log(f"wrote {args.output}")


if __name__ == "__main__":
    main()
