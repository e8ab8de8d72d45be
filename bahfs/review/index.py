"""The index page of a review site: one row per extracted video, sortable (click a
column's heading) and filterable (a text box matched against every cell, and a split
chooser), each row linking to the video's page; below it, every quarantined video
with its stage and reason. A small inline script; the table works without it."""

from __future__ import annotations

import html
from pathlib import PurePosixPath
from typing import Any

COLUMNS = (  # key, heading, numeric
    ("video_id", "video", False), ("participant_id", "participant", False),
    ("question", "question", True), ("split", "split", False),
    ("duration_s", "duration (s)", True), ("ah_fraction", "A/H fraction", True),
    ("face_coverage", "face coverage", True), ("words", "words", True),
    ("quarantine", "quarantine", False), ("score", "run score", True),
)

STYLE = """
body{font-family:system-ui,sans-serif;margin:12px;color:#222;font-size:13px}
h1{font-size:18px;margin:4px 0}h2{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;
 text-align:left;white-space:nowrap}th{cursor:pointer;background:#f5f5f5;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.q{color:#a33;white-space:normal;max-width:420px;overflow-wrap:anywhere}
th.asc:after{content:" \\25B2"}th.desc:after{content:" \\25BC"}
#filter{width:320px;margin:6px 8px 6px 0}
"""

SCRIPT = """
const table = document.getElementById('videos');
const body = table.tBodies[0];
const filterBox = document.getElementById('filter');
const splitBox = document.getElementById('split');
function applyFilter() {
  const q = filterBox.value.toLowerCase(), s = splitBox.value;
  let shown = 0;
  for (const tr of body.rows) {
    const ok = (!q || tr.textContent.toLowerCase().includes(q)) &&
      (!s || tr.dataset.split === s);
    tr.style.display = ok ? '' : 'none';
    if (ok) shown += 1;
  }
  document.getElementById('count').textContent = shown + ' of ' + body.rows.length;
}
filterBox.addEventListener('input', applyFilter);
splitBox.addEventListener('change', applyFilter);
for (const th of table.tHead.rows[0].cells) {
  th.addEventListener('click', () => {
    const col = th.cellIndex, numeric = th.dataset.numeric === '1';
    const dir = th.classList.contains('asc') ? -1 : 1;
    for (const other of table.tHead.rows[0].cells) other.classList.remove('asc', 'desc');
    th.classList.add(dir === 1 ? 'asc' : 'desc');
    const key = tr => tr.cells[col].dataset.v;
    const rows = Array.from(body.rows).sort((a, b) => {
      const x = key(a), y = key(b);
      if (numeric) {
        const fx = x === '' ? -Infinity : parseFloat(x), fy = y === '' ? -Infinity : parseFloat(y);
        return dir * (fx - fy);
      }
      return dir * x.localeCompare(y);
    });
    for (const tr of rows) body.appendChild(tr);
  });
}
applyFilter();
"""


def _cell(key: str, value: Any, numeric: bool, href: str | None) -> str:
    e = html.escape
    sort = "" if value is None else str(value)
    text = "-" if value is None or value == "" else str(value)
    if key == "quarantine":
        return f'<td{" class=q" if sort else ""} data-v="{e(sort)}">{e(sort) or "ok"}</td>'
    if key == "video_id" and href:
        text = f'<a href="{e(href)}">{e(text)}</a>'
    else:
        text = e(text)
    return f'<td{" class=n" if numeric else ""} data-v="{e(sort)}">{text}</td>'


def render_index(rows: list[dict[str, Any]], quarantined: list[dict[str, Any]], *,
                 store: str, feature_sets: dict[str, str], run: str | None) -> str:
    """The index page's HTML."""
    e = html.escape
    cols = [c for c in COLUMNS if c[0] != "score" or run is not None]
    head = "".join(f'<th data-numeric="{int(num)}">{e(title)}</th>' for _, title, num in cols)
    body = "\n".join(
        f'<tr data-split="{e(str(r["split"]))}">'
        + "".join(_cell(k, r.get(k), num, r.get("href")) for k, _, num in cols) + "</tr>"
        for r in rows)
    splits = sorted({str(r["split"]) for r in rows})
    options = "".join(f'<option value="{e(s)}">{e(s)}</option>' for s in splits)
    hours = sum(float(r["duration_s"] or 0) for r in rows) / 3600
    fs = ", ".join(f"{e(label)} (<code>{e(i)}</code>)" for i, label in feature_sets.items())
    q_rows = "\n".join(
        f'<tr><td>{e(str(q["video_id"]))}</td><td>{e(str(q["participant_id"]))}</td>'
        f'<td>{e(str(q["stage"]))}</td><td class="q">{e(str(q["reason"]))}</td>'
        f'<td>{e(str(q["path"]))}</td></tr>' for q in quarantined)
    quarantine = (f'<table id="quarantine"><thead><tr><th>video</th><th>participant</th>'
                  f'<th>stage</th><th>reason</th><th>file</th></tr></thead>'
                  f"<tbody>{q_rows}</tbody></table>" if quarantined
                  else "<p>No video is quarantined.</p>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>bahfs review: {e(PurePosixPath(store).name)}</title><style>{STYLE}</style>"
        "</head><body>"
        f"<h1>bahfs review of {e(str(store))}</h1>"
        f"<p>{len(rows)} extracted videos ({hours:.2f} h) · feature sets: {fs or 'none'}"
        + (f" · run: {e(run)} (score: the official video rule)" if run else "")
        + "</p><p>A/H fraction: frames labelled A/H; face coverage: frames with a face "
        "found; words: ASR words (the release transcript's words where no ASR ran).</p>"
        f'<input id="filter" type="search" placeholder="filter: any text in a row">'
        f'<select id="split"><option value="">all splits</option>{options}</select> '
        f'<span id="count"></span>'
        f'<table id="videos"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'
        f"<h2>Quarantined ({len(quarantined)})</h2>{quarantine}"
        f"<script>{SCRIPT}</script></body></html>\n")
