# Shared plumbing for the benchmark scenarios: starting devin-sim and devin-orch on loopback,
# reading the simulator's counters, sampling a process's CPU and memory from /proc, and the
# SQLite queue a producer writes to.
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("BENCH_BUILD_DIR", os.path.join(REPO, "build", "release"))
API_KEY = "cog_bench_key"
ORG = "org-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

CREATE_ROUTE = "POST /v3/organizations/{org_id}/sessions"
LIST_ROUTE = "GET /v3/organizations/{org_id}/sessions"
GET_ROUTE = "GET /v3/organizations/{org_id}/sessions/{devin_id}"


def binary(name):
    path = os.path.join(BUILD_DIR, name)
    if not os.access(path, os.X_OK):
        sys.exit(f"{path} not found: build it with\n  cmake -S {REPO} -B {BUILD_DIR} -G Ninja "
                 f"-DCMAKE_BUILD_TYPE=Release && cmake --build {BUILD_DIR} --target devin-orch devin-sim")
    return path


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def http_json(url, method="GET", body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


# ---- process accounting -------------------------------------------------------------------

def proc_cpu_seconds(pid):
    """utime + stime of a live process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def proc_threads(pid):
    return proc_status_kib(pid, "Threads")


class Child:
    """A child process whose rusage is collected with wait4 (CPU and peak RSS of the whole run)."""

    def __init__(self, argv, env=None, log_path=None, cwd=None):
        self.log_path = log_path
        self.log_file = open(log_path, "wb") if log_path else subprocess.DEVNULL
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     cwd=cwd, start_new_session=True)
        self.pid = self.proc.pid
        self.rusage = None
        self.returncode = None
        self.ended = None
        self.hwm_kib = 0

    def alive(self):
        if self.returncode is not None:
            return False
        pid, status, usage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self._reaped(status, usage)
        return False

    def _reaped(self, status, usage):
        self.returncode = os.waitstatus_to_exitcode(status)
        self.rusage = usage
        self.ended = time.monotonic()
        self.proc.returncode = self.returncode

    def sample_hwm(self):
        try:
            self.hwm_kib = max(self.hwm_kib, proc_status_kib(self.pid, "VmHWM"))
        except OSError:
            pass
        return self.hwm_kib

    def cpu(self):
        return proc_cpu_seconds(self.pid)

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.alive():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"pid {self.pid} still running after {timeout}s")
            self.sample_hwm()
            time.sleep(0.05)
        return self.returncode

    def signal(self, sig):
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=30):
        if self.returncode is None:
            self.sample_hwm()
            self.signal(signal.SIGTERM)
            try:
                self.wait(timeout)
            except TimeoutError:
                self.signal(signal.SIGKILL)
                self.wait()
        if self.log_file not in (None, subprocess.DEVNULL):
            self.log_file.close()

    def total_cpu(self):
        """CPU seconds (user + system) of the finished process, from wait4."""
        return self.rusage.ru_utime + self.rusage.ru_stime

    def peak_rss_kib(self):
        """Peak RSS (KiB): VmHWM, sampled every 50 ms while the process lives (a high-water mark,
        so only the last moments before exit can escape it). Not ru_maxrss: Linux carries the
        forking Python parent's RSS over exec into the child's maxrss."""
        return self.hwm_kib or (self.rusage.ru_maxrss if self.rusage else 0)


# ---- devin-sim ----------------------------------------------------------------------------

class Sim:
    def __init__(self, workdir, *flags):
        self.port_file = os.path.join(workdir, "sim.port")
        argv = [binary("devin-sim"), "--port", "0", "--port-file", self.port_file,
                "--org", ORG, "--api-key", API_KEY, *[str(f) for f in flags]]
        self.child = Child(argv, log_path=os.path.join(workdir, "sim.log"))
        wait_for(lambda: os.path.exists(self.port_file), 15, what="devin-sim port file")
        with open(self.port_file) as f:
            self.port = int(f.read().strip())
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self):
        return http_json(self.url + "/_sim/stats", timeout=60)

    def sessions(self):
        return http_json(self.url + "/_sim/sessions", timeout=120)["items"]

    def configure(self, **settings):
        return http_json(self.url + "/_sim/config", method="POST", body=settings)

    def stop(self):
        self.child.stop()


def route_count(stats, route, status=None):
    by_status = stats["requests"].get(route, {})
    if status is None:
        return sum(by_status.values())
    return by_status.get(str(status), 0)


def status_count(stats, status):
    """Requests answered with `status` across every route."""
    return sum(v.get(str(status), 0) for v in stats["requests"].values())


# ---- devin-orch ---------------------------------------------------------------------------

DEFAULT_DAEMON = {
    "api": {"max_in_flight": 8},
    "rate": {"requests_per_minute": 60, "burst": 5},
    "poll": {"initial_delay": "10s", "max_delay": "1m", "multiplier": 1.5, "jitter": 0.2},
    "create": {"max_active_sessions": 50, "max_concurrent_creates": 4},
    "jobs": {"files": [], "queue_check_interval": "50ms"},
    "log": {"level": "info"},
}


def _yaml(value, indent=0):
    lines = []
    for key, val in value.items():
        if isinstance(val, dict):
            lines.append(" " * indent + f"{key}:")
            lines.extend(_yaml(val, indent + 2))
        elif isinstance(val, list):
            lines.append(" " * indent + f"{key}: [{', '.join(json.dumps(v) for v in val)}]")
        else:
            lines.append(" " * indent + f"{key}: {json.dumps(val)}")
    return lines


def merge(base, override):
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, val in override.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], val)
        else:
            out[key] = val
    return out


class Daemon:
    """devin-orch run --config <generated yaml>, with metrics on port 0 and the DB in workdir."""

    def __init__(self, workdir, sim, settings, until_idle=False, name="daemon", notify=False,
                 database_url=None):
        self.workdir = workdir
        self.db_path = os.path.join(workdir, "orch.db")
        config = merge(DEFAULT_DAEMON, settings)
        config = merge(config, {
            "api": {"base_url": sim.url, "org_id": ORG},
            # PostgreSQL (bench/postgres.py) instead of the SQLite file in workdir.
            "database": {"url": database_url} if database_url else {"path": self.db_path},
            "metrics": {"enabled": True, "address": "127.0.0.1", "port": 0},
            "log": {"format": "text"},
        })
        self.config = config
        self.config_path = os.path.join(workdir, f"{name}.yaml")
        with open(self.config_path, "w") as f:
            f.write("\n".join(_yaml(config)) + "\n")
        argv = [binary("devin-orch"), "run", "--config", self.config_path]
        if until_idle:
            argv.append("--until-idle")
        env = dict(os.environ, DEVIN_API_KEY=API_KEY)
        for key in ("DEVIN_ORCH_BASE_URL", "DEVIN_ORCH_ORG_ID", "DEVIN_ORCH_DATABASE", "NOTIFY_SOCKET",
                    "CREDENTIALS_DIRECTORY", "JOURNAL_STREAM"):
            env.pop(key, None)
        self.notify_sock = None
        if notify:
            path = os.path.join(workdir, f"{name}.notify")
            if os.path.exists(path):
                os.unlink(path)
            self.notify_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.notify_sock.bind(path)
            env["NOTIFY_SOCKET"] = path
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.exec_at = time.monotonic()
        self.child = Child(argv, env=env, log_path=self.log_path)
        self.pid = self.child.pid
        self.metrics_port = None

    def wait_ready_notify(self, timeout=60):
        """Seconds from exec until READY=1 arrives on NOTIFY_SOCKET."""
        self.notify_sock.settimeout(timeout)
        while True:
            data = self.notify_sock.recv(4096).decode()
            if any(line == "READY=1" for line in data.split("\n")):
                return time.monotonic() - self.exec_at

    def metrics_url(self, timeout=60):
        if self.metrics_port is None:
            def find():
                if not self.child.alive():
                    raise RuntimeError(f"devin-orch exited early ({self.child.returncode}); see {self.log_path}")
                with open(self.log_path, errors="replace") as f:
                    m = re.search(r"metrics listening on http://127\.0\.0\.1:(\d+)/metrics", f.read())
                return m and int(m.group(1))
            self.metrics_port = wait_for(find, timeout, interval=0.002, what="the metrics line")
        return f"http://127.0.0.1:{self.metrics_port}"

    def ready(self):
        try:
            with urllib.request.urlopen(self.metrics_url() + "/readyz", timeout=5) as resp:
                return resp.status == 200
        except Exception:
            return False

    def wait_ready(self, timeout=60):
        wait_for(self.ready, timeout, interval=0.002, what="/readyz 200")
        return time.monotonic() - self.exec_at

    def metrics(self):
        with urllib.request.urlopen(self.metrics_url() + "/metrics", timeout=30) as resp:
            return resp.read().decode()

    def cpu(self):
        return self.child.cpu()

    def hwm_mib(self):
        return self.child.sample_hwm() / 1024

    def rss_mib(self):
        return proc_status_kib(self.pid, "VmRSS") / 1024

    def stop(self):
        self.child.stop()
        if self.notify_sock:
            self.notify_sock.close()

    def kill9(self):
        self.child.sample_hwm()
        self.child.signal(signal.SIGKILL)
        self.child.wait()
        if self.log_path and self.child.log_file not in (None, subprocess.DEVNULL):
            self.child.log_file.close()
        if self.notify_sock:
            self.notify_sock.close()


def db_connect(path, timeout=30):
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    return conn


def insert_jobs(db_path, jobs):
    """jobs: iterable of (key, spec dict). One BEGIN IMMEDIATE transaction; returns commit time."""
    conn = db_connect(db_path)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO jobs(key, spec) VALUES (?, ?)",
                     ((key, json.dumps(spec)) for key, spec in jobs))
    conn.execute("COMMIT")
    committed = time.time()
    conn.close()
    return committed


def job_states(db_path):
    conn = db_connect(db_path)
    rows = dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
    conn.close()
    return rows


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Workdir:
    def __init__(self, name):
        root = os.environ.get("BENCH_TMP", tempfile.gettempdir())
        self.path = tempfile.mkdtemp(prefix=f"bench-{name}-", dir=root)

    def cleanup(self):
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(self.path, ignore_errors=True)


# ---- output -------------------------------------------------------------------------------

def check(value, op, target):
    ok = value <= target if op == "<=" else value >= target
    return "met" if ok else "MISSED"


def print_table(title, rows):
    """rows: list of (metric, value, target, verdict)."""
    widths = [max(len(str(r[i])) for r in rows + [("metric", "value", "target", "result")])
              for i in range(4)]
    print(f"\n{title}")
    header = ("metric", "value", "target", "result")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    sys.stdout.flush()


def emit(result, args):
    """Prints the table and, with --json PATH, writes the result for bench/run-all."""
    print_table(result["title"], result["rows"])
    for note in result.get("notes", []):
        print(f"  note: {note}")
    if getattr(args, "json", None):
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
