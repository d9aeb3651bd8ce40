#!/usr/bin/env python3
"""Check a synthtext report.html in a real headless browser, offline.

    python scripts/check_report_html.py privacy_reports/<run-id>/report.html [--screenshot shot.png]

What it checks (exit 0 when all hold, 1 otherwise, 2 when no chromium is installed):

1. Statically: no resource reference that is not a ``data:`` URI or a ``#fragment`` (src, href, srcset,
   CSS ``url()``/``@import``, ``<link>``), and no ``<script>`` at all.
2. In headless Chromium with networking cut off (``--host-resolver-rules="MAP * ~NOTFOUND"`` and a proxy
   on a closed port) and a network log: the page renders, every report section is in the DOM, every image
   decoded (``naturalWidth > 0``) and has a visible size, the page made no network request (from
   Chromium's network log, the Resource Timing API and Content-Security-Policy violation events).
   Chromium's own background requests (time sync, dictionaries) are listed apart; they are blocked as well.

For step 2 a copy of the page gets one small inline script that writes those measurements into the DOM
(read back with ``--dump-dom``); the page's Content-Security-Policy is widened by that script's hash only.
The screenshot is taken of the unmodified page. Needs only the Python standard library and Chromium
(Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

SECTIONS = ("summary", "samples", "data", "pii", "privacy", "training", "fidelity", "leakage", "membership", "caveats", "method")
MARKER = "__report_check__"
PROBE = """
(function () {
  var violations = [];
  document.addEventListener("securitypolicyviolation", function (e) {
    violations.push(e.violatedDirective + " " + e.blockedURI);
  });
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var out = {
      title: document.title,
      images: images.length,
      images_loaded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
      images_visible: images.filter(function (i) {
        var r = i.getBoundingClientRect(); return r.width > 50 && r.height > 50; }).length,
      resources: performance.getEntriesByType("resource").map(function (r) { return r.name; }),
      violations: violations,
      sections: Array.prototype.slice.call(document.querySelectorAll("section[id]"))
        .map(function (s) { return s.id; }),
      height: document.documentElement.scrollHeight
    };
    var pre = document.createElement("pre");
    pre.id = "%s";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  });
})();
""" % MARKER
NETWORK_OFF = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
               "--proxy-bypass-list=<-loopback>"]
QUIET = ["--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio",
         "--hide-scrollbars", "--metrics-recording-only", "--disable-breakpad"]


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.problems.append(f"<script> element: {dict(attrs)}")
        if tag == "link":
            self.problems.append(f"<link> element: {dict(attrs)}")
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "data", "action", "background", "formaction") \
                    and value is not None and not value.startswith(("data:", "#")):
                self.problems.append(f"<{tag} {name}={value[:80]!r}> refers outside the file")


def static_problems(page: str) -> list[str]:
    parser = _Refs()
    parser.feed(page)
    problems = parser.problems
    for match in re.finditer(r"url\(\s*['\"]?(?!data:)([^)'\"]*)|@import", page, re.I):
        problems.append(f"CSS reference outside the file: {match.group(0)[:80]!r}")
    return problems


def find_chromium(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def instrument(page: str) -> str:
    """The page plus the probe script, allowed by its hash in the page's own CSP."""
    digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    allow = f"script-src 'sha256-{digest}'"

    def widen(match: re.Match) -> str:
        return match.group(1) + match.group(2) + "; " + allow + match.group(3)

    page, n = re.subn(r'(<meta http-equiv="Content-Security-Policy" content=")([^"]*)(")', widen, page, count=1)
    probe = f"<script>{PROBE}</script>"
    if "</head>" not in page:
        raise SystemExit("error: the page has no </head>; is it a synthtext report?")
    return page.replace("</head>", probe + "</head>", 1)


def _run(chromium: str, args: list[str], timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *args], capture_output=True, text=True, timeout=timeout)


def _page_requests_from_netlog(netlog: Path) -> tuple[list[str], list[str]]:
    """(URLs the page asked for, URLs Chromium itself asked for) in the network log.

    Chromium's own background fetches (time sync, spell-check dictionaries, ...) have the initiator
    "not an origin"; a request made by the page has the page's origin ("null" for a file: page)."""
    if not netlog.exists():
        return ["(no network log was written)"], []
    log = json.loads(netlog.read_text(encoding="utf-8", errors="replace") or "{}")
    start_job = log.get("constants", {}).get("logEventTypes", {}).get("URL_REQUEST_START_JOB")
    page, browser = set(), set()
    for event in log.get("events", []):
        params = event.get("params") or {}
        url = params.get("url", "")
        if event.get("type") != start_job or not url or url.startswith(("file:", "data:")):
            continue
        (browser if params.get("initiator") == "not an origin" else page).add(url)
    return sorted(page), sorted(browser)


def check(report_html: Path, *, screenshot: Path | None = None, min_images: int = 1,
          sections=SECTIONS, chromium: str | None = None, timeout: int = 120) -> dict:
    page = report_html.read_text(encoding="utf-8")
    result: dict = {"file": str(report_html), "static_problems": static_problems(page)}
    browser = find_chromium(chromium)
    if browser is None:
        raise FileNotFoundError("chromium")
    with tempfile.TemporaryDirectory(prefix="report-check-") as tmp:
        tmp = Path(tmp)
        probe_page = tmp / "probe.html"
        probe_page.write_text(instrument(page), encoding="utf-8")
        netlog = tmp / "netlog.json"
        common = QUIET + NETWORK_OFF + [f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=10000"]
        # the same width as the screenshot, so the measured page height fits it
        dumped = _run(browser, common + ["--window-size=1280,1000", f"--log-net-log={netlog}", "--dump-dom", probe_page.as_uri()], timeout)
        match = re.search(rf'<pre id="{MARKER}">(.*?)</pre>', dumped.stdout, re.S)
        if not match:
            result["problems"] = [f"the page did not finish loading in Chromium (rc {dumped.returncode}): "
                                  + dumped.stderr[-800:]]
            result["ok"] = False
            return result
        probe = json.loads(html.unescape(match.group(1)))
        result.update({k: probe[k] for k in ("title", "images", "images_loaded", "images_visible", "sections")})
        external = [u for u in probe["resources"] if not u.startswith("data:")]
        external += [f"CSP blocked: {v}" for v in probe["violations"]]
        from_page, from_browser = _page_requests_from_netlog(netlog)
        result["external_requests"] = sorted(set(external + from_page))
        result["browser_background_requests"] = from_browser  # Chromium's own, not the page's: blocked too
        if screenshot is not None:
            height = max(800, min(int(probe.get("height") or 4000) + 40, 30000))
            shot = _run(browser, common + [f"--screenshot={screenshot.resolve()}", f"--window-size=1280,{height}",
                                           report_html.resolve().as_uri()], timeout)
            result["screenshot"] = str(screenshot) if screenshot.exists() else None
            if not screenshot.exists():
                result.setdefault("problems", []).append("no screenshot was written: " + shot.stderr[-400:])
    problems = result.setdefault("problems", [])
    problems += result["static_problems"]
    result["missing_sections"] = [s for s in sections if s not in result["sections"]]
    if result["missing_sections"]:
        problems.append(f"sections missing from the rendered page: {result['missing_sections']}")
    if result["images_loaded"] != result["images"]:
        problems.append(f"only {result['images_loaded']} of {result['images']} images decoded")
    if result["images_visible"] != result["images"]:
        problems.append(f"only {result['images_visible']} of {result['images']} images have a visible size")
    if result["images"] < min_images:
        problems.append(f"{result['images']} images, expected at least {min_images}")
    if result["external_requests"]:
        problems.append(f"the page tried to reach the network: {result['external_requests']}")
    result["ok"] = not problems
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report_html", type=Path)
    parser.add_argument("--screenshot", type=Path, help="save a full-page PNG screenshot here")
    parser.add_argument("--min-images", type=int, default=1, help="fail with fewer plots (default 1)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="section ids that must be present")
    parser.add_argument("--chromium", help="the browser binary (default: chromium on PATH)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not args.report_html.is_file():
        print(f"error: {args.report_html} is not a file", file=sys.stderr)
        return 2
    try:
        result = check(args.report_html, screenshot=args.screenshot, min_images=args.min_images,
                       sections=[s for s in args.sections.split(",") if s], chromium=args.chromium)
    except FileNotFoundError:
        print("error: no chromium found; install it (Debian: apt-get install chromium) or pass --chromium",
              file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'OK' if result['ok'] else 'FAILED'}: {result['file']}")
        for key in ("title", "sections", "images", "images_loaded", "images_visible", "external_requests",
                    "screenshot"):
            if key in result:
                print(f"  {key}: {result[key]}")
        for problem in result["problems"]:
            print(f"  problem: {problem}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
