#!/usr/bin/env python3
# Scenario 2, throughput under a rate limit: short jobs ([sim:exit], small time factor) against a
# simulator that allows 600 requests/min per key, while the daemon's own ceiling is set above
# that, so it has to find the budget from the 429s. Wall time against the bound the limit
# implies, 429s after the first minute, requests inside a Retry-After window.
import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import benchlib as b  # noqa: E402

# Base lifecycle of a [sim:exit] session: new 2 s, claimed 5 s, running/working 30 s,
# running/finished 10 s, then exit.
EXIT_LIFETIME_S = 2 + 5 + 30 + 10


def run(args, poll_initial):
    """One daemon run against a fresh simulator; returns the measurements."""
    wd = b.Workdir("throughput")
    sim = b.Sim(wd.path, "--seed", "2", "--time-factor", args.time_factor,
                "--rate-limit-rpm", args.limit_rpm, "--rate-limit-burst", args.limit_burst)
    jobs_file = os.path.join(wd.path, "jobs.yaml")
    with open(jobs_file, "w") as f:
        for i in range(args.jobs):
            f.write(f"- key: tp-{i}\n  prompt: \"Short job {i} [sim:exit]\"\n")
    daemon = b.Daemon(wd.path, sim, {
        "rate": {"requests_per_minute": args.daemon_rpm, "burst": args.daemon_burst},
        "poll": {"initial_delay": poll_initial, "max_delay": args.poll_max},
        "create": {"max_active_sessions": args.jobs, "max_concurrent_creates": 8},
        "jobs": {"files": [jobs_file]},
    }, until_idle=True)
    try:
        t0 = daemon.exec_at
        s_minute = None
        while daemon.child.alive():
            if s_minute is None and time.monotonic() - t0 >= 60:
                s_minute = sim.stats()
            daemon.child.sample_hwm()
            if time.monotonic() - t0 > 3600:
                raise TimeoutError("throughput run took over an hour")
            time.sleep(0.05)
        wall = daemon.child.ended - t0
        s_end = sim.stats()
        states = b.job_states(daemon.db_path)
    finally:
        daemon.stop()
        sim.stop()
    wd.cleanup()

    rate = args.limit_rpm / 60
    total = s_end["requests_total"]
    limited = s_end["rate_limited_total"]
    if s_minute is not None:
        late_total = total - s_minute["requests_total"]
        late_429 = limited - s_minute["rate_limited_total"]
    else:  # the run ended inside the first minute
        late_total, late_429 = total, limited
    m = {
        "poll_initial": poll_initial, "wall": wall, "total": total, "limited": limited,
        "late_total": late_total, "late_429": late_429,
        "late_pct": 100 * late_429 / late_total if late_total else 0.0,
        "achieved": (total - limited) / (args.limit_burst + rate * wall),
        "creates": b.route_count(s_end, b.CREATE_ROUTE),
        "creates_ok": b.route_count(s_end, b.CREATE_ROUTE, 200),
        "lists": b.route_count(s_end, b.LIST_ROUTE), "gets": b.route_count(s_end, b.GET_ROUTE),
        "finished": states.get("finished", 0), "states": states,
        "early": s_end["early_requests_after_429"], "duplicates": s_end["duplicate_tag_groups"],
        "cpu": daemon.child.total_cpu(), "rss": daemon.child.peak_rss_kib() / 1024,
    }
    b.log(f"throughput (poll.initial_delay {poll_initial}): wall {wall:.1f} s, states {states}")
    return m


def main():
    p = argparse.ArgumentParser(description="Scenario 2: throughput under a rate limit")
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--limit-rpm", type=int, default=600)
    p.add_argument("--limit-burst", type=int, default=10)
    p.add_argument("--time-factor", type=float, default=0.01)
    p.add_argument("--daemon-rpm", type=int, default=1200)
    p.add_argument("--daemon-burst", type=int, default=10)
    p.add_argument("--poll-initial", default="1s",
                   help="poll.initial_delay of the measured run: sessions here last 0.47 s")
    p.add_argument("--reference-poll-initial", default="10s",
                   help="also run with this first poll (the daemon's default) for reference; "
                        "'' skips it")
    p.add_argument("--poll-max", default="1m")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    if args.smoke:
        args.jobs, args.poll_initial, args.reference_poll_initial = 60, "1s", ""

    m = run(args, args.poll_initial)
    ref = run(args, args.reference_poll_initial) if args.reference_poll_initial else None

    rate = args.limit_rpm / 60
    min_polls = math.ceil(args.jobs / 200)
    lifetime = EXIT_LIFETIME_S * args.time_factor
    bound = max(0, args.jobs + min_polls - args.limit_burst) / rate + lifetime
    finished, wall, total = m["finished"], m["wall"], m["total"]
    answered_ok = total - m["limited"]
    rows = [
        ("jobs finished", f"{finished}/{args.jobs}", f"{args.jobs}", b.check(finished, ">=", args.jobs)),
        ("wall time (s)", f"{wall:.1f}", f"<= {1.05 * bound:.1f} (bound {bound:.1f})",
         b.check(wall, "<=", 1.05 * bound)),
        ("wall / bound", f"{wall / bound:.3f}", "<= 1.05", b.check(wall / bound, "<=", 1.05)),
        ("429s after the first minute (%)", f"{m['late_pct']:.2f} ({m['late_429']}/{m['late_total']})",
         "<= 1", b.check(m["late_pct"], "<=", 1)),
        ("429s in total", m["limited"], "", ""),
        ("early_requests_after_429", m["early"], "0", b.check(m["early"], "<=", 0)),
        ("achieved rate / limit", f"{m['achieved']:.3f}", ">= 0.95", b.check(m["achieved"], ">=", 0.95)),
        ("requests per finished job (all / non-429)",
         f"{total / max(1, finished):.3f} / {answered_ok / max(1, finished):.3f}", "", ""),
        ("creates sent / answered 200", f"{m['creates']} / {m['creates_ok']}", "", ""),
        ("status requests (batched list / single GET)", f"{m['lists']} / {m['gets']}", "", ""),
        ("duplicate sessions (tag groups)", m["duplicates"], "0", b.check(m["duplicates"], "<=", 0)),
        ("daemon CPU s / peak RSS MiB", f"{m['cpu']:.2f} / {m['rss']:.1f}", "", ""),
    ]
    if ref:
        p0 = ref["poll_initial"]
        rows += [
            (f"reference, first poll {p0}: finished / wall (s) / wall / bound",
             f"{ref['finished']}/{args.jobs} / {ref['wall']:.1f} / {ref['wall'] / bound:.3f}", "", ""),
            (f"reference, first poll {p0}: achieved rate / status requests / 429s after minute 1 (%)",
             f"{ref['achieved']:.3f} / {ref['lists'] + ref['gets']} / {ref['late_pct']:.2f}", "", ""),
        ]
    notes = [
        f"limit {args.limit_rpm} rpm burst {args.limit_burst}; daemon ceiling {args.daemon_rpm} rpm burst "
        f"{args.daemon_burst}; poll {args.poll_initial}..{args.poll_max}; time factor {args.time_factor:g} "
        f"(session lifetime {lifetime:.2f} s)",
        f"bound = (jobs {args.jobs} + min polls {min_polls} - burst {args.limit_burst}) / "
        f"{rate:g} rps + last session lifetime {lifetime:.2f} s = {bound:.1f} s",
        f"a poll cannot see a session end before poll.initial_delay after its create: the measured run "
        f"uses {args.poll_initial}, a first poll suited to sessions of {lifetime:.2f} s",
    ]
    if ref:
        notes.append(f"the reference run uses the daemon's default first poll ({ref['poll_initial']}): "
                     f"its last sessions are seen ending about {ref['poll_initial']} after their create, "
                     "when the budget has nothing left to do, a floor of its own next to the bound")
    b.emit({"title": f"Scenario 2: throughput under a {args.limit_rpm} rpm limit ({args.jobs} jobs)",
            "rows": rows, "notes": notes,
            "data": {"wall": wall, "bound": bound, "late_pct": m["late_pct"], "achieved": m["achieved"],
                     "total": total, "limited": m["limited"], "creates": m["creates"],
                     "lists": m["lists"], "gets": m["gets"], "finished": finished,
                     "states": m["states"], "early": m["early"], "reference": ref}}, args)


if __name__ == "__main__":
    main()
