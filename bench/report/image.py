"""A static SVG of the headline chart, for READMEs and CI artifacts.

Why SVG through node: echarts renders server-side to an SVG string (`ssr: true`) with no
browser and no DOM, from the very option JSON the page uses, so the image and the page
cannot drift apart. It takes one node process, well under a second. Without node the image
is skipped with a note; the HTML report never depends on it.
"""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

WIDTH, HEIGHT = 1000, 560
TIMEOUT_S = 60

_SCRIPT = """
const fs = require("fs");
const echarts = require(process.argv[2]);
const option = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const chart = echarts.init(null, null, {renderer: "svg", ssr: true, width: %d, height: %d});
chart.setOption(option);
process.stdout.write(chart.renderToSVGString());
chart.dispose();
""" % (WIDTH, HEIGHT)


def svg(options: dict, *, echarts_js: Path):
    """(svg text, None), or (None, why) when node is missing or fails."""
    node = shutil.which("node")
    if node is None:
        return None, "node not found on PATH: skipped the static SVG of the headline chart"
    option = dict(options, backgroundColor="#ffffff", animation=False)
    with tempfile.TemporaryDirectory(prefix="ftbench-svg-") as tmp:
        script, data = Path(tmp) / "render.js", Path(tmp) / "option.json"
        script.write_text(_SCRIPT, encoding="utf-8")
        data.write_text(json.dumps(option), encoding="utf-8")
        try:
            done = subprocess.run([node, str(script), str(echarts_js.resolve()), str(data)],
                                  capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return None, f"node took over {TIMEOUT_S} s: skipped the static SVG"
    if done.returncode != 0 or not done.stdout.startswith("<svg"):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"node could not render the SVG ({last}): skipped it"
    return done.stdout, None
