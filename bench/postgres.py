#!/usr/bin/env python3
# Scenarios 6 to 8, the PostgreSQL store (database.url) on a throwaway local cluster
# (scripts/pg-cluster.sh: loopback, fsync off).
#   failover: two daemons on one database, the lease holder killed with SIGKILL while its
#     sessions run; time from the kill to the first API request the simulator receives from the
#     standby that takes over (target: lease.ttl + 2 s; a standby on PostgreSQL cannot tell a
#     dead holder from a slow one, so it waits for the lapse).
#   pickup: a producer inserts jobs on its own connection (a psql session, autocommit) at
#     exponential intervals; latency from the row's created_at (the server's clock at the
#     insert, which commits at once) to the daemon's 'intent' history row, written right before
#     the create request is sent (target p99 <= 50 ms).
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import benchlib as b  # noqa: E402

CLUSTER_SCRIPT = os.path.join(b.REPO, "scripts", "pg-cluster.sh")


class Cluster:
    """A PostgreSQL server of its own for the run; one fresh database per measurement."""

    def __init__(self):
        root = os.environ.get("BENCH_TMP", tempfile.gettempdir())
        self.parent = tempfile.mkdtemp(prefix="bench-pg-", dir=root)
        os.chmod(self.parent, 0o755)  # as root the server runs as `postgres`
        self.dir = os.path.join(self.parent, "cluster")
        out = subprocess.run([CLUSTER_SCRIPT, "start", self.dir], check=True,
                             capture_output=True, text=True)
        self.url = out.stdout.strip().splitlines()[-1]
        self.count = 0
        # Statement counts for the scale scenario: the library loads only at server start.
        self.psql(self.url, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        subprocess.run([CLUSTER_SCRIPT, "kill", self.dir], check=True, capture_output=True)
        subprocess.run([CLUSTER_SCRIPT, "restart", self.dir], check=True, capture_output=True)

    def database(self, name):
        self.count += 1
        db = f"bench_{name}_{self.count}"
        self.psql(self.url, f"CREATE DATABASE {db} TEMPLATE template0")
        return self.url.rsplit("/", 1)[0] + "/" + db

    @staticmethod
    def psql(url, sql):
        return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url,
                               "-c", sql], check=True, capture_output=True, text=True).stdout

    def stop(self):
        subprocess.run([CLUSTER_SCRIPT, "stop", self.dir], capture_output=True)
        os.rmdir(self.parent) if os.path.isdir(self.parent) and not os.listdir(self.parent) else None


def wait_for_schema(url):
    def ready():
        try:
            Cluster.psql(url, "SELECT 1 FROM jobs LIMIT 1")
            return True
        except subprocess.CalledProcessError:
            return False
    b.wait_for(ready, 60, interval=0.05, what="the schema")


def total_requests(sim):
    return sum(sum(v.values()) for v in sim.stats()["requests"].values())


# ---- failover -----------------------------------------------------------------------------

def failover_once(cluster, ttl_s, jobs):
    wd = b.Workdir("pg-failover")
    url = cluster.database("failover")
    sim = b.Sim(wd.path, "--seed", "5", "--time-factor", "1")
    settings = {
        "api": {"max_in_flight": 16},
        "rate": {"requests_per_minute": 6000, "burst": 100},
        "poll": {"initial_delay": "1s", "max_delay": "1s", "multiplier": 1},
        "create": {"max_active_sessions": jobs + 10, "max_concurrent_creates": 16},
        "lease": {"ttl": f"{ttl_s}s"},
    }
    holder = standby = None
    try:
        holder = b.Daemon(wd.path, sim, settings, name="holder", database_url=url)
        holder.wait_ready()
        wait_for_schema(url)
        Cluster.psql(url, "INSERT INTO jobs (key, spec) VALUES " + ",".join(
            f"('run-{i}', '{{\"prompt\": \"Long task {i}\"}}')" for i in range(jobs)))
        b.wait_for(lambda: Cluster.psql(url, "SELECT count(*) FROM jobs WHERE state = 'running'")
                   .strip() == str(jobs), 60, interval=0.1, what="every job running")
        standby = b.Daemon(wd.path, sim, settings, name="standby", database_url=url)
        standby.metrics_url()
        time.sleep(1.5)  # the standby has looked at the lease at least once
        before = total_requests(sim)
        killed = time.monotonic()
        holder.child.signal(signal.SIGKILL)
        holder.child.wait(10)
        # Work for the successor at once: a new job beside the running sessions to poll.
        Cluster.psql(url, "INSERT INTO jobs (key, spec) VALUES ('after-kill', '{\"prompt\": \"p\"}')")
        first = b.wait_for(lambda: total_requests(sim) > before and time.monotonic(),
                           ttl_s + 60, interval=0.005, what="the successor's first request")
        seconds = first - killed
        creates_for_running = Cluster.psql(
            url, "SELECT count(*) FROM job_events e JOIN jobs j ON j.id = e.job_id "
                 "WHERE e.event = 'intent' AND j.key LIKE 'run-%'").strip()
    finally:
        for d in (standby, holder):
            if d:
                d.stop()
        sim.stop()
        wd.cleanup()
    return seconds, int(creates_for_running)


def failover(args, cluster):
    rows, notes, results = [], [], {}
    for ttl in args.ttls:
        times = []
        for i in range(args.runs):
            seconds, intents = failover_once(cluster, ttl, args.jobs)
            b.log(f"failover ttl={ttl}s run {i + 1}: {seconds:.3f} s "
                  f"(intents of the {args.jobs} running jobs: {intents})")
            if intents != args.jobs:
                notes.append(f"ttl {ttl}s run {i + 1}: {intents} intents for {args.jobs} jobs "
                             "(a job was created again)")
            times.append(seconds)
        results[ttl] = times
        worst = max(times)
        rows.append((f"failover, lease.ttl {ttl}s (worst of {len(times)})", f"{worst:.2f} s",
                     f"<= {ttl + 2} s", b.check(worst, "<=", ttl + 2)))
        rows.append((f"  each run", ", ".join(f"{t:.2f}" for t in times), "", ""))
    return rows, notes, results


# ---- pickup -------------------------------------------------------------------------------

def pickup(args, cluster):
    wd = b.Workdir("pg-pickup")
    url = cluster.database("pickup")
    sim = b.Sim(wd.path, "--seed", "3", "--time-factor", "0.01")
    daemon = b.Daemon(wd.path, sim, {
        "api": {"max_in_flight": 64},
        "rate": {"requests_per_minute": 60000, "burst": 500},
        "create": {"max_active_sessions": args.pickup_jobs + 100, "max_concurrent_creates": 64},
        "poll": {"initial_delay": "1s", "max_delay": "5s"},
    }, database_url=url)
    producer = None
    try:
        daemon.wait_ready()
        wait_for_schema(url)
        c0, t0 = daemon.cpu(), time.monotonic()
        time.sleep(args.idle_window)
        idle_pct = 100 * (daemon.cpu() - c0) / (time.monotonic() - t0)
        producer = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        rng = random.Random(args.seed)
        b.log(f"pickup: producing {args.pickup_jobs} jobs, mean gap {args.mean_ms} ms")
        for i in range(args.pickup_jobs):
            time.sleep(rng.expovariate(1000 / args.mean_ms))
            spec = json.dumps({"prompt": f"Pickup {i} [sim:exit]"})
            producer.stdin.write(f"INSERT INTO jobs (key, spec) VALUES ('pickup-{i}', '{spec}');\n")
            producer.stdin.flush()
        producer.stdin.close()
        producer.wait(30)

        def latencies():
            out = Cluster.psql(url, "SELECT min(e.at) - j.created_at FROM job_events e "
                                    "JOIN jobs j ON j.id = e.job_id WHERE e.event = 'intent' "
                                    "GROUP BY j.id, j.created_at")
            values = [int(v) for v in out.split()]
            return values if len(values) >= args.pickup_jobs else None
        values = b.wait_for(latencies, 120, interval=0.2, what="an intent for every job")
    finally:
        if producer and producer.poll() is None:
            producer.kill()
        daemon.stop()
        sim.stop()
        wd.cleanup()
    p99 = b.percentile(values, 99)
    rows = [
        ("pickup p50", f"{b.percentile(values, 50):.0f} ms", "", ""),
        ("pickup p90", f"{b.percentile(values, 90):.0f} ms", "", ""),
        ("pickup p99", f"{p99:.0f} ms", "<= 50 ms", b.check(p99, "<=", 50)),
        ("pickup max", f"{max(values):.0f} ms", "", ""),
        ("idle CPU (LISTEN, nothing queued)", f"{idle_pct:.2f} %", "", ""),
    ]
    return rows, {"n": len(values), "p50": b.percentile(values, 50),
                  "p90": b.percentile(values, 90), "p99": p99, "max": max(values),
                  "idle_cpu_pct": idle_pct}


# ---- scale --------------------------------------------------------------------------------

class DatabaseLoad:
    """Statements and transactions the database ran for one database, minus our own probes."""

    def __init__(self, url):
        self.url = url
        Cluster.psql(url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.probes = 0

    def sample(self):
        out = Cluster.psql(self.url, """
            SELECT (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
                     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND query NOT LIKE '%pg_stat_%'),
                   (SELECT xact_commit + xact_rollback FROM pg_stat_database
                     WHERE datname = current_database())""")
        self.probes += 1
        statements, transactions = (int(v) for v in out.strip().split("|"))
        # Each probe is one transaction of its own (psql autocommit), counted by pg_stat_database.
        return statements, transactions - self.probes

    def top(self, limit=8):
        return Cluster.psql(self.url, f"""
            SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query NOT LIKE '%pg_stat_%' ORDER BY calls DESC LIMIT {limit}""").strip()


def scale(args, cluster):
    wd = b.Workdir("pg-scale")
    url = cluster.database("scale")
    sim = b.Sim(wd.path, "--seed", "1")
    n, cadence = args.sessions, args.cadence
    daemon = b.Daemon(wd.path, sim, {
        "api": {"max_in_flight": 64},
        "rate": {"requests_per_minute": 60000, "burst": 500},
        "poll": {"initial_delay": f"{cadence}s", "max_delay": f"{cadence}s", "multiplier": 1,
                 "jitter": 0.2},
        "create": {"max_active_sessions": n + 100, "max_concurrent_creates": 64},
    }, database_url=url)
    try:
        daemon.wait_ready()
        wait_for_schema(url)
        load = DatabaseLoad(url)
        t_insert = time.monotonic()
        for start in range(0, n, 1000):
            Cluster.psql(url, "INSERT INTO jobs (key, spec) VALUES " + ",".join(
                f"('scale-{i}', '{{\"prompt\": \"Hold {i} [sim:hold]\"}}')"
                for i in range(start, min(n, start + 1000))))
        b.log(f"pg-scale: {n} jobs queued; waiting for all sessions")

        def all_running():
            daemon.hwm_mib()
            return int(Cluster.psql(url, "SELECT count(*) FROM jobs WHERE state = 'running'")) >= n
        b.wait_for(all_running, 60 + n / 20, interval=0.5, what=f"{n} running jobs")
        ramp = time.monotonic() - t_insert
        b.log(f"pg-scale: {n} sessions running after {ramp:.1f} s; settling")
        time.sleep(max(cadence * 1.5, 3))
        statements0, transactions0 = load.sample()
        c0, t0 = daemon.cpu(), time.monotonic()
        end = t0 + args.window
        while time.monotonic() < end:
            daemon.hwm_mib()
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        cpu, elapsed = daemon.cpu() - c0, time.monotonic() - t0
        statements1, transactions1 = load.sample()
        top = load.top()
        rss_now = daemon.rss_mib()
        daemon.stop()
        peak = daemon.child.peak_rss_kib() / 1024
    finally:
        daemon.stop()
        sim.stop()
        wd.cleanup()
    cycles = elapsed / cadence
    cpu_pct = 100 * cpu / elapsed
    per_cycle_statements = (statements1 - statements0) / cycles
    per_cycle_transactions = (transactions1 - transactions0) / cycles
    rows = [
        (f"{n:,} live sessions: daemon CPU, % of one core", f"{cpu_pct:.2f}", "<= 2",
         b.check(cpu_pct, "<=", 2)),
        (f"{n:,} live sessions: daemon peak RSS (MiB)", f"{peak:.1f}", "<= 48",
         b.check(peak, "<=", 48)),
        (f"  statements per poll cycle ({cadence:g} s)", f"{per_cycle_statements:.1f}", "", ""),
        (f"  transactions per poll cycle", f"{per_cycle_transactions:.1f}", "", ""),
        (f"  ramp to {n:,} running", f"{ramp:.1f} s", "", ""),
    ]
    b.log("pg-scale: most frequent statements over the run:\n" + top)
    return rows, {"n": n, "cadence_s": cadence, "window_s": elapsed, "cpu_s": cpu,
                  "cpu_pct": cpu_pct, "peak_rss_mib": peak, "rss_steady_mib": rss_now,
                  "statements_per_cycle": per_cycle_statements,
                  "transactions_per_cycle": per_cycle_transactions, "ramp_s": ramp,
                  "top_statements": top}


def main():
    p = argparse.ArgumentParser(description="Scenarios 6-8: PostgreSQL failover, pickup and scale")
    p.add_argument("--scenarios", default="failover,pickup,scale")
    p.add_argument("--ttls", type=lambda s: [int(x) for x in s.split(",")], default=[15, 3],
                   help="lease.ttl values in seconds")
    p.add_argument("--runs", type=int, default=3, help="failovers per ttl")
    p.add_argument("--jobs", type=int, default=10, help="running sessions at the kill")
    p.add_argument("--pickup-jobs", type=int, default=500)
    p.add_argument("--mean-ms", type=float, default=75)
    p.add_argument("--idle-window", type=float, default=10)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--sessions", type=int, default=10000, help="scale: live sessions")
    p.add_argument("--cadence", type=float, default=10, help="scale: poll cadence, seconds")
    p.add_argument("--window", type=float, default=120, help="scale: steady window, seconds")
    p.add_argument("--json", help="write the result here (bench/run-all)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = p.parse_args()
    if args.smoke:
        args.ttls, args.runs, args.jobs, args.pickup_jobs, args.idle_window = [3], 1, 3, 30, 1
        args.sessions, args.cadence, args.window = 50, 2, 4
    b.raise_fd_limit()
    scenarios = args.scenarios.split(",")
    cluster = Cluster()
    rows, notes, data = [], [], {}
    try:
        if "failover" in scenarios:
            r, n, data["failover"] = failover(args, cluster)
            rows += r
            notes += n
        if "pickup" in scenarios:
            r, data["pickup"] = pickup(args, cluster)
            rows += r
        if "scale" in scenarios:
            r, data["scale"] = scale(args, cluster)
            rows += r
    finally:
        cluster.stop()
    notes += [
        "local PostgreSQL from scripts/pg-cluster.sh (loopback TCP, fsync off: commits cost no "
        "disk flush, so a production server adds its commit latency to pickup)",
        f"failover: {args.jobs} sessions running (time factor 1), holder and standby started in "
        "that order, poll cadence 1 s; a job inserted right after the kill; time to the first "
        "request the simulator counts after the kill (sampled every 5 ms); every running job must "
        "keep its single intent (no second create)",
        f"pickup: {args.pickup_jobs} single-row autocommit inserts from one psql session, "
        f"exponential gaps with mean {args.mean_ms:.0f} ms; latency = job_events.at('intent') - "
        "jobs.created_at (the server's clock at the insert; 1 ms resolution); idle CPU over "
        f"{args.idle_window:.0f} s with nothing queued",
        f"scale: {args.sessions:,} sessions held running ([sim:hold]), poll cadence "
        f"{args.cadence:g} s with jitter 0.2, {args.window:.0f} s steady window after all run; "
        "statements from pg_stat_statements (top-level, BEGIN/COMMIT included, our probes "
        "excluded), transactions from pg_stat_database",
    ]
    b.emit({"title": "Scenarios 6-8: PostgreSQL failover, pickup and scale", "rows": rows,
            "notes": notes, "data": {k: v for k, v in data.items()}}, args)


if __name__ == "__main__":
    main()
