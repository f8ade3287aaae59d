#!/usr/bin/env python3
# Notification latency: from a job's end being recorded (the event's created_at, written in the
# same transaction) to a healthy webhook receiver having it, signature checked. The daemon runs
# a batch against devin-sim with one receiver (tests/integration/webhook_receiver.py); the
# receiver logs when each request arrived.
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import benchlib as b  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(os.path.dirname(HERE), "tests", "integration", "webhook_receiver.py")


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main():
    p = argparse.ArgumentParser(description="Notification latency with a healthy receiver")
    p.add_argument("--jobs", type=int, default=500)
    p.add_argument("--time-factor", type=float, default=0.2,
                   help="0.2 makes a session last 47 s x 0.2 = 9.4 s")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    if args.smoke:
        args.jobs, args.time_factor = 30, 0.05
    b.raise_fd_limit()
    wd = b.Workdir("notify")
    secret = os.path.join(wd.path, "webhook.secret")
    with open(secret, "w") as f:
        f.write("whsec_bench\n")
    os.chmod(secret, 0o600)
    port_file = os.path.join(wd.path, "receiver.port")
    received_log = os.path.join(wd.path, "received.jsonl")
    receiver = b.Child([sys.executable, RECEIVER, "--port-file", port_file, "--log", received_log,
                        "--secret-file", secret], log_path=os.path.join(wd.path, "receiver.err"))
    b.wait_for(lambda: os.path.exists(port_file), 20, what="receiver port")
    url = f"http://127.0.0.1:{open(port_file).read().strip()}/hook"
    sim = b.Sim(wd.path, "--seed", "9", "--time-factor", str(args.time_factor))
    jobs_file = os.path.join(wd.path, "jobs.yaml")
    markers = ["[sim:exit]", "[sim:error]", "[sim:finished]"]
    with open(jobs_file, "w") as f:
        for i in range(args.jobs):
            f.write(f"- key: notify-{i}\n  prompt: \"Notify job {i} {markers[i % 3]}\"\n")
    daemon = b.Daemon(wd.path, sim, {
        "api": {"max_in_flight": 64},
        "rate": {"requests_per_minute": 6000, "burst": 100},
        "poll": {"initial_delay": "2s", "max_delay": "10s"},
        "create": {"max_active_sessions": args.jobs, "max_concurrent_creates": 64},
        "jobs": {"files": [jobs_file]},
        "notify": {"webhooks": [{"url": url, "secret_file": secret}]},
    }, until_idle=True)
    try:
        daemon.child.wait(timeout=3600)
        entries = [json.loads(line) for line in open(received_log) if line.strip()]
    finally:
        daemon.stop()
        sim.stop()
        receiver.stop()
    accepted = [e for e in entries if e["outcome"] == "accepted"]
    bad = [e for e in entries if e["outcome"] == "bad_signature"]
    ids = [e["id"] for e in accepted]
    lags = [e["received"] - parse_time(e["created_at"]) for e in accepted]
    p99 = b.percentile(lags, 99)
    rows = [
        ("events received / distinct / bad signatures", f"{len(accepted)} / {len(set(ids))} / {len(bad)}",
         f"{args.jobs} / {args.jobs} / 0",
         "met" if len(set(ids)) == args.jobs and not bad else "MISSED"),
        ("recorded -> received, p50 / p90 s", f"{b.percentile(lags, 50):.3f} / {b.percentile(lags, 90):.3f}", "", ""),
        ("recorded -> received, p99 s", f"{p99:.3f}", "<= 1", b.check(p99, "<=", 1)),
        ("recorded -> received, max s", f"{max(lags) if lags else float('nan'):.3f}", "", ""),
        ("daemon exit code", str(daemon.child.returncode), "0", "met" if daemon.child.returncode == 0 else "MISSED"),
    ]
    notes = [f"{args.jobs} jobs ([sim:exit], [sim:error], [sim:finished]), time factor {args.time_factor:g}; "
             "one receiver on loopback (Python http.server, one thread per request, hmac check), "
             "notify defaults (check_interval 200ms)",
             "recorded = the event's created_at (the time of the transaction that ended the job); "
             "received = when the receiver read the request; both on this machine's clock"]
    wd.cleanup()
    b.emit({"title": f"Notifications: latency to a healthy receiver ({args.jobs} jobs)", "rows": rows,
            "notes": notes}, args)


if __name__ == "__main__":
    main()
