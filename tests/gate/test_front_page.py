"""The front page (`reports/index.html`) leads with the verdict: rendered from a stored passing and
a stored failing run (`tests/gate/golden`) as `gate.publish` writes it, and opened in a real
headless Chromium at 1280x800, with no network. The first screen must show the verdict: the
screenshot holds the verdict box's colour and not the other verdict's, and in the DOM the verdict
box lies within the first screen (800 pixels high, less headless Chromium's frame), saying PASSED
or FAILED, its exit code and the run.

Skipped where Chromium is not installed. With `GATE_SCREENSHOTS=<folder>` the screenshots are
kept there (`passing.png`, `failing.png`) to be looked at."""

from __future__ import annotations

import html
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from gate.publish import write_reports
from gate.result import GateResult, from_dict, stamp

GOLDEN = Path(__file__).resolve().parent / "golden"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
WIDTH, HEIGHT = 1280, 800
# the verdict box's border, by verdict (gate/report/regions_html.py's STYLE)
COLOURS = {"passed": (0x1E, 0x7E, 0x34), "failed": (0xB0, 0x00, 0x20)}
# where the verdict box and the first finding lie once laid out, into the page, where --dump-dom sees it
PROBE = """<script>
addEventListener("load", () => {
  const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, text: el.innerText, shown: getComputedStyle(el).visibility}; };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({viewport: innerHeight, verdict: box(document.getElementById("verdict")),
                                    finding: box(document.querySelector("#findings li"))});
  document.body.appendChild(out);
});
</script>"""


def golden(case: str) -> GateResult:
    return from_dict(json.loads((GOLDEN / case / "gate-result.json").read_text(encoding="utf-8")))


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'chromium'}", f"--window-size={WIDTH},{HEIGHT}", *args],
        capture_output=True, text=True, timeout=120)


def pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) bytes of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        chunks.setdefault(kind, b"")
        chunks[kind] += png[at + 8:at + 8 + length]
        at += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour, interlace) in ((8, 2, 0), (8, 6, 0)), (depth, colour, interlace)
    step = 3 if colour == 2 else 4
    raw, rows, previous = zlib.decompress(chunks[b"IDAT"]), [], bytes(width * step)
    for y in range(height):
        line = raw[y * (width * step + 1):(y + 1) * (width * step + 1)]
        kind, data, row = line[0], line[1:], bytearray(width * step)
        for i, value in enumerate(data):
            left = row[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                add = near[2]
            else:
                add = (0, left, up, (left + up) // 2)[kind]
            row[i] = (value + add) & 0xFF
        rows.append(bytes(row))
        previous = bytes(row)
    return width, height, [bytes(r[x] for x in range(len(r)) if x % step < 3) for r in rows]


def count(rows: list[bytes], colour: tuple[int, int, int]) -> int:
    wanted = bytes(colour)
    return sum(1 for row in rows for x in range(0, len(row), 3) if row[x:x + 3] == wanted)


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    """Each case's front page as `gate.publish` writes it, with its screenshot and its laid-out DOM."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed")
    seen = {}
    for case, verdict in (("passed", "passing"), ("failed", "failing")):
        folder = tmp_path_factory.mktemp(case)
        reports = folder / "reports"
        write_reports(golden(case), reports, reports)
        page = reports / "index.html"
        shot = folder / f"{verdict}.png"
        done = chromium(folder, f"--screenshot={shot}", page.as_uri())
        assert shot.is_file(), done.stderr
        probe = page.with_name("probe.html")
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = chromium(folder, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()).stdout
        layout = json.loads(html.unescape(dom.split('<pre id="probe">', 1)[1].split("</pre>", 1)[0]))
        if os.environ.get("GATE_SCREENSHOTS"):
            keep = Path(os.environ["GATE_SCREENSHOTS"])
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, keep / shot.name)
        seen[case] = (shot.read_bytes(), layout)
    return seen


@needs_browser
@pytest.mark.parametrize("case, other", [("passed", "failed"), ("failed", "passed")])
def test_the_first_screen_shows_the_verdict_in_its_colour(shown, case, other):
    width, height, rows = pixels(shown[case][0])
    assert (width, height) == (WIDTH, HEIGHT)
    assert count(rows, COLOURS[case]) > 2000  # the verdict box's border and heading, in the first screen
    assert count(rows, COLOURS[other]) == 0


@needs_browser
@pytest.mark.parametrize("case, word", [("passed", "PASSED"), ("failed", "FAILED")])
def test_the_verdict_box_lies_in_the_first_800_pixels_and_says_the_verdict_exit_code_and_run(shown, case, word):
    layout = shown[case][1]
    verdict, result = layout["verdict"], golden(case)
    # the dumped page's viewport is the window less what headless Chromium keeps of its frame
    assert 0 < layout["viewport"] <= HEIGHT
    assert 0 <= verdict["top"] < verdict["bottom"] <= layout["viewport"] and verdict["shown"] == "visible"
    assert verdict["text"].splitlines()[0] == f"gate {word}"
    assert f"exit {int(result.verdict.exit_code)}: " in verdict["text"] and stamp(result.run) in verdict["text"]


@needs_browser
def test_a_failing_pages_first_screen_shows_what_to_fix_first(shown):
    layout = shown["failed"][1]
    finding, first = layout["finding"], golden("failed").verdict.findings[0].message
    assert finding is not None and finding["bottom"] <= layout["viewport"]
    assert finding["text"].startswith(f"[exit 1] {first}")
    assert shown["passed"][1]["finding"] is None  # a pass has nothing to fix
