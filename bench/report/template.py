"""The page skeleton (Jinja2, autoescaped): everything from records goes through {{ }} escaping.

Chart options arrive as one JSON blob in a <script type="application/json"> whose `<`, `>`
and `&` are \\u-escaped, so no string from a record can close the tag. After drawing, the
page writes a self-check (non-blank pixels per chart, script errors) into #ftbench-selfcheck
so a headless browser can verify it with --dump-dom.
"""

PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ftbench report: {{ title }}</title>
<script>window.ftbenchErrors = [];
window.addEventListener("error", function (e) { window.ftbenchErrors.push(String(e.message)); });
(function () { var orig = console.error; console.error = function () {
  window.ftbenchErrors.push(Array.prototype.join.call(arguments, " ")); orig.apply(console, arguments); }; })();
</script>
<script>{{ echarts_js | safe }}</script>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1280px; padding: 0 16px 40px; color: #222; }
h1 { margin-bottom: 4px; } .meta, .note { color: #555; } .chart { width: 100%; height: 460px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
th.sortable { cursor: pointer; background: #f4f4f4; white-space: nowrap; }
th.sortable::after { content: " \2195"; color: #aaa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fff3f3; } .status-bad { color: #b00; font-weight: bold; }
.problems { background: #fff8e1; border: 1px solid #f0c36d; padding: 8px 12px; }
.scroll { overflow-x: auto; }
</style></head>
<body>
<h1>ftbench report</h1>
<p class="meta">{{ n_runs }} runs ({{ n_ok }} ok) from {{ sources | length }} source(s): {{ sources | join(", ") }}.
Built {{ built_at }} from results.jsonl alone.{% if image %} Static image: <a href="{{ image }}">{{ image }}</a>.{% endif %}</p>
{% if problems %}<div class="problems"><b>{{ problems | length }} line(s) skipped (--skip-bad-lines):</b>
<ul>{% for p in problems %}<li>{{ p }}</li>{% endfor %}</ul></div>{% endif %}
{% for chart in charts %}<section><div id="{{ chart.id }}" class="chart"></div>
{% for line in chart.notes %}<p class="note">{{ line }}</p>{% endfor %}</section>
{% endfor %}
<section><h2>All runs</h2><p class="note">Click a column to sort. Memory in GB (10<sup>9</sup> bytes).</p>
<div class="scroll"><table id="runs"><thead><tr>{% for c in table.columns %}<th class="sortable">{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in table.rows %}<tr{% if row.failed %} class="failed"{% endif %}>{% for cell in row.cells %}<td{% if cell.num %} class="num"{% endif %}{% if cell.cls %} class="{{ cell.cls }}"{% endif %} data-v="{{ cell.key }}">{{ cell.text }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div></section>
<section><h2>Environment</h2><div class="scroll"><table id="env"><thead><tr><th>key</th>{% for s in sources %}<th>{{ s }}</th>{% endfor %}</tr></thead>
<tbody>{% for key, values in env_rows %}<tr><td>{{ key }}</td>{% for v in values %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody></table></div></section>
<pre id="ftbench-selfcheck" hidden></pre>
<script type="application/json" id="ftbench-options">{{ options_json | safe }}</script>
<script>
(function () {
  var options = JSON.parse(document.getElementById("ftbench-options").textContent), charts = [];
  Object.keys(options).forEach(function (id) {
    var chart = echarts.init(document.getElementById(id), null, {renderer: "canvas"});
    chart.setOption(options[id]); charts.push(chart);
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  document.querySelectorAll("th.sortable").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var body = th.closest("table").tBodies[0], asc = th.dataset.dir !== "asc";
      th.dataset.dir = asc ? "asc" : "desc";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v, nx = parseFloat(x), ny = parseFloat(y);
        if (x === "") return 1; if (y === "") return -1;
        var d = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  setTimeout(function () {
    var verdict = {errors: window.ftbenchErrors, charts: {}};
    Object.keys(options).forEach(function (id) {
      var canvas = document.querySelector("#" + id + " canvas"), n = 0;
      if (canvas) {
        var px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        for (var i = 3; i < px.length; i += 4) { if (px[i] !== 0) n++; }
      }
      verdict.charts[id] = n;
    });
    document.getElementById("ftbench-selfcheck").textContent = JSON.stringify(verdict);
  }, 200);
})();
</script>
</body></html>
"""
