#!/usr/bin/env python3
# The yardstick: the client a user writes from Devin's own docs examples (create a session, then
# GET it every 10 s until it stops), one thread per job, made as correct and efficient as that
# style allows: keep-alive per thread, 429 honoured via Retry-After, 5xx and dropped
# connections on GET retried. A create is never retried after an ambiguous failure (the v3 API
# has no idempotency key), only after a 429, which the server answers before doing anything.
import argparse
import email.utils
import json
import signal
import sys
import threading
import time

import requests

TERMINAL = {"exit", "error", "suspended"}


def retry_after_seconds(response, default):
    ms = response.headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = response.headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            if when is not None:
                return max(0.0, when.timestamp() - time.time())
    return default


class Job(threading.Thread):
    def __init__(self, args, index, counters, lock):
        super().__init__(daemon=True)
        self.args = args
        self.index = index
        self.counters = counters
        self.lock = lock
        self.session_id = None
        self.status = None
        self.error = None
        self.created_at = None   # wall clock, when the create succeeded
        self.done_at = None      # wall clock, when a terminal status was seen

    def count(self, name):
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    def run(self):
        a = self.args
        base = f"{a.base_url}/v3/organizations/{a.org}/sessions"
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {a.api_key}"
        body = {"prompt": a.prompt, "title": f"{a.key_prefix}-{self.index}",
                "tags": [f"{a.key_prefix}-{self.index}"]}
        try:
            while True:
                self.count("create")
                r = http.post(base, json=body, timeout=60)
                if r.status_code == 429:
                    self.count("429")
                    time.sleep(retry_after_seconds(r, 10))
                    continue
                r.raise_for_status()
                self.session_id = r.json()["session_id"]
                self.created_at = time.time()
                break
            while True:
                time.sleep(a.interval)
                try:
                    self.count("get")
                    r = http.get(f"{base}/{self.session_id}", timeout=30)
                except requests.RequestException:
                    self.count("get_error")
                    continue
                if r.status_code == 429:
                    self.count("429")
                    time.sleep(retry_after_seconds(r, a.interval))
                    continue
                if r.status_code >= 500:
                    self.count("get_5xx")
                    continue
                r.raise_for_status()
                self.status = r.json()["status"]
                if self.status in TERMINAL:
                    self.done_at = time.time()
                    return
        except Exception as e:  # a failed job is reported, the others go on
            self.error = f"{type(e).__name__}: {e}"
            self.count("failed")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--base-url", required=True)
    p.add_argument("--org", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--jobs", type=int, required=True)
    p.add_argument("--prompt", default="Fix the flaky test [sim:exit]")
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--key-prefix", default="baseline")
    p.add_argument("--summary", help="write a JSON summary here when every job has ended")
    a = p.parse_args()

    counters, lock = {}, threading.Lock()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    jobs = [Job(a, i, counters, lock) for i in range(a.jobs)]
    started = time.time()
    for job in jobs:
        try:
            job.start()
        except RuntimeError as e:  # can't start new thread
            job.error = f"thread start: {e}"
            counters["thread_start_failed"] = counters.get("thread_start_failed", 0) + 1
    for job in jobs:
        if job.is_alive():
            job.join()
    summary = {
        "started": started, "ended": time.time(), "counters": counters,
        "jobs": [{"session_id": j.session_id, "status": j.status, "error": j.error,
                  "created_at": j.created_at, "done_at": j.done_at} for j in jobs],
    }
    if a.summary:
        with open(a.summary, "w") as f:
            json.dump(summary, f)
    failed = sum(1 for j in jobs if j.error)
    print(f"baseline: {a.jobs} jobs, {failed} failed, counters {counters}", flush=True)


if __name__ == "__main__":
    main()
