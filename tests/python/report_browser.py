"""Loads a report.html in headless Chromium and checks that it works offline (tests/e2e/report_browser_test.sh).

  report_browser.py <report.html> --expect NAME[,NAME...] [--screenshot OUT.png] [--timeout S]

Drives Chromium through the DevTools protocol over --remote-debugging-pipe (Python's standard
library only: no websocket, no packages). Opens the page from file:// and fails (exit 1, each
problem on its own line) on:
  - a console message of level error or warning, an uncaught exception, a Log entry of level
    error or warning (Chromium's "Failed to load resource" and the like);
  - a request that failed, or any request that is neither the report itself nor a data: URI (the
    page must need no server and no network);
  - the page not saying within the timeout that its charts are settled (<body data-charts>), or
    saying that any failed;
  - the charts drawn (div.chart holding a Vega SVG with at least one mark item) not being
    exactly the --expect names (element ids chart-<name>); an image that did not load.
Writes a full-page screenshot to --screenshot. Exit 0 when all is well; 2 on a usage error or
when Chromium cannot be started or talked to.
"""
import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time


class Browser:
    """Chromium with the DevTools protocol on fds 3 (commands in) and 4 (replies out), messages
    separated by NUL bytes."""

    def __init__(self, binary, width):
        self.profile = tempfile.mkdtemp(prefix="report_browser_")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds():  # runs in the child: its fd 3 reads our commands, fd 4 carries its replies
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.log = open(os.path.join(self.profile, "chromium.log"), "w+")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--user-data-dir=" + self.profile, "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--hide-scrollbars",
             "--window-size=%d,1000" % width, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, preexec_fn=fds, pass_fds=(3, 4))
        os.close(to_child_r)
        os.close(from_child_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def read_message(self, deadline):
        while b"\0" not in self.buffer:
            if time.time() > deadline:
                raise TimeoutError("no message from Chromium in time")
            ready, _, _ = select.select([self.from_child], [], [], 0.2)
            if ready:
                chunk = os.read(self.from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe (exit code %s)" % self.proc.poll())
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, params=None, session=None, timeout=30):
        """Sends a command and returns its result; events arriving meanwhile are kept."""
        want = self.send(method, params, session)
        deadline = time.time() + timeout
        while True:
            msg = self.read_message(deadline)
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def pump(self, seconds):
        """Collects events for `seconds`."""
        deadline = time.time() + seconds
        try:
            while True:
                msg = self.read_message(deadline)
                if "method" in msg:
                    self.events.append(msg)
        except TimeoutError:
            pass

    def close(self):
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


# What the page reports about its charts and images, as JSON.
PAGE_STATE = r"""JSON.stringify({
  settled: document.body.getAttribute('data-charts'),
  charts: Array.from(document.querySelectorAll('div.chart')).map(function (d) {
    return {id: d.id, svg: d.querySelectorAll('svg.marks').length,
            items: d.querySelectorAll('svg.marks g.role-mark > *').length,
            error: d.classList.contains('chart-error') ? d.textContent : null};
  }),
  brokenImages: Array.from(document.images).filter(function (i) {
    return !i.complete || i.naturalWidth === 0; }).map(function (i) { return i.src.slice(0, 80); }),
  height: document.documentElement.scrollHeight
})"""


def describe_args(args):
    out = []
    for a in args:
        v = a.get("value", a.get("description", a.get("unserializableValue", "")))
        out.append(v if isinstance(v, str) else json.dumps(v))
    return " ".join(out)


def event_problem(e):
    """What a DevTools event says went wrong: a console error, warning or assert, an uncaught
    exception, a Log entry of level error or warning, a failed request; None otherwise."""
    m, p = e["method"], e.get("params", {})
    if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
        return "console %s: %s" % (p["type"], describe_args(p.get("args", [])))
    if m == "Runtime.exceptionThrown":
        d = p.get("exceptionDetails", {})
        return "uncaught exception: %s %s" % (d.get("text", ""), d.get("exception", {}).get("description", ""))
    if m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
        return "log %s: %s %s" % (p["entry"]["level"], p["entry"].get("text", ""), p["entry"].get("url", ""))
    if m == "Network.loadingFailed":
        return "request failed: %s (%s)" % (p.get("errorText"), p.get("requestId"))
    return None


def open_page(b, url, expression, timeout, ready):
    """Opens `url` in a new tab of Browser `b` (Runtime, Log, Network and Page events on) and
    evaluates `expression` (JSON text of the page's state) every 0.3 s until ready(state) or
    `timeout` seconds; returns (session, the last state or None)."""
    target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Runtime", "Log", "Network", "Page"):
        b.call(domain + ".enable", session=session)
    b.call("Page.navigate", {"url": url}, session=session)
    state = None
    deadline = time.time() + timeout
    while time.time() < deadline:
        b.pump(0.3)
        r = b.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        value = r.get("result", {}).get("value")
        state = json.loads(value) if value else None
        if state and ready(state):
            break
    return session, state


def check(report, expect, screenshot, timeout, binary, width):
    problems = []
    url = "file://" + os.path.abspath(report)
    b = Browser(binary, width)
    try:
        session, state = open_page(b, url, PAGE_STATE, timeout, lambda st: st["settled"])
        b.pump(0.5)  # messages logged while the last charts were drawn
        if not state or not state["settled"]:
            problems.append("the page did not settle its charts within %g s (no <body data-charts>)" % timeout)
        elif not state["settled"].endswith(" 0 failed"):
            problems.append("charts: " + state["settled"])

        for e in b.events:
            m, p = e["method"], e.get("params", {})
            problem = event_problem(e)
            if problem:
                problems.append(problem)
            elif m == "Network.requestWillBeSent":
                u = p["request"]["url"]
                if u != url and not u.startswith("data:"):
                    problems.append("the page asked for %s: it must need nothing but itself" % u)

        if state:
            drawn = sorted(c["id"][len("chart-"):] for c in state["charts"]
                           if c["svg"] > 0 and c["items"] > 0 and not c["error"])
            for c in state["charts"]:
                if c["error"]:
                    problems.append("%s: %s" % (c["id"], c["error"]))
                elif c["svg"] == 0 or c["items"] == 0:
                    problems.append("%s: nothing drawn (%d svg, %d mark items)" % (c["id"], c["svg"], c["items"]))
            if drawn != sorted(expect):
                problems.append("charts drawn: %s; expected: %s" % (",".join(drawn), ",".join(sorted(expect))))
            for src in state["brokenImages"]:
                problems.append("image not loaded: " + src)
            print("report_browser: %s; charts drawn: %s" % (state["settled"], ", ".join(drawn)))

        if screenshot and state:
            height = min(int(state["height"]), 16000)
            b.call("Emulation.setDeviceMetricsOverride",
                   {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
            shot = b.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                          session=session, timeout=60)
            os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
            with open(screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            print("report_browser: screenshot %s (%dx%d)" % (screenshot, width, height))
    finally:
        b.close()
    return problems


def checker_args(description, page_help, expect_help):
    """The command line the page checkers share (report_browser.py, viewer_browser.py)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("page", help=page_help)
    ap.add_argument("--expect", required=True, help=expect_help,
                    type=lambda s: [n for n in s.split(",") if n])
    ap.add_argument("--screenshot")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    ap.add_argument("--width", type=int, default=1400)
    return ap


def run_checker(tag, args, run):
    """Checks the usage, calls run() (which returns the page's problems) and prints them.
    Exit status: 0 all well, 1 problems, 2 usage error or Chromium not started or not answering."""
    if not args.chromium:
        print(tag + ": no chromium on PATH (launch/setup.sh installs Debian's chromium)", file=sys.stderr)
        return 2
    if not os.path.isfile(args.page):
        print(tag + ": no file " + args.page, file=sys.stderr)
        return 2
    try:
        problems = run()
    except (TimeoutError, RuntimeError, OSError) as e:
        print("%s: cannot drive Chromium: %s" % (tag, e), file=sys.stderr)
        return 2
    for p in problems:
        print("FAIL: " + p, file=sys.stderr)
    return 1 if problems else 0


def main():
    args = checker_args(__doc__.splitlines()[0], "report.html or compare.html",
                        "comma-separated chart names (element ids chart-<name>)").parse_args()
    return run_checker("report_browser", args, lambda: check(
        args.page, args.expect, args.screenshot, args.timeout,
        args.chromium, args.width))


if __name__ == "__main__":
    sys.exit(main())
