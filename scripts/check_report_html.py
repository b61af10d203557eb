#!/usr/bin/env python3
"""Render a crmbench report.html in headless Chromium and check what a person
would see: the page is not blank, every SVG has a non-zero size, and the page
asked the network for nothing but its own file:// URL. Saves a full-page
screenshot beside the report (report.png).

Talks the DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out,
NUL-separated JSON), so it needs only python3's standard library and the
system chromium: no websocket module, no port, no downloaded browser.

Usage: check_report_html.py [--paired] REPORT.html [CHROMIUM]
  --paired: the report of a paired run folder, whose opening section must
  name the candidate and the gate's verdict (PASS, FAIL, INCONCLUSIVE or
  UNDECIDABLE) before anything else.
Exit: 0 all checks passed, 1 a check failed, 2 the browser could not be run.
"""

import base64
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

TIMEOUT = 60.0
WIDTH, HEIGHT = 1200, 900


class Browser:
    def __init__(self, chromium, profile):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        # Park both ends on high fds first so the dup2 onto 3 and 4 cannot
        # clobber one another, whatever numbers os.pipe() handed out.
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 20)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 20)

        def child_fds():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        args = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu",
            "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
            "--hide-scrollbars", "--mute-audio", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + profile, "about:blank",
        ]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=child_fds, close_fds=False,
        )
        for fd in (to_child_r, from_child_w, hi_r, hi_w):
            os.close(fd)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        want = self.next_id
        while True:
            m = self.read()
            if m.get("id") == want:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def read(self):
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def wait_event(self, method):
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        while True:
            m = self.read()
            if m.get("method") == method:
                return m
            self.events.append(m)

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def png_pixels(data):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), f"unexpected PNG type {depth}/{colour}"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def ink_share(png):
    """Share of pixels that differ from the top-left (background) pixel."""
    w, h, ch, rows = png_pixels(png)
    bg = rows[0][:3]
    ink = sum(
        1 for row in rows for x in range(0, w * ch, ch)
        if max(abs(row[x + k] - bg[k]) for k in range(3)) > 24
    )
    return ink / float(w * h)


def main():
    paired = len(sys.argv) > 1 and sys.argv[1] == "--paired"
    if paired:
        del sys.argv[1]
    if len(sys.argv) < 2:
        print("usage: check_report_html.py REPORT.html [CHROMIUM]", file=sys.stderr)
        return 2
    report = os.path.abspath(sys.argv[1])
    if not os.path.isfile(report):
        print(f"check-report-html: {report}: no such file", file=sys.stderr)
        return 2
    chromium = sys.argv[2] if len(sys.argv) > 2 else (
        shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome"))
    if not chromium:
        print("check-report-html: chromium not found (apt-get install chromium)", file=sys.stderr)
        return 2
    url = "file://" + report
    shot_path = os.path.splitext(report)[0] + ".png"
    failures = []
    profile = tempfile.mkdtemp(prefix="crmbench-chromium-")
    browser = Browser(chromium, profile)
    try:
        targets = browser.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = browser.send("Target.attachToTarget",
                               {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            browser.send(domain + ".enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
                     session=session)
        browser.events.clear()
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_event("Page.loadEventFired")
        facts = json.loads(browser.send("Runtime.evaluate", {
            "expression": """JSON.stringify({
                svgs: [...document.querySelectorAll('svg')].map(s => {
                    const r = s.getBoundingClientRect(); return [r.width, r.height]; }),
                sections: [...document.querySelectorAll('section[id]')].map(s => s.id),
                series: [...document.querySelectorAll('svg')].map(s => new Set(
                    [...s.querySelectorAll('polyline[stroke-width="2"], path[stroke-width="2"]')]
                        .map(p => p.getAttribute('stroke'))).size),
                text: document.body.innerText.length,
                first: (document.querySelector('section[id]') || {innerText: ''}).innerText,
                spectra: [...document.querySelectorAll('section#what-to-do svg')].map(s => [
                    new Set([...s.querySelectorAll('polyline[stroke-width="2"], path[stroke-width="2"]')]
                        .map(p => p.getAttribute('stroke'))).size,
                    s.textContent.includes('baseline') && s.textContent.includes('candidate'),
                    s.getBoundingClientRect().width * s.getBoundingClientRect().height]),
                height: document.documentElement.scrollHeight })""",
            "returnByValue": True}, session=session)["result"]["value"])
        # A small shot of the first screen, scaled down, is enough to tell a
        # blank page from a drawn one and quick to decode in pure Python.
        small = base64.b64decode(browser.send("Page.captureScreenshot", {
            "format": "png",
            "clip": {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT, "scale": 0.25}},
            session=session)["data"])
        full = base64.b64decode(browser.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": WIDTH, "height": facts["height"], "scale": 1}},
            session=session)["data"])
        with open(shot_path, "wb") as f:
            f.write(full)
        requests = [e["params"]["request"]["url"] for e in browser.events
                    if e.get("method") == "Network.requestWillBeSent"]
    except (RuntimeError, TimeoutError, StopIteration, OSError) as e:
        print(f"check-report-html: could not drive chromium: {e}", file=sys.stderr)
        return 2
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)

    share = ink_share(small)
    if share < 0.01:
        failures.append(f"the page looks blank: {share:.2%} of the first screen is not background")
    if not facts["svgs"]:
        failures.append("no <svg> element on the page")
    for i, (w, h) in enumerate(facts["svgs"]):
        if w <= 0 or h <= 0:
            failures.append(f"svg #{i + 1} rendered with size {w}x{h}")
    # The answer comes first: the executive summary opens the page.
    if not facts["sections"] or facts["sections"][0] != "what-to-do":
        failures.append(f"the first section is {facts['sections'][:1]}, not the summary (what-to-do)")
    # A paired folder opens with its verdict on the candidate.
    if paired:
        first = facts["first"]
        verdicts = ["PASS", "FAIL", "INCONCLUSIVE", "UNDECIDABLE"]
        if "candidate" not in first or not any("Gate verdict: " + v in first for v in verdicts):
            failures.append("the first section of a paired report does not give the gate's verdict "
                            "on the candidate: " + first[:200].replace("\n", " "))
        # Then the before/after spectra: per query one plot, baseline and
        # candidate in two colours, each named in the legend, drawn.
        if "Percentile spectra, before and after" not in first:
            failures.append("the paired section has no before/after spectra heading")
        if not facts["spectra"]:
            failures.append("the paired section draws no before/after spectra")
        for i, (colours, legend, area) in enumerate(facts["spectra"]):
            if colours != 2 or not legend or area <= 0:
                failures.append(f"paired spectrum #{i + 1}: {colours} line colours (want 2: "
                                f"baseline and candidate), legend naming both: {legend}, area {area}")
    # A plot a reader can follow: at most ~8 series (distinct line colours).
    for i, n in enumerate(facts["series"]):
        if n > 8:
            failures.append(f"svg #{i + 1} draws {n} series (more than 8): unreadable")
    others = [u for u in requests if u != url]
    if url not in requests:
        failures.append("the network log did not see the page itself: the log cannot be trusted")
    if others:
        failures.append("the page requested other URLs: " + ", ".join(others))
    print(f"check-report-html: {report}: {len(facts['svgs'])} svg (all non-zero: "
          f"{all(w > 0 and h > 0 for w, h in facts['svgs'])}), sections {','.join(facts['sections'])}, "
          f"most series in one plot {max(facts['series'] or [0])}, "
          f"{len(facts['spectra'])} before/after spectra in the summary, first screen {share:.1%} ink, page {facts['height']} px tall, "
          f"{len(requests)} request(s): {', '.join(requests)}; screenshot {shot_path}")
    for f in failures:
        print(f"check-report-html: FAIL: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
