"""The plotly figure of a review page: one shared time axis (seconds), one row each for
the strip of frames, the A/H annotation (segments by certainty, frame labels, a run's
probabilities), the words, and every feature set's tracks.

Traces carry ``meta`` read by the page's script: ``{"row": title, "kind": "line" |
"step"}`` marks a trace whose value at the cursor goes in the values table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bahfs.review.data import Row, VideoView, bin_mean

CERTAINTY_COLOURS = {"high": "rgba(214,39,40,0.45)", "medium": "rgba(255,127,14,0.4)",
                     "low": "rgba(255,187,120,0.45)"}
ROW_PX = {"strip": 64, "ah": 110, "words": 80, "track": 95}
GAP_PX = 26  # room for each row's title
LEGEND_ITEM_PX = 17  # a row is at least as tall as its legend
PLOT_PX = 1100  # the plot's width the strip of frames is laid out for


def _num(values: np.ndarray, decimals: int) -> list[float | None]:
    """Rounded values, None where not finite (JSON has no NaN)."""
    r = np.round(np.asarray(values, dtype=np.float64), decimals)
    return [float(v) if math.isfinite(v) else None for v in r.tolist()]


def _decimals(y: np.ndarray) -> int:
    finite = np.abs(y[np.isfinite(y)])
    top = float(finite.max()) if finite.size else 1.0
    return 3 if top <= 1 else 2 if top <= 100 else 1


def _box(x0: float, x1: float, y0: float, y1: float) -> tuple[list[float], list[float]]:
    return [x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0]


def _ah_traces(view: VideoView, hz: float) -> list[go.Scatter]:
    traces: list[go.Scatter] = []
    shown: set[str] = set()
    for s in view.segments:
        cert = str(s["certainty"] or "unknown")
        x, y = _box(float(s["start_s"]), float(s["end_s"]), 0.0, 1.0)
        cues = "<br>".join(s["cues"]) or "no cues"
        traces.append(go.Scatter(
            x=x, y=y, fill="toself", mode="lines", line={"width": 0},
            fillcolor=CERTAINTY_COLOURS.get(cert, "rgba(127,127,127,0.35)"),
            name=f"A/H segment ({cert})", legendgroup=f"seg-{cert}",
            showlegend=cert not in shown, hoveron="fills",
            text=f"segment {s['segment']} · {s['start_s']:.2f}-{s['end_s']:.2f} s · "
                 f"certainty {cert}<br>{cues}", hoverinfo="text"))
        shown.add(cert)
    if view.labels is not None and view.labels.size:
        lab = view.labels.astype(np.int8)
        change = np.r_[0, np.flatnonzero(np.diff(lab)) + 1, lab.size - 1]
        traces.append(go.Scatter(
            x=_num(view.timestamps[change], 3), y=lab[change].tolist(), mode="lines",
            line={"shape": "hv", "color": "black", "width": 1.5}, name="frame label",
            meta={"row": "A/H", "kind": "step"}))
    if view.run is not None:
        step = max(1, round(float(view.video["fps"] or 24.0) / hz))
        r = view.run
        traces.append(go.Scatter(
            x=_num(bin_mean(view.timestamps, step), 3), y=_num(bin_mean(r["p"], step), 3),
            mode="lines", line={"color": "#1f77b4", "width": 1.5},
            name="run: P(A/H)", meta={"row": "A/H", "kind": "line"}))
        a, b = r["window"]
        traces.append(go.Scatter(
            x=[float(view.timestamps[a]), float(view.timestamps[b - 1])],
            y=[r["score"], r["score"]], mode="lines", line={"color": "#1f77b4", "width": 5},
            name=f"video score {r['score']:.3f} (best 24-frame mean)"))
    return traces


def _word_traces(view: VideoView) -> list[go.Scatter]:
    traces: list[go.Scatter] = []
    for i, c in enumerate(view.transcript):
        x, y = _box(float(c["start_s"]), float(c["end_s"] or c["start_s"]), 0.55, 0.95)
        traces.append(go.Scatter(
            x=x, y=y, fill="toself", mode="lines", line={"width": 0.5, "color": "#2ca02c"},
            fillcolor="rgba(44,160,44,0.25)", name="release transcript",
            legendgroup="transcript", showlegend=i == 0, hoveron="fills",
            text=f"{c['start_s']:.2f}-{c['end_s']:.2f} s<br>{c['text']}", hoverinfo="text"))
    if view.words:
        w = view.words
        traces.append(go.Scatter(
            x=[round((float(x["start_s"]) + float(x["end_s"])) / 2, 3) for x in w],
            y=[0.25] * len(w), mode="markers+text", text=[str(x["word"]) for x in w],
            textfont={"size": 9}, marker={"size": 4, "color": "#9467bd"},
            textposition=["top center" if i % 2 else "bottom center" for i in range(len(w))],
            customdata=[[float(x["start_s"]), float(x["end_s"]),
                         float(x["probability"] or 0)] for x in w],
            hovertemplate="%{text} (%{customdata[0]:.2f}-%{customdata[1]:.2f} s, "
                          "p=%{customdata[2]:.2f})<extra>ASR</extra>",
            name="ASR words"))
    return traces


def _track_traces(row: Row) -> list[go.Scatter]:
    out = []
    for tr in row.tracks:
        y = np.asarray(tr.y, dtype=np.float64)
        out.append(go.Scatter(x=_num(tr.t, 3), y=_num(y, _decimals(y)), mode="lines",
                              line={"width": 1.2}, name=tr.name,
                              meta={"row": row.title.split(" · ")[0], "kind": "line"}))
    return out


def _strip(view: VideoView, end: float, row_px: int) -> list[dict[str, Any]]:
    """Layout images of every thumbnail (the page's preview shows any of them); every
    k-th is visible in the strip, k such that each shown frame is about as wide as
    the row is tall times the frames' aspect ratio (for a plot ``PLOT_PX`` wide)."""
    if not view.thumbs:
        return []
    spacing = (view.thumbs[1][0] - view.thumbs[0][0]) if len(view.thumbs) > 1 else end
    aspect = view.thumb_aspect
    px_per_s = PLOT_PX / max(end, 1e-3)
    k = max(1, math.ceil(row_px * aspect / max(px_per_s * spacing, 1e-3)))
    return [{"source": uri, "xref": "x", "yref": "y", "x": t, "y": 1,
             "sizex": spacing * k, "sizey": 1, "xanchor": "left", "yanchor": "top",
             "sizing": "contain", "layer": "below", "visible": i % k == 0}
            for i, (t, _, uri) in enumerate(view.thumbs)]


def build_figure(view: VideoView, hz: float = 8.0) -> go.Figure:
    """The figure of ``view`` (thumbnails as layout images in the first row)."""
    rows: list[tuple[str, str, list[go.Scatter], list[float] | None]] = []
    if view.thumbs:
        strip = go.Scatter(x=[t for t, _, _ in view.thumbs], y=[0.5] * len(view.thumbs),
                           mode="markers", marker={"opacity": 0}, name="frames",
                           customdata=[f for _, f, _ in view.thumbs],
                           hovertemplate="frame %{customdata}<extra></extra>",
                           showlegend=False)
        rows.append(("strip", "frames" if view.thumb_source == "frames"
                     else f"frames: {view.thumb_source}", [strip], [0, 1]))
    rows.append(("ah", "A/H annotation" + (" and run" if view.run else ""),
                 _ah_traces(view, hz), [-0.05, 1.05]))
    if view.transcript or view.words:
        rows.append(("words", "words: release transcript (top), ASR (bottom)",
                     _word_traces(view), [0, 1]))
    for r in view.rows:
        rows.append(("track", r.title, _track_traces(r),
                     [-0.05, 1.05] if r.unit_range else None))
    heights = [max(ROW_PX[kind], LEGEND_ITEM_PX * sum(bool(t.showlegend is not False)
                                                       for t in traces) + 8)
               for kind, _, traces, _ in rows]
    total = sum(heights) + GAP_PX * len(rows)
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True,
                        row_heights=heights, vertical_spacing=GAP_PX / total)
    for i, (kind, title, traces, yrange) in enumerate(rows, start=1):
        legend = f"legend{i}" if i > 1 else "legend"
        for tr in traces:
            tr.legend = legend
            fig.add_trace(tr, row=i, col=1)
        yaxis = fig.layout[f"yaxis{i}" if i > 1 else "yaxis"]
        yaxis.update(fixedrange=True, tickfont={"size": 9}, zeroline=False)
        if yrange is not None:
            yaxis.update(range=yrange)
        if kind in ("strip", "words"):
            yaxis.update(showticklabels=False, showgrid=False)
        top = yaxis.domain[1]
        fig.add_annotation(text=f"<b>{title}</b>", xref="paper", yref="paper", x=0,
                           y=top, xanchor="left", yanchor="bottom", showarrow=False,
                           font={"size": 11})
        fig.layout[legend] = {"x": 1.01, "y": top, "yanchor": "top", "xanchor": "left",
                              "font": {"size": 9}, "bgcolor": "rgba(255,255,255,0)"}
    end = float(view.timestamps[-1]) if view.timestamps.size else 1.0
    fig.update_layout(
        images=_strip(view, end, heights[0] if view.thumbs else 0),
        height=total + 60, margin={"l": 50, "r": 190, "t": 20, "b": 40},
        hovermode="closest", template="plotly_white", showlegend=True)
    fig.update_xaxes(range=[0, end], showspikes=False)
    fig.update_xaxes(title_text="time (s)", row=len(rows), col=1)
    return fig


def figure_json(fig: go.Figure) -> dict[str, Any]:
    """``{"data": [...], "layout": {...}}`` with plain JSON values."""
    out: dict[str, Any] = fig.to_plotly_json()
    return {"data": out["data"], "layout": out["layout"]}
