#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium (Debian's `chromium`) against a daemon
running jobs in several states on devin-sim.

- `chromium --headless --dump-dom` renders the overview, a filtered job list and job pages;
  the DOM the browser produced must hold the expected content.
- XSS: a job whose prompt, title, tags (and key) carry `<script>` and `"><img onerror=...>`
  shows them as text: no element the job injected exists in the produced DOM.
- Actions are driven through the page itself over the DevTools protocol (--remote-debugging-pipe,
  no extra library): without signing in a Cancel POST is refused, and the forms are absent;
  after signing in with the token through the login form, the Cancel button on the job page
  cancels the job. A forged form without the CSRF token is refused.
- Screenshots of the overview, the list and a job page are saved to the output directory.

Usage: dashboard_browser_test.py DEVIN_ORCH DEVIN_SIM OUTPUT_DIR
"""
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

TOKEN = "browser-test-token-27"
HOSTILE = "<script>window.pwned=1</script>\"><img src=x onerror=\"window.pwned=2\">"
HOSTILE_KEY = "xss-\"><img src=x onerror=alert(1)>"


LOGS = []  # files whose end is worth seeing when the test fails


def fail(message):
    for path in LOGS:
        if os.path.exists(path):
            print("---- %s (end) ----\n%s" % (path, open(path, errors="replace").read()[-3000:]),
                  file=sys.stderr)
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)
    print("ok: " + message)


class Elements(html.parser.HTMLParser):
    """Every element of a document: (tag, attributes) and the text, to assert on."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elements = []
        self.texts = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.texts.append(data)

    def text(self):
        return "".join(self.texts)

    def having(self, tag):
        return [attrs for name, attrs in self.elements if name == tag]

    def by_id(self, ident):
        return [(name, attrs) for name, attrs in self.elements if attrs.get("id") == ident]


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    fail("timed out waiting for " + what)


def http(port, method, path, body=None, headers=None):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                     method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Chromium:
    """One headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, binary, profile):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The child must find them as fds 3 and 4 (Chromium's pipe convention). Moved out of the
        # way first, in case either already is 3 or 4; pass_fds keeps 3 and 4 open past the exec.
        def arrange():
            reading, writing = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(reading, 3)
            os.dup2(writing, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)
        self.process = subprocess.Popen(
            [binary, "--headless", "--disable-gpu", "--no-sandbox", "--remote-debugging-pipe",
             "--user-data-dir=" + profile, "--no-first-run", "--window-size=1200,900",
             "about:blank"],
            pass_fds=(3, 4), preexec_fn=arrange,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": page["targetId"], "flatten": True})["sessionId"]
        self.call("Page.enable", session=True)

    def call(self, method, params=None, session=False, timeout=30):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while time.time() < deadline:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    fail("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
        fail("no answer to " + method)

    def _read(self):
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 65536)
            if not chunk:
                fail("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=True)
        return result.get("result", {}).get("value")

    def navigate(self, url):
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_loaded()

    def wait_loaded(self):
        time.sleep(0.2)
        wait_for(lambda: self.evaluate("document.readyState") == "complete", 20, "page load")

    def dom(self):
        return self.evaluate("document.documentElement.outerHTML")

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except SystemExit:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def dump_dom(chromium, url, profile):
    result = subprocess.run(
        [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--user-data-dir=" + profile,
         "--dump-dom", url], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        fail("chromium --dump-dom %s: %s" % (url, result.stderr[-2000:]))
    return result.stdout


def screenshot(chromium, url, path, profile, size="1200,900"):
    result = subprocess.run(
        [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--user-data-dir=" + profile,
         "--hide-scrollbars", "--screenshot=" + path, "--window-size=" + size, url],
        capture_output=True, text=True, timeout=120)
    check(result.returncode == 0 and os.path.getsize(path) > 1000, "screenshot " + path)


def main():
    if len(sys.argv) != 4:
        fail(__doc__)
    orch, sim, output = sys.argv[1:]
    chromium = shutil.which("chromium")
    if chromium is None:
        fail("Debian's chromium package is not installed (scripts/setup.sh installs it)")
    os.makedirs(output, exist_ok=True)
    work = tempfile.mkdtemp(prefix="dashboard-browser-")
    processes = []
    try:
        run(orch, sim, chromium, output, work, processes)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(work, ignore_errors=True)


def run(orch, sim, chromium, output, work, processes):
    port_file = os.path.join(work, "sim.port")
    processes.append(subprocess.Popen(
        [sim, "--port", "0", "--port-file", port_file, "--time-factor", "0.005", "--seed", "27"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "sim.log"), "w")))
    sim_port = int(wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(),
                            20, "devin-sim"))
    token_file = os.path.join(work, "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    jobs = [
        {"key": "to-cancel", "prompt": "cancel me [sim:hold]", "priority": 10},
        {"key": "ships-fix", "prompt": "ship it [sim:exit]", "title": "Ship the fix",
         "tags": ["backend"]},
        {"key": "breaks-build", "prompt": "break it [sim:error]", "tags": ["backend"]},
        # Its suspension pauses org-demo: created last, so every other job has started by then.
        {"key": "out-of-credits", "prompt": "costly [sim:suspend=out_of_credits]", "priority": -10},
        {"key": "long-runner", "prompt": "keep going [sim:hold]", "tags": ["ops"]},
        {"key": "scheduled-later", "prompt": "later [sim:exit]", "not_before": "2099-01-01T00:00:00Z"},
        {"key": "wrong-org", "prompt": "nobody home [sim:exit]", "org_id": "org-other"},
        {"key": "hostile", "prompt": HOSTILE, "title": HOSTILE, "tags": [HOSTILE, "ok-tag"]},
        {"key": HOSTILE_KEY, "prompt": "a hostile key [sim:exit]"},
    ]
    with open(os.path.join(work, "jobs.yaml"), "w") as f:
        json.dump(jobs, f)  # JSON is YAML
    with open(os.path.join(work, "config.yaml"), "w") as f:
        f.write("""api:
  base_url: http://127.0.0.1:%d
  org_id: org-demo
  request_timeout: 2s
  create_timeout: 2s
rate:
  requests_per_minute: 60000
  burst: 200
poll:
  initial_delay: 100ms
  max_delay: 400ms
create:
  settle_delay: 100ms
  settle_window: 1s
database:
  path: state/orch.db
metrics:
  enabled: false
dashboard:
  enabled: true
  port: 0
  token_file: token
jobs:
  files: [jobs.yaml]
""" % sim_port)
    log_path = os.path.join(work, "daemon.log")
    LOGS.append(log_path)
    env = dict(os.environ, DEVIN_API_KEY="cog_browser_test_key")
    for name in ("CREDENTIALS_DIRECTORY", "DEVIN_ORCH_BASE_URL", "DEVIN_ORCH_ORG_ID",
                 "DEVIN_ORCH_DATABASE", "NOTIFY_SOCKET", "JOURNAL_STREAM"):
        env.pop(name, None)
    processes.append(subprocess.Popen([orch, "run", "--config", "config.yaml"], cwd=work, env=env,
                                      stdout=subprocess.DEVNULL, stderr=open(log_path, "w")))

    def dashboard_port():
        found = re.search(r"dashboard listening on http://127\.0\.0\.1:(\d+)/", open(log_path).read())
        return found and int(found.group(1))
    port = wait_for(dashboard_port, 30, "the dashboard to listen")
    base = "http://127.0.0.1:%d" % port

    def states():
        status, body = http(port, "GET", "/api/v1/jobs")
        return {row["key"]: row["state"] for row in json.loads(body)} if status == 200 else {}

    def settled():
        now = states()
        wanted = {"ships-fix": "finished", "breaks-build": "failed", "out-of-credits": "suspended",
                  "long-runner": "running", "to-cancel": "running", "scheduled-later": "queued",
                  "hostile": "running", HOSTILE_KEY: "finished", "wrong-org": "dead"}
        # The hostile job's session runs on the simulator's random path; it need only have started.
        return all(now.get(k) == v or (k == "hostile" and now.get(k) not in (None, "queued", "creating"))
                   for k, v in wanted.items())
    wait_for(settled, 60, "the jobs to reach their states: %s" % states())
    print("states: %s" % states())

    profile = os.path.join(work, "profile")
    # ---- pages, as the browser renders them ----
    overview = Elements(dump_dom(chromium, base + "/", profile))
    text = overview.text()
    check("Jobs by state" in text and "org-demo" in text and "org-other" in text,
          "the overview shows jobs by state per organisation")
    check("scheduled-later" in text, "the overview names the oldest waiting job")
    check("ACUs today" in text and "Pauses" in text, "the overview shows ACUs and pauses")
    check(len(overview.by_id("rate-gates")) == 1 and "req/min" in text,
          "the overview shows the daemon's rate gates")
    check(any(a.get("href") == "/jobs?state=failed&org=org-demo" for a in overview.having("a")),
          "the overview links each count to the filtered list")

    listing = Elements(dump_dom(chromium, base + "/jobs?state=failed", profile))
    check("breaks-build" in listing.text() and "ships-fix" not in listing.text(),
          "the list filtered by state shows only the failed job")
    check("1 job" in listing.text(), "the filtered list counts one job")
    tagged = Elements(dump_dom(chromium, base + "/jobs?tag=backend&sort=key", profile))
    check("breaks-build" in tagged.text() and "ships-fix" in tagged.text()
          and "long-runner" not in tagged.text(), "the list filtered by tag")

    job = Elements(dump_dom(chromium, base + "/jobs/ships-fix", profile))
    check("Ship the fix" in job.text() and "finished" in job.text(), "the job page shows definition and state")
    check(any(a.get("id") == "session-link" and a.get("href", "").startswith("https://")
              for a in job.having("a")), "the job page links the session")
    check("History" in job.text() and "Outcome" in job.text(), "the job page shows outcome and history")

    # ---- XSS: hostile text stays text ----
    for url in (base + "/jobs/hostile", base + "/jobs", base + "/",
                base + "/jobs/" + urllib.parse.quote(HOSTILE_KEY, safe=""),
                base + "/jobs?q=" + urllib.parse.quote("xss")):
        page = Elements(dump_dom(chromium, url, profile))
        scripts = page.having("script")
        check(page.having("img") == [] and
              all(s.get("src") == "/assets/dashboard.js" for s in scripts) and len(scripts) == 1,
              "no injected element in the DOM of " + url)
        check(not any(k.startswith("on") for _, attrs in page.elements for k in attrs),
              "no event-handler attribute in the DOM of " + url)
    hostile = Elements(dump_dom(chromium, base + "/jobs/hostile", profile))
    check(HOSTILE in hostile.text(), "the hostile prompt is shown as text")

    # ---- actions, through the page in the browser ----
    browser = Chromium(chromium, os.path.join(work, "driven-profile"))
    try:
        browser.navigate(base + "/jobs/to-cancel")
        check(browser.evaluate("document.querySelectorAll('form[action$=\"/cancel\"]').length") == 0,
              "not signed in: the job page offers no Cancel form")
        # A forged POST from the page without the session cookie or CSRF token is refused.
        status = browser.evaluate(
            "fetch('/jobs/to-cancel/cancel', {method: 'POST', body: new URLSearchParams({csrf: 'x'})})"
            ".then(r => r.status)")
        check(status == 401, "a Cancel without signing in is refused (401, got %s)" % status)
        check(states()["to-cancel"] == "running", "the refused action changed nothing")

        browser.navigate(base + "/login")
        browser.evaluate("document.querySelector('input[name=token]').value = 'wrong'; "
                         "document.getElementById('login-form').submit(); true")
        browser.wait_loaded()
        check("Wrong token" in browser.dom(), "the login form refuses a wrong token")
        browser.evaluate("document.querySelector('input[name=token]').value = %s; "
                         "document.getElementById('login-form').submit(); true" % json.dumps(TOKEN))
        browser.wait_loaded()
        check(browser.evaluate("document.getElementById('logout') !== null"),
              "the login form signs the browser in")
        browser.navigate(base + "/jobs/to-cancel")
        # Signed in, but a form without the page's CSRF token is still refused.
        status = browser.evaluate(
            "fetch('/jobs/to-cancel/cancel', {method: 'POST', body: new URLSearchParams({csrf: 'forged'})})"
            ".then(r => r.status)")
        check(status == 403, "a signed-in POST with a forged CSRF token is refused (got %s)" % status)
        browser.evaluate("document.querySelector('form[action$=\"/cancel\"] button').click(); true")
        browser.wait_loaded()
        wait_for(lambda: states().get("to-cancel") == "cancelled", 30, "the job to be cancelled")
        check(True, "the Cancel button of a signed-in browser cancels the job")
        browser.navigate(base + "/jobs/to-cancel")
        check("cancelled" in browser.evaluate("document.getElementById('job-key').textContent"),
              "the job page shows the job cancelled")
    finally:
        browser.close()

    # ---- screenshots for the artefacts and docs ----
    screenshot(chromium, base + "/", os.path.join(output, "dashboard-overview.png"), profile)
    screenshot(chromium, base + "/jobs", os.path.join(output, "dashboard-jobs.png"), profile)
    screenshot(chromium, base + "/jobs/ships-fix", os.path.join(output, "dashboard-job.png"), profile)
    screenshot(chromium, base + "/jobs/hostile", os.path.join(output, "dashboard-xss.png"), profile)
    screenshot(chromium, base + "/", os.path.join(output, "dashboard-phone.png"), profile, "390,844")
    print("PASS")


if __name__ == "__main__":
    main()
