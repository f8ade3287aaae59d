#!/usr/bin/env python3
# Scenario 4, restart: kill -9 the daemon while N held sessions are in flight, start it again on
# the same database; time from exec to READY=1 (NOTIFY_SOCKET) and to /readyz answering 200,
# and the create requests sent after the restart (must be none: every session is re-attached).
import argparse
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import benchlib as b  # noqa: E402


def daemon_settings(n, cadence):
    return {
        "api": {"max_in_flight": 64},
        "rate": {"requests_per_minute": 60000, "burst": 500},
        "poll": {"initial_delay": f"{cadence}s", "max_delay": f"{cadence}s", "multiplier": 1},
        "create": {"max_active_sessions": n + 100, "max_concurrent_creates": 64},
    }


def time_restart(wd, sim, settings):
    """Starts the daemon and watches READY=1 and /readyz 200 at once, ~1 ms resolution."""
    d = b.Daemon(wd.path, sim, settings, name="restarted", notify=True)
    d.notify_sock.setblocking(False)
    t_notify = t_ready = None
    port = None
    deadline = d.exec_at + 120
    while (t_notify is None or t_ready is None) and time.monotonic() < deadline:
        if t_notify is None:
            try:
                data = d.notify_sock.recv(4096).decode()
                if "READY=1" in data.split("\n"):
                    t_notify = time.monotonic() - d.exec_at
            except BlockingIOError:
                pass
        if port is None:
            with open(d.log_path, errors="replace") as f:
                text = f.read()
            marker = "metrics listening on http://127.0.0.1:"
            if marker in text:
                port = int(text.split(marker, 1)[1].split("/", 1)[0])
                d.metrics_port = port
        elif t_ready is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                    if r.status == 200:
                        t_ready = time.monotonic() - d.exec_at
            except Exception:
                pass
        if not d.child.alive():
            raise RuntimeError(f"restarted daemon exited ({d.child.returncode}); see {d.log_path}")
        time.sleep(0.001)
    return d, t_notify, t_ready


def main():
    p = argparse.ArgumentParser(description="Scenario 4: restart")
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--cadence", type=float, default=10)
    p.add_argument("--after", type=float, default=25, help="seconds watched after the restart")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    if args.smoke:
        args.sessions, args.cadence, args.after = 300, 2, 5
    n = args.sessions
    b.raise_fd_limit()

    wd = b.Workdir("restart")
    sim = b.Sim(wd.path, "--seed", "4")
    settings = daemon_settings(n, args.cadence)
    first = b.Daemon(wd.path, sim, settings, name="first")
    restarted = None
    try:
        first.wait_ready()
        b.insert_jobs(first.db_path, ((f"restart-{i}", {"prompt": f"Hold {i} [sim:hold]"})
                                      for i in range(n)))
        b.wait_for(lambda: b.job_states(first.db_path).get("running", 0) >= n, 30 + n / 20,
                   interval=0.5, what=f"{n} running jobs")
        time.sleep(args.cadence * 1.5)  # steady state: every session polled at least once
        before = sim.stats()
        b.log(f"restart: {n} sessions running; kill -9 {first.pid}")
        first.kill9()
        restarted, t_notify, t_ready = time_restart(wd, sim, settings)
        b.log(f"restart: READY=1 after {t_notify:.3f} s, /readyz 200 after {t_ready:.3f} s")
        # Long enough for every re-attached session to be polled at least once.
        c0 = restarted.cpu()
        time.sleep(args.after)
        after = sim.stats()
        cpu_after = restarted.cpu()
        states = b.job_states(restarted.db_path)
        rss = restarted.hwm_mib()
        restarted.stop()
    finally:
        first.stop()
        if restarted:
            restarted.stop()
        sim.stop()

    creates = b.route_count(after, b.CREATE_ROUTE) - b.route_count(before, b.CREATE_ROUTE)
    lists = b.route_count(after, b.LIST_ROUTE) - b.route_count(before, b.LIST_ROUTE)
    polls = after["list_requests_with_session_ids"] - before["list_requests_with_session_ids"]
    lookups = lists - polls
    rows = [
        ("sessions in flight at kill -9", n, "", ""),
        ("exec to READY=1 (s)", f"{t_notify:.3f}", "", ""),
        ("exec to /readyz 200 (s)", f"{t_ready:.3f}", "<= 1", b.check(t_ready, "<=", 1)),
        ("create requests after restart", creates, "0", b.check(creates, "<=", 0)),
        ("tag lookups after restart", lookups, "", ""),
        (f"batched status requests in the first {args.after:g} s", polls, "", ""),
        ("jobs still running after restart", states.get("running", 0), f"{n}",
         b.check(states.get("running", 0), ">=", n)),
        ("duplicate sessions (tag groups)", after["duplicate_tag_groups"], "0",
         b.check(after["duplicate_tag_groups"], "<=", 0)),
        ("restarted daemon: CPU s (startup + first window) / peak RSS MiB",
         f"{cpu_after:.2f} / {rss:.1f}", "", ""),
    ]
    notes = [f"restarted daemon watched for {args.after:g} s; cadence {args.cadence:g} s; "
             f"CPU in that window after ready {cpu_after - c0:.2f} s"]
    b.emit({"title": f"Scenario 4: restart with {n} sessions in flight", "rows": rows, "notes": notes,
            "data": {"t_notify": t_notify, "t_ready": t_ready, "creates": creates, "lookups": lookups,
                     "polls": polls, "states": states}}, args)
    wd.cleanup()


if __name__ == "__main__":
    main()
