"""The model report in headless Chromium with the network unusable (dead proxy, no
name resolution): every section is laid out, every figure decodes, and the page
asks for nothing outside the file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.alerting.conftest import free_port
from tests.pipelines.reporting.html_probe import ReportParser
from tests.pipelines.reporting.test_nodes import FIGURES, SECTIONS, VERDICT, render

pytestmark = pytest.mark.browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Runs in the page: records what loaded, what was laid out and anything the page's
# Content-Security-Policy had to block, as attributes of <body> for --dump-dom.
PROBE = (
    """<script>
const blocked = [];
document.addEventListener('securitypolicyviolation', e => blocked.push(e.blockedURI));
window.addEventListener('load', () => {
  const images = [...document.images];
  const b = document.body.dataset;
  b.images = images.length;
"""
    "  b.decoded = images.filter(i => i.complete && i.naturalWidth > 0)"
    ".map(i => i.dataset.figure).join(',');\n"
    "  b.laidOut = [...document.querySelectorAll('section')].filter(s => s.offsetHeight > 0)"
    ".map(s => s.id).join(',');\n"
    """  b.resources = JSON.stringify(performance.getEntriesByType('resource').map(r => r.name));
  b.blocked = JSON.stringify(blocked);
});
</script>"""
)


def chromium() -> str:
    path = os.environ.get("CHROMIUM") or next(
        (p for name in BROWSERS if (p := shutil.which(name))), None
    )
    if path is None:
        pytest.fail(
            "Headless Chromium is needed to check the model report: `make browser` installs it "
            "(Debian: apt-get install chromium chromium-driver), "
            "or set CHROMIUM to a Chrome/Chromium binary."
        )
    return path


def open_offline(html_file, tmp_path) -> str:
    """The DOM after load, from a fresh profile with no usable network."""
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--proxy-server=http://127.0.0.1:{free_port()}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--dump-dom",
        html_file.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_report_renders_offline_with_every_section_and_figure(report_run, tmp_path):
    html = render(report_run, VERDICT)
    # The report's own policy forbids scripts; the probe copy allows inline ones only,
    # so any image, style or font from elsewhere would still be blocked and recorded.
    probe = html.replace(
        "style-src 'unsafe-inline'", "style-src 'unsafe-inline'; script-src 'unsafe-inline'", 1
    )
    probe = probe.replace("</title>", "</title>\n" + PROBE, 1)
    assert probe.count(PROBE) == 1 and "script-src 'unsafe-inline'" in probe
    report = tmp_path / "model_report.html"
    report.write_text(probe, encoding="utf-8")

    body = ReportParser(open_offline(report, tmp_path)).body
    assert body["data-laid-out"].split(",") == SECTIONS
    assert int(body["data-images"]) == len(FIGURES) + 1  # + the drift figure
    assert set(body["data-decoded"].split(",")) == FIGURES | {"drift"}
    assert json.loads(body["data-resources"]) == []
    assert json.loads(body["data-blocked"]) == []
