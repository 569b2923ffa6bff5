"""Accuracy vs MACs plot of a study: PNG (matplotlib), SVG written directly, or an interactive HTML page
(Plotly, as Optuna's own visualisation uses: zoom, pan, hover, legend). The page embeds plotly.js (about 4.8 MB),
so it opens offline; with ``cdn=True`` it is a few kB and loads plotly.js from cdn.plot.ly when opened."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from nas._files import check_folder

__all__ = ["LABELS", "check_plot_path", "plot_front"]

LABELS = {"macs": "MACs", "flops": "FLOPs", "params": "params", "latency": "latency (ms)"}  # the cost axis


def _points(study: Any, objectives: Any) -> tuple[list[tuple[float, float, int, bool, str]], str]:
    objectives = study.front_objectives(objectives)
    cost = next((o for o in objectives if o != "accuracy"), "macs")
    front = {r.number for r in study.pareto_front(objectives)}
    pts = [(float(r.metrics.get(cost, math.nan)), float(r.metrics["accuracy"]), r.number, r.number in front,
            r.spec_str) for r in study.evaluated()]
    return pts, cost


def check_plot_path(path: str | Path) -> Path:
    """``path`` as a Path, if a plot can be written there: a .png, .svg or .html file in an existing folder that
    takes files."""
    path = Path(path)
    if path.suffix not in (".png", ".svg", ".html"):
        raise ValueError(f"`plot` must end in .png, .svg or .html, but got plot={str(path)!r}")
    if not path.parent.is_dir() or path.is_dir():
        where = f"there is no folder {str(path.parent)!r}" if not path.parent.is_dir() else "it is a folder"
        raise ValueError(f"`plot` must be a file in an existing folder, but got plot={str(path)!r} ({where})")
    check_folder(path.parent, "plot", path)
    return path


def plot_front(study: Any, path: str | Path, *, objectives: Any = None, cdn: bool = False) -> Path:
    """Write the accuracy-vs-cost plot of ``study`` (its evaluated trials, the Pareto front marked) to ``path``
    (.png, .svg or .html; ``cdn``: an HTML page that loads plotly.js from its CDN instead of holding it)."""
    path = check_plot_path(path)
    pts, cost = _points(study, objectives)
    if not pts:
        raise ValueError(f"study {study.name!r} has no evaluated trial to plot")
    if path.suffix == ".png":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
        ax.scatter([p[0] for p in pts if not p[3]], [p[1] for p in pts if not p[3]], c="#9aa", s=18, label="trials")
        front = sorted((p for p in pts if p[3]), key=lambda p: p[0])
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", c="#c33", lw=1.5)
        ax.scatter([p[0] for p in front], [p[1] for p in front], c="#c33", s=30, label="Pareto front")
        for p in front:
            ax.annotate(str(p[2]), (p[0], p[1]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel(LABELS[cost])
        ax.set_ylabel("validation accuracy")
        ax.set_title(f"{study.name}: accuracy vs {LABELS[cost]}")
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path
    if path.suffix == ".html":
        return _plotly(study, path, pts, cost, cdn)
    w, h, m = 720, 440, 60
    xs = [math.log10(max(p[0], 1e-9)) for p in pts]
    ys = [p[1] for p in pts]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 0.01

    def sx(v: float) -> float:
        return m + (math.log10(max(v, 1e-9)) - x0) / (x1 - x0) * (w - 2 * m)

    def sy(v: float) -> float:
        return h - m - (v - y0) / (y1 - y0) * (h - 2 * m)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             'font-size="11">',
             f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{html.escape(study.name)}: accuracy vs '
             f'{html.escape(LABELS[cost])}</text>',
             f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="black"/>',
             f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>',
             f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">{html.escape(LABELS[cost])} (log scale, '
             f'{pts and f"{min(p[0] for p in pts):,.0f}"}'
             f' to {max(p[0] for p in pts):,.0f})</text>',
             f'<text x="15" y="{h / 2}" transform="rotate(-90 15 {h / 2})" text-anchor="middle">validation accuracy '
             f'({y0:.3f} to {y1:.3f})</text>']
    front = sorted((p for p in pts if p[3]), key=lambda p: p[0])
    path_d = " ".join(f"{'M' if i == 0 else 'L'}{sx(p[0]):.1f},{sy(p[1]):.1f}" for i, p in enumerate(front))
    parts.append(f'<path d="{path_d}" fill="none" stroke="#c33" stroke-width="1.5"/>')
    for p in pts:
        color = "#c33" if p[3] else "#9aa"
        parts.append(f'<circle cx="{sx(p[0]):.1f}" cy="{sy(p[1]):.1f}" r="{4 if p[3] else 3}" fill="{color}">'
                     f'<title>trial {p[2]}: accuracy {p[1]:.4f}, {html.escape(LABELS[cost])} {p[0]:,.0f}\n'
                     f'{html.escape(p[4])}</title></circle>')
    parts.append("</svg>")
    svg = "\n".join(parts)
    path.write_text(svg)
    return path


def _plotly(study: Any, path: Path, pts: list[tuple[float, float, int, bool, str]], cost: str, cdn: bool) -> Path:
    import plotly.graph_objects as go

    def hover(p: tuple[float, float, int, bool, str]) -> str:
        return (f"trial {p[2]}<br>accuracy {p[1]:.4f}<br>{LABELS[cost]} {p[0]:,.0f}<br>"
                f"{html.escape(p[4][:120])}")
    rest = [p for p in pts if not p[3]]
    front = sorted((p for p in pts if p[3]), key=lambda p: p[0])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[p[0] for p in rest], y=[p[1] for p in rest], mode="markers", name="trials",
                             marker={"color": "#9aa", "size": 7}, text=[hover(p) for p in rest],
                             hovertemplate="%{text}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines+markers+text",
                             name="Pareto front", line={"color": "#c33", "shape": "hv"},
                             marker={"color": "#c33", "size": 10}, text=[str(p[2]) for p in front],
                             textposition="top left", customdata=[hover(p) for p in front],
                             hovertemplate="%{customdata}<extra></extra>"))
    fig.update_layout(title=f"{study.name}: accuracy vs {LABELS[cost]} ({len(pts)} architectures, {len(front)} on "
                            f"the front)",
                      xaxis={"title": LABELS[cost], "type": "log"},
                      yaxis={"title": "validation accuracy"}, legend={"x": 0.99, "y": 0.01, "xanchor": "right"},
                      template="plotly_white", width=900, height=560)
    fig.write_html(str(path), include_plotlyjs="cdn" if cdn else True, full_html=True)
    return path
