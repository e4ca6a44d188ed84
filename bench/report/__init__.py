"""HTML reports from results.jsonl alone: `build()` is the one entry point.

load (sources -> runs frame) -> headline/charts (pyecharts options) -> page (offline HTML)
and image (static SVG of the headline chart). Files are written to a temp name and then
os.replace'd, so a reader never sees half a report.
"""

import json
import sys
from pathlib import Path

from bench import paths
from bench.atomic import write_atomic
from bench.report import charts, headline, image, load, page

INDEX = "index.html"
SVG = "headline.svg"


def chart_specs(runs) -> list:
    """Every chart of the page, in order: id, pyecharts options as a plain dict, notes."""
    pts = headline.points(runs)
    ok = runs[runs["status"] == "ok"]
    notes = [f"Bubble area grows with log10(trainable parameters); runs with 0 trainable parameters "
             f"(base) are drawn at the minimal size ({headline.BASE_SIZE:g} px). Dashed line: Pareto front "
             f"(lower memory, higher accuracy). Bars: ±1 stderr."]
    unplotted = len(ok) - len(pts)
    if unplotted:
        notes.append(f"{unplotted} ok run(s) have no MMLU score or train peak and are not plotted.")
    if len(runs) > len(ok):
        notes.append(f"{len(runs) - len(ok)} run(s) did not finish ok: see their status and error in the table.")
    built = [("chart-headline", headline.chart(runs), notes),
             ("chart-throughput", charts.throughput(runs), []),
             ("chart-memory", charts.memory(runs), []),
             ("chart-loss", charts.loss(runs), []),
             ("chart-mmlu-categories", charts.mmlu_categories(runs), [])]
    return [{"id": cid, "options": json.loads(chart.dump_options()), "notes": n} for cid, chart, n in built if chart]


def table_specs(runs) -> list:
    """Sortable tables shown after the charts: MMLU per subject when measured."""
    subjects = charts.mmlu_subjects(runs)
    if subjects is None:
        return []
    note = "mmlu.subjects: accuracy (%) per subject, mean over seeds. Click a column to sort."
    return [{"id": "mmlu-subjects", "title": "MMLU per subject", "notes": [note], "table": subjects, "tall": True}]


def build(*, sources: list, out_dir: Path, labels=None, skip_bad_lines: bool = False, image_svg: bool = True) -> Path:
    """Write out_dir/index.html (and headline.svg when node is there) from the sources; return the page path.

    Raises BenchError for a missing or empty source, a corrupt line (unless skip_bad_lines),
    or a missing echarts library.
    """
    loaded = load.load(sources=[Path(s) for s in sources], labels=labels, skip_bad_lines=skip_bad_lines)
    specs = chart_specs(loaded.runs)
    page.echarts_source()  # fail on a missing library before writing anything
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    picture = None
    if image_svg:
        text, why = image.svg(specs[0]["options"], echarts_js=paths.echarts_js())
        if text is None:
            print(f"ftbench: note: {why}", file=sys.stderr)
        else:
            write_atomic(out_dir / SVG, text)
            picture = SVG
    index = out_dir / INDEX
    write_atomic(index, page.render(loaded=loaded, charts=specs, tables=table_specs(loaded.runs), image=picture))
    return index
