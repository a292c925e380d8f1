"""The report of ``recsys compare``: Markdown or one self-contained HTML page, with the plots.

The comparison itself (the bootstrap test, the metrics table, the verdict) is
:mod:`experiments.compare`; this module draws and writes it.
"""

from __future__ import annotations

import base64
import html
import math
import os
import shutil
from pathlib import Path

from experiments.compare import OUTCOMES, Comparison, _fmt, _p
from recsys import atomic_write
from recsys import metrics as m
from training.reports import plot_lorenz, plotting_available

__all__ = ["comparison_plots", "render_html", "render_markdown", "write_report"]


def comparison_plots(comparison: Comparison, directory: Path) -> dict[str, Path]:
    """Lorenz curves of introductions received (A and B) and the bootstrap differences (none
    without matplotlib)."""
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    if not plotting_available():
        return out
    from matplotlib.figure import Figure

    a, b = comparison.a, comparison.b
    if (
        a.per_member is not None
        and b.per_member is not None
        and "introductions_received" in a.per_member
    ):
        curves = {
            f"A: {a.name}": m.lorenz_curve(a.per_member["introductions_received"].to_numpy(float)),
            f"B: {b.name}": m.lorenz_curve(b.per_member["introductions_received"].to_numpy(float)),
        }
        notes = {
            f"A: {a.name}": f"Gini {_fmt(a.metrics.get('exposure_gini', math.nan))}",
            f"B: {b.name}": f"Gini {_fmt(b.metrics.get('exposure_gini', math.nan))}",
        }
        out["lorenz"] = plot_lorenz(
            curves,
            notes=notes,
            title="Introductions received, A against B",
            path=directory / "lorenz_a_b.png",
        )
    if comparison.tests:
        fig = Figure(figsize=(5.2 * len(comparison.tests), 3.8), layout="constrained")
        axes = fig.subplots(1, len(comparison.tests), squeeze=False)[0]
        for ax, test in zip(axes, comparison.tests):
            ax.hist(test.draws, bins=40, color="#1f77b4", alpha=0.8)
            ax.axvline(0, color="black", linewidth=1)
            for x in (test.ci_low, test.ci_high):
                ax.axvline(x, color="#d62728", linestyle="--", linewidth=1)
            ax.set_title(
                f"{OUTCOMES.get(test.outcome, test.outcome)}: Atkinson B − A\n"
                f"{test.difference:+.3f} [{test.ci_low:+.3f}, {test.ci_high:+.3f}], "
                f"{_p(test.p_value)}",
                fontsize="medium",
            )
            ax.set_xlabel(
                f"bootstrap difference ({'paired' if test.paired else 'independent'}, "
                f"{test.n_boot} resamples)"
            )
        path = directory / "atkinson_difference.png"
        fig.savefig(path, dpi=110)
        out["difference"] = path
    return out


def _header(comparison: Comparison) -> list[tuple[str, str, str]]:
    a, b = comparison.a, comparison.b
    return [
        ("run", f"{a.name} ({a.run_id[:8]})", f"{b.name} ({b.run_id[:8]})"),
        ("data set", a.tags.get("dataset", "?"), b.tags.get("dataset", "?")),
        ("policy", a.tags.get("policy", "?"), b.tags.get("policy", "?")),
        ("git commit", a.tags.get("git_commit", "?")[:10], b.tags.get("git_commit", "?")[:10]),
    ]


def _tests_rows(comparison: Comparison) -> list[list[str]]:
    return [
        [
            OUTCOMES.get(t.outcome, t.outcome),
            _fmt(t.atkinson_a),
            _fmt(t.atkinson_b),
            f"{t.difference:+.3f}",
            f"{_fmt(t.ci_low)} to {_fmt(t.ci_high)}",
            _p(t.p_value),
            "paired" if t.paired else "independent",
            f"{t.members:,}",
        ]
        for t in comparison.tests
    ]


_TEST_HEAD = ["outcome", "Atkinson A", "Atkinson B", "B − A", "CI", "p", "bootstrap", "members"]


def render_markdown(
    comparison: Comparison,
    plots: dict[str, Path] | None = None,
    *,
    relative_to: Path | None = None,
) -> str:
    """The report as Markdown (plots linked relative to ``relative_to``)."""

    def link(p: Path) -> str:
        return os.path.relpath(p, relative_to) if relative_to is not None else str(p)

    lines = ["# Run comparison: A against B", "", f"**{comparison.verdict}**", ""]
    lines += (
        ["| | A | B |", "| --- | --- | --- |"]
        + [f"| {k} | {va} | {vb} |" for k, va, vb in _header(comparison)]
        + [""]
    )
    if comparison.tests:
        lines += [
            f"## Inequality of per-member outcomes (Atkinson, ε = {comparison.epsilon:g})",
            "",
            "| " + " | ".join(_TEST_HEAD) + " |",
            "|" + " --- |" * len(_TEST_HEAD),
        ]
        lines += ["| " + " | ".join(r) + " |" for r in _tests_rows(comparison)] + [""]
    for note in comparison.notes:
        lines.append(f"> {note}")
    lines += [
        "",
        "## Metrics",
        "",
        "| metric | A | B | B − A | better |",
        "| --- | ---: | ---: | ---: | :---: |",
    ]
    for _, r in comparison.table.iterrows():
        delta = f"{r['delta']:+.4f}" if math.isfinite(r["delta"]) else "n/a"
        lines.append(
            f"| {r['metric']} | {_fmt(r['a'], 4)} | {_fmt(r['b'], 4)} | {delta} | {r['better']} |"
        )
    if plots:
        lines += ["", "## Plots", ""] + [
            f"![{name}]({link(path)})" for name, path in plots.items()
        ]
    return "\n".join(lines) + "\n"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}" '
        'style="max-width:100%">'
    )


def render_html(comparison: Comparison, plots: dict[str, Path] | None = None) -> str:
    """The report as one self-contained HTML page (plots embedded)."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Run comparison</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em "
        "auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px "
        "8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        ".verdict{font-size:1.15em;background:#f3f6fa;padding:.8em;border-left:4px solid "
        "#1f77b4}</style></head><body>",
        "<h1>Run comparison: A against B</h1>",
        f"<p class='verdict'>{esc(comparison.verdict)}</p>",
        "<table><tr><th></th><th>A</th><th>B</th></tr>",
    ]
    parts += [
        f"<tr><td>{esc(k)}</td><td>{esc(a)}</td><td>{esc(b)}</td></tr>"
        for k, a, b in _header(comparison)
    ]
    parts.append("</table>")
    if comparison.tests:
        parts.append(
            "<h2>Inequality of per-member outcomes (Atkinson, ε = "
            f"{comparison.epsilon:g})</h2><table><tr>"
            + "".join(f"<th>{esc(h)}</th>" for h in _TEST_HEAD)
            + "</tr>"
        )
        parts += [
            "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
            for row in _tests_rows(comparison)
        ]
        parts.append("</table>")
    parts += [f"<p><em>{esc(n)}</em></p>" for n in comparison.notes]
    parts.append(
        "<h2>Metrics</h2><table><tr><th>metric</th><th>A</th><th>B</th><th>B − "
        "A</th><th>better</th></tr>"
    )
    for _, r in comparison.table.iterrows():
        delta = f"{r['delta']:+.4f}" if math.isfinite(r["delta"]) else "n/a"
        parts.append(
            f"<tr><td>{esc(r['metric'])}</td><td>{_fmt(r['a'], 4)}</td>"
            f"<td>{_fmt(r['b'], 4)}</td><td>{delta}</td><td>{r['better']}</td></tr>"
        )
    parts.append("</table>")
    if plots:
        parts.append(
            "<h2>Plots</h2>"
            + "".join(f"<h3>{esc(name)}</h3>{_img(path)}" for name, path in plots.items())
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _run_plots(comparison: Comparison) -> dict[str, Path]:
    """Each run's own plots, A then B, for the names both have."""
    out: dict[str, Path] = {}
    for name in sorted(set(comparison.a.plots) & set(comparison.b.plots)):
        out[f"A: {name}"] = comparison.a.plots[name]
        out[f"B: {name}"] = comparison.b.plots[name]
    return out


def write_report(comparison: Comparison, output: str | Path) -> Path:
    """Write ``output`` as Markdown (``.md``, plots in ``<stem>_files/``) or self-contained HTML
    (``.html``).
    """
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".md", ".html", ".htm"):
        raise ValueError(f"{output}: the report must end in .md or .html")
    files = output.parent / f"{output.stem}_files"
    plots = comparison_plots(comparison, files)
    run_plots = _run_plots(comparison)
    if suffix == ".md":
        for label, path in run_plots.items():
            target = files / f"{label[0].lower()}_{path.name}"
            shutil.copyfile(path, target)
            plots[label] = target
        atomic_write(output, render_markdown(comparison, plots, relative_to=output.parent))
    else:
        atomic_write(output, render_html(comparison, {**plots, **run_plots}))
        shutil.rmtree(files, ignore_errors=True)
    return output
