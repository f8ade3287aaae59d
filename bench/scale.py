#!/usr/bin/env python3
# Scenario 1, scale: N live sessions held running ([sim:hold]) and polled at a fixed cadence.
# Measures the daemon's steady-state CPU, peak RSS and status requests per cycle, then the
# docs-style baseline client (one thread per session) at growing N until it breaks.
import argparse
import json
import math
import re
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import benchlib as b  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def steady_window(child_cpu, sim, seconds, sample=None):
    """CPU seconds of the measured process, sim stats before/after, over `seconds`."""
    s0, c0, t0 = sim.stats(), child_cpu(), time.monotonic()
    sim_c0 = sim.child.cpu()
    end = t0 + seconds
    while time.monotonic() < end:
        if sample:
            sample()
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    c1, t1 = child_cpu(), time.monotonic()
    sim_c1 = sim.child.cpu()
    s1 = sim.stats()
    return {"cpu": c1 - c0, "elapsed": t1 - t0, "s0": s0, "s1": s1, "sim_cpu": sim_c1 - sim_c0}


def run_daemon(args, out):
    wd = b.Workdir("scale")
    sim = b.Sim(wd.path, "--seed", "1")
    n = args.sessions
    cadence = args.cadence
    daemon = b.Daemon(wd.path, sim, {
        "api": {"max_in_flight": 64},
        "rate": {"requests_per_minute": 60000, "burst": 500},
        "poll": {"initial_delay": f"{cadence}s", "max_delay": f"{cadence}s", "multiplier": 1,
                 "jitter": args.jitter},
        "create": {"max_active_sessions": n + 100, "max_concurrent_creates": 64},
    })
    try:
        daemon.wait_ready()
        ramp_perf = None
        if args.profile:
            ramp_perf = subprocess.Popen(
                ["perf", "record", "--call-graph", "dwarf,16384", "-e", "cpu-clock", "-F", "499",
                 "-p", str(daemon.pid),
                 "-o", args.profile + ".ramp.data"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        t_insert = time.monotonic()
        b.insert_jobs(daemon.db_path, ((f"scale-{i}", {"prompt": f"Hold {i} [sim:hold]"})
                                       for i in range(n)))
        b.log(f"scale: {n} jobs queued; waiting for all sessions")

        def all_running():
            daemon.hwm_mib()
            return b.job_states(daemon.db_path).get("running", 0) >= n
        b.wait_for(all_running, 30 + n / 20, interval=0.5, what=f"{n} running jobs")
        ramp = time.monotonic() - t_insert
        ramp_cpu = daemon.cpu()
        if ramp_perf:
            ramp_perf.send_signal(signal.SIGINT)
            ramp_perf.wait()
            perf_report(args.profile + ".ramp.data", args.profile + ".ramp.txt")
        b.log(f"scale: {n} sessions running after {ramp:.1f} s ({ramp_cpu:.1f} CPU s); settling")
        time.sleep(max(cadence * 1.5, 5))
        b.log(f"scale: measuring {args.window} s of steady state")
        w = steady_window(daemon.cpu, sim, args.window, sample=daemon.hwm_mib)
        rss_now = daemon.rss_mib()
        cycles = w["elapsed"] / cadence
        lists = w["s1"]["list_requests_with_session_ids"] - w["s0"]["list_requests_with_session_ids"]
        singles = b.route_count(w["s1"], b.GET_ROUTE) - b.route_count(w["s0"], b.GET_ROUTE)
        total = w["s1"]["requests_total"] - w["s0"]["requests_total"]
        creates = b.route_count(w["s1"], b.CREATE_ROUTE)
        profile = None
        if args.profile:
            profile = run_perf(daemon.pid, args.profile, args.profile_seconds)
        daemon.stop()
        peak = daemon.child.peak_rss_kib() / 1024
        cpu_pct = 100 * w["cpu"] / w["elapsed"]
        per_cycle = lists / cycles
        bound = math.ceil(n / 200) + 1
        out.update({
            "n": n, "cadence_s": cadence, "jitter": args.jitter, "ramp_s": ramp, "ramp_cpu_s": ramp_cpu,
            "window_s": w["elapsed"], "cpu_s": w["cpu"], "cpu_pct": cpu_pct,
            "peak_rss_mib": peak, "rss_steady_mib": rss_now, "list_requests": lists,
            "single_gets": singles, "requests_total": total, "cycles": cycles,
            "list_per_cycle": per_cycle, "bound_per_cycle": bound, "creates": creates,
            "sim_cpu_pct": 100 * w["sim_cpu"] / w["elapsed"], "profile": profile,
            "duplicate_tag_groups": w["s1"]["duplicate_tag_groups"],
        })
        return out
    finally:
        daemon.stop()
        sim.stop()
        wd.cleanup()


def run_perf(pid, path, seconds):
    data = path + ".data"
    b.log(f"scale: perf record -g -e cpu-clock on pid {pid} for {seconds} s")
    rec = subprocess.run(["perf", "record", "--call-graph", "dwarf,16384", "-e", "cpu-clock",
                          "-F", "999", "-p", str(pid),
                          "-o", data, "--", "sleep", str(seconds)], capture_output=True, text=True)
    if rec.returncode != 0:
        return f"perf record failed: {rec.stderr.strip()[:300]}"
    perf_report(data, path)
    return path


def perf_report(data, path):
    """Self time by symbol, then inclusive time of the daemon's own functions."""
    def report(*extra):
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none", *extra],
                             capture_output=True, text=True)
        lines = [re.sub(r"\s+-\s+-\s*$", "", ln.rstrip()) for ln in rep.stdout.splitlines()]
        return [ln[:240] for ln in lines if ln.strip()]
    flat = report("--no-children", "--sort", "dso,symbol", "--percent-limit", "0.7")
    incl = [ln for ln in report("--children", "--sort", "symbol", "--percent-limit", "2")
            if "devin_orch::" in ln or ln.startswith("#")]
    samples = next((ln for ln in flat if ln.startswith("# Samples")), "")
    with open(path, "w") as f:
        f.write(samples + "\n-- self time --\n")
        f.write("\n".join(ln for ln in flat if not ln.startswith("#")) + "\n")
        f.write("-- inclusive (children), devin_orch functions --\n")
        f.write("\n".join(ln for ln in incl if not ln.startswith("#")) + "\n")


def run_baseline(args, n):
    wd = b.Workdir(f"scale-baseline-{n}")
    sim = b.Sim(wd.path, "--seed", "1")
    cadence = args.cadence
    argv = [sys.executable, os.path.join(HERE, "baseline", "devin_client.py"),
            "--base-url", sim.url, "--org", b.ORG, "--api-key", b.API_KEY, "--jobs", str(n),
            "--prompt", "Hold [sim:hold]", "--interval", str(cadence)]
    child = b.Child(argv, log_path=os.path.join(wd.path, "baseline.log"))
    result = {"n": n}
    try:
        t0 = time.monotonic()
        created = 0
        deadline = t0 + max(60, n / 20)
        while time.monotonic() < deadline and child.alive():
            created = sim.stats()["sessions_created"]
            if created >= n:
                break
            child.sample_hwm()
            time.sleep(0.5)
        result["ramp_s"] = time.monotonic() - t0
        result["created"] = created
        if not child.alive():
            result["broke"] = f"client exited ({child.returncode})"
            return result
        time.sleep(cadence * 1.5)
        w = steady_window(child.cpu, sim, args.baseline_window, sample=child.sample_hwm)
        gets = b.route_count(w["s1"], b.GET_ROUTE) - b.route_count(w["s0"], b.GET_ROUTE)
        cycles = w["elapsed"] / cadence
        result.update({
            "cpu_s": w["cpu"], "cpu_pct": 100 * w["cpu"] / w["elapsed"],
            "rss_mib": child.sample_hwm() / 1024, "threads": b.proc_threads(child.pid),
            "gets_per_cycle": gets / cycles, "window_s": w["elapsed"],
            "sim_cpu_pct": 100 * w["sim_cpu"] / w["elapsed"],
            "errors": b.status_count(w["s1"], 429) + sum(
                v.get("reset", 0) + v.get("500", 0) for v in w["s1"]["requests"].values()),
        })
        reasons = []
        if created < n:
            reasons.append(f"only {created}/{n} sessions created within {deadline - t0:.0f} s")
        if result["gets_per_cycle"] < 0.95 * n:
            reasons.append(f"cadence not held: {result['gets_per_cycle']:.0f} GETs per cycle for {n} sessions")
        if result["cpu_pct"] > 90:
            reasons.append(f"client CPU {result['cpu_pct']:.0f}% of a core")
        if reasons:
            result["broke"] = "; ".join(reasons)
        return result
    finally:
        child.signal(signal.SIGKILL)
        child.wait()
        child.stop()
        sim.stop()
        wd.cleanup()


def main():
    p = argparse.ArgumentParser(description="Scenario 1: scale")
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--cadence", type=float, default=10)
    p.add_argument("--jitter", type=float, default=0.2, help="poll.jitter (daemon default 0.2)")
    p.add_argument("--window", type=float, default=120, help="steady-state window, seconds")
    p.add_argument("--baseline", default="100,500,1000,2000,5000,10000",
                   help="baseline sizes, tried in order until one breaks ('' = skip)")
    p.add_argument("--baseline-window", type=float, default=60)
    p.add_argument("--profile", help="also perf-record the daemon after the window; report path")
    p.add_argument("--profile-seconds", type=int, default=60)
    p.add_argument("--baseline-only", action="store_true",
                   help="skip the daemon; merge the baseline results into the existing --json file")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    if args.smoke:
        args.sessions, args.cadence, args.window = 300, 2, 6
        args.baseline, args.baseline_window = "50", 4
    b.raise_fd_limit()

    base = []
    if args.baseline_only:
        with open(args.json) as f:
            previous = json.load(f)
        d = previous["daemon"]
        base = previous["baseline"]
    else:
        d = run_daemon(args, {})
    for n in [int(x) for x in args.baseline.split(",") if x.strip()]:
        b.log(f"scale: baseline with {n} threads")
        r = run_baseline(args, n)
        base = [x for x in base if x["n"] != n] + [r]
        b.log(f"scale: baseline {n}: {r}")
        if r.get("broke"):
            break

    base.sort(key=lambda r: r["n"])
    n = d["n"]
    rows = [
        ("sessions held", n, "", ""),
        ("ramp: queue to all running (s)", f"{d['ramp_s']:.1f}", "", ""),
        ("steady window (s) / cycles", f"{d['window_s']:.0f} / {d['cycles']:.1f}", ">= 120 s", ""),
        ("daemon CPU, % of one core", f"{d['cpu_pct']:.2f}", "<= 2", b.check(d["cpu_pct"], "<=", 2)),
        ("daemon peak RSS (MiB)", f"{d['peak_rss_mib']:.1f}", "<= 48", b.check(d["peak_rss_mib"], "<=", 48)),
        ("daemon RSS in steady state (MiB)", f"{d['rss_steady_mib']:.1f}", "", ""),
        ("status requests per cycle", f"{d['list_per_cycle']:.1f}", f"<= {d['bound_per_cycle']}",
         b.check(d["list_per_cycle"], "<=", d["bound_per_cycle"])),
        ("single GETs in window", d["single_gets"], "", ""),
        ("creates (= sessions)", d["creates"], f"{n}", "met" if d["creates"] == n else "MISSED"),
        ("simulator CPU, % of one core", f"{d['sim_cpu_pct']:.2f}", "", ""),
    ]
    for r in base:
        if "cpu_pct" in r:
            rows.append((f"baseline n={r['n']}: CPU % / RSS MiB / GETs per cycle",
                         f"{r['cpu_pct']:.1f} / {r['rss_mib']:.0f} / {r['gets_per_cycle']:.0f}",
                         "", "broke" if r.get("broke") else "held"))
        else:
            rows.append((f"baseline n={r['n']}", r.get("broke", ""), "", "broke"))
    notes = [f"cycle = poll cadence {d['cadence_s']:g} s; poll.jitter {d.get('jitter', 0.2):g}; daemon: "
             "rate 60000 rpm burst 500, 64 concurrent creates, max_in_flight 64, "
             f"max_active_sessions {n + 100}, poll initial = max = cadence, multiplier 1",
             f"baseline: one thread per held session, GET every {d['cadence_s']:g} s; its window "
             f"{args.baseline_window:g} s after all sessions exist"]
    notes += [f"baseline n={r['n']} broke: {r['broke']}" for r in base if r.get("broke")]
    if d.get("profile"):
        notes.append("perf was attached during the ramp (its time and CPU include perf's overhead) and "
                     "after the steady window; the steady-state figures are without perf")
        notes.append(f"profile: {d['profile']}")
    b.emit({"title": f"Scenario 1: scale ({n} held sessions)", "rows": rows, "notes": notes,
            "daemon": d, "baseline": base}, args)


if __name__ == "__main__":
    main()
