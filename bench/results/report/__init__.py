"""HTML reports from results.jsonl alone: `build()` is the one entry point.

load (sources -> runs frame) -> benefit (bench.results.compare's paired statistics) -> headline and
charts (pyecharts options) -> page (offline HTML from templates/), plus a static SVG of the
first headline chart. Files are written whole (bench.util.atomic), so a reader never sees half a report.

The SVG goes through node: echarts renders server-side to an SVG string (`ssr: true`) with no
browser and no DOM, from the very option JSON the page uses, so the image and the page cannot
drift apart. Without node the image is skipped with a note; the page never depends on it.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.results.report import benefit, breakdown_chart, charts, headline, load, page, scale_page
from bench.util import paths
from bench.util.atomic import write_atomic

INDEX = "index.html"
SVG = "headline.svg"
SVG_WIDTH, SVG_HEIGHT, SVG_TALL = 1000, 560, 860
TIMEOUT_S = 60


def _headline_notes(runs, metric, pts) -> list:
    ok = runs[runs["status"] == "ok"]
    notes = [f"Bubble area grows with log10(trainable parameters); runs with 0 trainable parameters "
             f"(base) are drawn at the minimal size ({headline.BASE_SIZE:g} px). base is the reference (diamond, "
             f"dashed horizontal line), not a candidate on the Pareto front (dashed step line over the trained "
             f"methods: lower memory, {'higher' if metric['higher'] else 'lower'} {metric['name']})."]
    plotted = sum(len(ids) for ids in pts["run_ids"]) if len(pts) else 0
    if len(ok) - plotted:
        notes.append(f"{len(ok) - plotted} ok run(s) have no {metric['name']} or train peak and are not plotted.")
    if len(runs) > len(ok):
        notes.append(f"{len(runs) - len(ok)} run(s) did not finish ok: see their status and error in the table.")
    return notes


def real_weights(runs):
    """The runs an accuracy or benefit chart may draw: not those of random-weight (shape) models."""
    return runs[~runs["random_weights"].astype(bool)] if "random_weights" in runs else runs


def chart_specs(runs, paired=None, records=()) -> list:
    """Every chart of the page, in order: id, pyecharts options as a plain dict, notes (and tall).
    records: the raw records (memory breakdown, MFU and scale charts read nested rows the frame flattens).
    The scale chart comes first when no benefit metric was measured; no headline is drawn then."""
    paired = paired or benefit.Paired()
    real = real_weights(runs)
    scale = scale_page.chart_spec(list(records))
    built = []
    for metric in headline.metrics(real) or ([] if scale else headline.metrics(real.assign(acc=0.0))[:1]):
        pts = headline.points(real, metric, summaries=paired.summaries)
        notes = _headline_notes(real, metric, pts) + ([] if built or paired.rows else paired.notes)
        built.append((metric["id"], headline.chart(real, metric, summaries=paired.summaries), notes))
    built += [("chart-learn-forget", benefit.learn_forget_chart(paired.learn_forget), []),
              ("chart-throughput", charts.throughput(runs), []),
              ("chart-memory", charts.memory(runs), []),
              ("chart-loss", charts.loss(runs), []),
              ("chart-mmlu-categories", charts.mmlu_categories(real), []),
              ("chart-breakdown", breakdown_chart.breakdown(records), []),
              ("chart-mfu", breakdown_chart.mfu(records), [])]
    specs = [{"id": cid, "options": json.loads(chart.dump_options()), "notes": n} for cid, chart, n in built if chart]
    if scale:
        heads = sum(1 for s in specs if s["id"].startswith("chart-headline"))
        specs.insert(heads, scale)
    return specs


def table_specs(runs, paired=None, records=()) -> list:
    """Sortable tables shown after the charts: the scale ladder's ratios and planner errors, MMLU per
    subject and the paired verdicts, when measured."""
    specs = scale_page.table_specs(list(records))
    subjects = charts.mmlu_subjects(real_weights(runs))
    if subjects is not None:
        note = "mmlu.subjects: accuracy (%) per subject, mean over seeds. Click a column to sort."
        specs.append({"id": "mmlu-subjects", "title": "MMLU per subject", "notes": [note], "table": subjects,
                      "tall": True})
    verdicts = benefit.verdict_table((paired or benefit.Paired()).rows)
    if verdicts is not None:
        note = ("Each pair A vs B on the questions (or held-out examples) both scored: accuracy in points, loss as is; "
                "95% paired interval of A − B and the verdict from `run_bench.py compare` (docs/compare.md).")
        specs.append({"id": "verdicts", "title": "Paired verdicts", "notes": [note, *paired.notes], "table": verdicts,
                      "tall": True})
    return specs


_SCRIPT = """
const fs = require("fs");
const echarts = require(process.argv[2]);
const option = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const chart = echarts.init(null, null, {renderer: "svg", ssr: true, width: WIDTH, height: HEIGHT});
chart.setOption(option);
process.stdout.write(chart.renderToSVGString());
chart.dispose();
"""


def svg(options: dict, *, echarts_js: Path, height: int = SVG_HEIGHT):
    """(svg text, None), or (None, why) when node is missing or fails."""
    node = shutil.which("node")
    if node is None:
        return None, "node not found on PATH: skipped the static SVG of the headline chart"
    option = dict(options, backgroundColor="#ffffff", animation=False)
    with tempfile.TemporaryDirectory(prefix="ftbench-svg-") as tmp:
        script, data = Path(tmp) / "render.js", Path(tmp) / "option.json"
        script.write_text(_SCRIPT.replace("WIDTH", str(SVG_WIDTH)).replace("HEIGHT", str(height)), encoding="utf-8")
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


def build(*, sources: list, out_dir: Path, labels=None, skip_bad_lines: bool = False, image_svg: bool = True) -> Path:
    """Write out_dir/index.html (and headline.svg when node is there) from the sources; return the page path.

    Raises BenchError for a missing or empty source, a corrupt line (unless skip_bad_lines),
    or a missing echarts library.
    """
    loaded = load.load(sources=[Path(s) for s in sources], labels=labels, skip_bad_lines=skip_bad_lines)
    paired = benefit.paired(loaded.sources)
    records = [r for _, recs, _ in loaded.sources for r in recs]
    specs = chart_specs(loaded.runs, paired, records=records)
    page.echarts_source()  # fail on a missing library before writing anything
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    picture = None
    if image_svg:
        text, why = svg(specs[0]["options"], echarts_js=paths.echarts_js(),
                        **({"height": SVG_TALL} if specs[0].get("tall") else {}))
        if text is None:
            print(f"ftbench: note: {why}", file=sys.stderr)
        else:
            write_atomic(out_dir / SVG, text)
            picture = SVG
    index = out_dir / INDEX
    html = page.render(loaded=loaded, charts=specs, tables=table_specs(loaded.runs, paired, records), image=picture)
    return write_atomic(index, html)
