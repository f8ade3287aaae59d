#!/usr/bin/env python3
"""A webhook receiver for the notification tests (and docs/notifications.md's example).

Verifies every request's Devin-Orch-Signature with Python's hmac, answers with injected faults,
and appends one JSON line per request to --log:
  {"id", "type", "job", "outcome": "accepted"|"error500"|"timeout"|"bad_signature",
   "received": <unix seconds, float>, "created_at": <the event's created_at>}
Writes the port it listens on to --port-file once ready. Modes:
  --fail-rate R     answer 500 to a fraction R of the requests
  --timeout-rate R  hold a fraction R of the requests for --hold seconds, then answer 200
                    (the sender has given up by then: not counted as accepted)
  --never-answer    accept connections and never answer (a dead receiver)
"""
import argparse
import hashlib
import hmac
import http.server
import json
import random
import socketserver
import threading
import time


def verify(secret: bytes, header: str, body: bytes, tolerance: int = 300) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", "")) and abs(time.time() - timestamp) <= tolerance


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--secret-file")
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--hold", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--never-answer", action="store_true")
    args = parser.parse_args()
    secret = open(args.secret_file, "rb").read().strip() if args.secret_file else b""
    chance = random.Random(args.seed)
    lock = threading.Lock()
    log = open(args.log, "a", buffering=1)

    def write(entry: dict) -> None:
        with lock:
            log.write(json.dumps(entry) + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *unused) -> None:
            pass

        def do_POST(self) -> None:
            if args.never_answer:
                time.sleep(3600)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received = time.time()
            with lock:
                roll = chance.random()
            try:
                event = json.loads(body)
            except ValueError:
                event = {}
            entry = {"id": event.get("id"), "type": event.get("type"),
                     "job": (event.get("job") or {}).get("key"),
                     "created_at": event.get("created_at"), "received": received}
            if not verify(secret, self.headers.get("Devin-Orch-Signature", ""), body):
                entry["outcome"] = "bad_signature"
                status = 400
            elif roll < args.fail_rate:
                entry["outcome"] = "error500"
                status = 500
            elif roll < args.fail_rate + args.timeout_rate:
                entry["outcome"] = "timeout"
                time.sleep(args.hold)
                status = 200
            else:
                entry["outcome"] = "accepted"
                status = 200
            write(entry)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as out:
        out.write(str(server.server_address[1]))
    import os
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
