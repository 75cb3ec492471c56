"""Loads a slide viewer page (run_dir/viewer/<slide_id>.html) in headless Chromium and checks that it works offline (tests/e2e/viewer_browser_test.sh).

  viewer_browser.py <page.html> --expect NAME[,NAME...] [--allow-dir DIR] [--screenshot OUT.png] [--timeout S]

Drives Chromium with report_browser.py's Browser (the DevTools protocol over a pipe, standard
library only). Opens the page from file:// and fails (exit 1, each problem on its own line) on:
  - a console message of level error or warning, an uncaught exception, a Log entry of level
    error or warning;
  - a request that failed, or a request for anything but the page itself, a data: URI or a file
    under --allow-dir (default: the page's folder; the tiles lie beside the page);
  - the page not saying within the timeout that every image has loaded the tiles of its view
    (<body data-viewer="loaded N images">), or saying "failed: ...";
  - the images that loaded tiles (<body data-tiles="slide:12,heatmap:5">) not being exactly the
    --expect names, each with at least one tile.
Writes a screenshot of the window to --screenshot. Exit 0 when all is well; 2 on a usage error or
when Chromium cannot be started or talked to.
"""
import base64
import json
import os
import sys
from urllib.parse import unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_browser import Browser, checker_args, event_problem, open_page, run_checker  # noqa: E402

PAGE_STATE = r"""JSON.stringify({state: document.body.getAttribute('data-viewer'),
                                 tiles: document.body.getAttribute('data-tiles') || ''})"""


def under(url, folder):
    """Whether a file:// URL names a file inside `folder`."""
    if not url.startswith("file://"):
        return False
    path = os.path.realpath(unquote(url[len("file://"):].split("?")[0].split("#")[0]))
    return path.startswith(os.path.realpath(folder) + os.sep)


def check(page, expect, allow_dir, screenshot, timeout, binary, width):
    problems = []
    url = "file://" + os.path.abspath(page)
    b = Browser(binary, width)
    files = {}  # tile folder -> requests
    try:
        session, state = open_page(b, url, PAGE_STATE, timeout,
                                   lambda st: st["state"] and st["state"] != "loading")
        b.pump(0.5)  # messages logged while the last tiles were drawn
        r = b.call("Runtime.evaluate", {"expression": PAGE_STATE, "returnByValue": True}, session=session)
        state = json.loads(r["result"]["value"]) if r.get("result", {}).get("value") else state
        if not state or not state["state"] or state["state"] == "loading":
            problems.append("the page did not load its images within %g s (<body data-viewer=%r>)"
                            % (timeout, state and state["state"]))
        elif not state["state"].startswith("loaded "):
            problems.append("viewer: " + state["state"])

        for e in b.events:
            m, p = e["method"], e.get("params", {})
            problem = event_problem(e)
            if problem:
                problems.append(problem)
            elif m == "Network.requestWillBeSent":
                u = p["request"]["url"]
                if u == url or u.startswith("data:"):
                    continue
                if under(u, allow_dir):
                    folder = os.path.basename(os.path.dirname(os.path.dirname(unquote(u))))
                    files[folder] = files.get(folder, 0) + 1
                else:
                    problems.append("the page asked for %s: only files under %s may be loaded" % (u, allow_dir))

        if state:
            counts = {}
            for part in filter(None, state["tiles"].split(",")):
                name, n = part.rsplit(":", 1)
                counts[name] = int(n)
            drawn = sorted(n for n, c in counts.items() if c > 0)
            if drawn != sorted(expect):
                problems.append("images with tiles loaded: %s; expected: %s"
                                % (",".join(drawn) or "none", ",".join(sorted(expect))))
            print("viewer_browser: %s; tiles %s; file requests: %s" % (
                state["state"], state["tiles"], ", ".join("%s %d" % kv for kv in sorted(files.items())) or "none"))

        if screenshot and state:
            shot = b.call("Page.captureScreenshot", {"format": "png"}, session=session, timeout=60)
            os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
            with open(screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            print("viewer_browser: screenshot %s" % screenshot)
    finally:
        b.close()
    return problems


def main():
    ap = checker_args(__doc__.splitlines()[0], "a viewer page", "comma-separated image names (slide,heatmap)")
    ap.add_argument("--allow-dir", help="folder whose files the page may load (default: the page's)")
    args = ap.parse_args()
    allow = args.allow_dir or os.path.dirname(os.path.abspath(args.page))
    return run_checker("viewer_browser", args, lambda: check(
        args.page, args.expect, allow, args.screenshot, args.timeout,
        args.chromium, args.width))


if __name__ == "__main__":
    sys.exit(main())
