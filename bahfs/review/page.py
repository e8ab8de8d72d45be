"""A video's review page: one HTML file, its data and script inline, plotly.js either
embedded (a page that stands alone) or loaded from a file beside it (the pages of a
site share one copy). Nothing is fetched from a network.

Hovering or clicking a time shows the nearest thumbnail with its frame number and
time, and a table of every track's value there.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from bahfs.review.data import VideoView
from bahfs.review.figure import build_figure, figure_json


def plotly_bundle() -> str:
    """plotly.js (minified) as shipped in the ``plotly`` Python package."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def script_tag(plotly_src: str | None) -> str:
    """plotly.js inline (``plotly_src`` None) or from a relative path."""
    if plotly_src is None:
        return f"<script>{plotly_bundle()}</script>"
    return f'<script src="{html.escape(plotly_src)}"></script>'


def js_literal(value: Any) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


STYLE = """
body{font-family:system-ui,sans-serif;margin:0 12px;color:#222}
h1{font-size:17px;margin:10px 0 4px;word-break:break-all}
.meta{font-size:13px;margin:2px 0}.meta b{font-weight:600}
.note{font-size:13px;color:#a33}
#top{position:sticky;top:0;background:#fff;z-index:5;display:flex;gap:14px;
 padding:6px 0;border-bottom:1px solid #ddd;align-items:flex-start}
#preview{width:240px;min-height:60px;background:#f3f3f3;object-fit:contain}
#cap{font-size:12px;margin-top:2px}
#vals{font-size:12px;columns:3 220px;flex:1}
#figbox{position:relative}
#cursor{position:absolute;width:1px;background:rgba(0,0,0,0.55);pointer-events:none;
 display:none;z-index:4}
#vals div{break-inside:avoid;white-space:nowrap}#vals .r{color:#777}
"""

SCRIPT = """
const gd = document.getElementById('fig');
Plotly.newPlot(gd, FIG.data, FIG.layout, {responsive: true, displaylogo: false});
const TS = DATA.timestamps;
function nearest(xs, t) {
  let lo = 0, hi = xs.length - 1;
  while (lo < hi) { const m = (lo + hi) >> 1; if (xs[m] < t) lo = m + 1; else hi = m; }
  if (lo > 0 && Math.abs(xs[lo - 1] - t) <= Math.abs(xs[lo] - t)) lo -= 1;
  return lo;
}
function stepValue(xs, ys, t) {
  let i = nearest(xs, t); if (xs[i] > t && i > 0) i -= 1; return ys[i];
}
function fmt(v) {
  if (v === null || v === undefined) return '-';
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3);
}
function show(t) {
  if (typeof t !== 'number' || !TS.length) return;
  const f = nearest(TS, t);
  const imgs = gd.layout.images || [];
  const cap = document.getElementById('cap');
  if (imgs.length) {
    const k = nearest(imgs.map(im => im.x), t);
    document.getElementById('preview').src = imgs[k].source;
    cap.textContent = 'frame ' + f + ' at ' + TS[f].toFixed(2) + ' s (thumbnail: frame ' +
      DATA.thumb_frames[k] + ')';
  } else {
    document.getElementById('preview').style.display = 'none';
    cap.textContent = 'frame ' + f + ' at ' + TS[f].toFixed(2) + ' s';
  }
  const rows = [];
  for (const tr of gd.data) {
    if (!tr.meta || !tr.x || !tr.x.length) continue;
    const v = tr.meta.kind === 'step' ? stepValue(tr.x, tr.y, t) : tr.y[nearest(tr.x, t)];
    rows.push('<div><span class="r">' + tr.meta.row + ' · </span>' + tr.name + ' <b>' +
      fmt(v) + '</b></div>');
  }
  document.getElementById('vals').innerHTML = rows.join('');
  const L = gd._fullLayout, xa = L.xaxis, cur = document.getElementById('cursor');
  cur.style.left = (xa._offset + xa.l2p(t)) + 'px';
  cur.style.top = L._size.t + 'px';
  cur.style.height = L._size.h + 'px';
  cur.style.display = 'block';
}
// any point of the plot area picks a time: the mouse's x on the shared time axis
function timeAt(ev) {
  const xa = gd._fullLayout.xaxis;
  const px = ev.clientX - gd.getBoundingClientRect().left - xa._offset;
  return px >= 0 && px <= xa._length ? xa.p2l(px) : null;
}
gd.addEventListener('mousemove', ev => { const t = timeAt(ev); if (t !== null) show(t); });
gd.addEventListener('click', ev => { const t = timeAt(ev); if (t !== null) show(t); });
show(0);
"""


def _meta_lines(view: VideoView, index_href: str | None) -> str:
    v = view.video
    e = html.escape
    label = {None: "withheld", 0: "no A/H", 1: "A/H"}.get(v["global_label"], "?")
    back = f'<a href="{e(index_href)}">index</a> · ' if index_href else ""
    parts = [
        f'<h1>{e(str(v["video_id"]))}</h1>',
        f'<div class="meta">{back}'
        f'<b>participant</b> {e(str(v["participant_id"]))} · <b>question</b> {v["question"]}'
        f' · <b>split</b> {e(str(v["split"]))} · <b>video label</b> {label}'
        f' · {float(v["duration_s"] or 0):.1f} s, {v["n_frames"]} frames at '
        f'{float(v["fps"] or 0):.2f} fps · release id {e(str(v["release_id"]))}</div>',
        '<div class="meta"><b>feature sets</b> '
        + (", ".join(f"{e(label)} (<code>{e(fs)}</code>)"
                     for fs, label in view.feature_sets.items()) or "none") + "</div>",
    ]
    if view.run is not None:
        parts.append(f'<div class="meta"><b>run</b> {e(view.run["name"])}: video score '
                     f'{view.run["score"]:.3f} (the official rule: the highest mean '
                     f'probability over 24 consecutive frames)</div>')
    for q in view.quarantine:
        parts.append(f'<div class="note">quarantined at {e(str(q["stage"]))}: '
                     f'{e(str(q["reason"]))}</div>')
    return "\n".join(parts)


def render_page(view: VideoView, *, plotly_src: str | None = None,
                index_href: str | None = None, hz: float = 8.0) -> str:
    """The HTML of ``view``'s page (plotly.js inline when ``plotly_src`` is None)."""
    fig = figure_json(build_figure(view, hz))
    data = {"timestamps": [round(float(t), 3) for t in view.timestamps],
            "thumb_frames": [f for _, f, _ in view.thumbs]}
    title = html.escape(f"bahfs review: {view.video['video_id']}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{STYLE}</style>{script_tag(plotly_src)}</head>"
            f"<body>{_meta_lines(view, index_href)}\n"
            f'<div id="top"><div><img id="preview" alt="frame at the cursor">'
            f'<div id="cap"></div></div><div id="vals"></div>'
            f'</div>\n<div id="figbox"><div id="fig"></div><div id="cursor"></div></div>\n'
            f"<script>const FIG = {js_literal(fig)};\nconst DATA = {js_literal(data)};"
            f"\n{SCRIPT}</script></body></html>\n")


def write_page(view: VideoView, out: Path, **kwargs: Any) -> Path:
    """Write ``view``'s page to ``out`` (kwargs: :func:`render_page`)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(view, **kwargs), encoding="utf-8")
    return out
