"""The report as one self-contained HTML file: tables, and plots embedded as base64 PNG.

matplotlib (the ``plot`` extra) is imported here only, so the model server never loads it.
"""

from __future__ import annotations

import base64
import html
import io
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np
from credit_schema import ELDERLY_AGE, FEATURE_LABELS

from .. import stability
from ..drift import PSI_BANDS
from .metrics import Report

#: PSI_BANDS' readings, and monitor's levels, as colours: green, amber, red.
_LEVEL_COLOURS: Final = dict(
    zip([label for _, label in PSI_BANDS], ["#0a7d32", "#d08a00", "#b3261e"], strict=True)
) | {"ok": "#0a7d32", "watch": "#d08a00", "act": "#b3261e"}

_CSS: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;
background:#f5f6f8}
main{max-width:1180px;margin:0 auto;padding:24px 32px;background:#fff}
h1{margin:0 0 4px;font-size:26px}h2{margin:32px 0 8px;border-bottom:2px solid #e3e6ea;
padding-bottom:4px;font-size:20px}h3{font-size:15px;margin:16px 0 6px}
p.sub{color:#5b6573;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid #e3e6ea;border-radius:8px;padding:10px 14px;min-width:120px}
.card b{display:block;font-size:22px}.card>span{color:#5b6573;font-size:12px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border-bottom:1px solid #e3e6ea;padding:4px 10px;text-align:right}
th{background:#f0f2f5}td:first-child,th:first-child,.l{text-align:left}
.pass{color:#0a7d32;font-weight:600}.fail{color:#b3261e;font-weight:600}
img{max-width:100%;height:auto;display:block;margin:8px 0}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
code{background:#f0f2f5;padding:1px 4px;border-radius:3px;font-size:12px}
ul{margin:4px 0 8px 18px;padding:0}
"""


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return _esc(v)


def _num(v: float | None) -> str:
    return "&ndash;" if v is None else f"{v:,.4g}"


def _pct(v: float | None) -> str:
    return "&ndash;" if v is None else f"{100 * v:.1f}%"


def _wrapped(feature: str, labels: Mapping[str, str] = FEATURE_LABELS) -> str:
    """A feature's plain-language label (else its name, spaced) on short lines (plot titles)."""
    label = labels.get(feature) or re.sub(r"(?<=[a-z])(?=[A-Z0-9])", " ", feature)
    return "\n".join(textwrap.wrap(label, 26))


#: A panel whose values reach past this many times their median (and past 1) is drawn on a
#: symmetric-log axis (a debt ratio's 99th percentile can be in the thousands, its median under 1).
LONG_TAIL: Final = 100.0


def axis_scale(values: np.ndarray[Any, Any]) -> str:
    """``"symlog"`` for values with a long right tail (at their 99th percentile), else ``"linear"``."""
    if values.size == 0:
        return "linear"
    top = float(np.quantile(values, 0.99))
    return "symlog" if top > LONG_TAIL * max(float(np.median(np.abs(values))), 1.0) else "linear"


def _table(headers: list[str] | None, rows: list[list[str]], left: tuple[int, ...] = (0,)) -> str:
    def cell(i: int, c: str) -> str:
        return f"<td>{c}</td>" if i not in left or i == 0 else f'<td class="l">{c}</td>'

    head = "".join(
        f'<th class="l">{_esc(h)}</th>' if i in left else f"<th>{_esc(h)}</th>"
        for i, h in enumerate(headers or [])
    )
    body = "".join("<tr>" + "".join(cell(i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
    head = f"<thead><tr>{head}</tr></thead>" if headers else ""
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _verdict(passed: bool) -> str:
    return '<span class="pass">PASS</span>' if passed else '<span class="fail">FAIL</span>'


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{value}</b><span>{_esc(label)}</span></div>'


class ReportDependencyError(RuntimeError):
    """The HTML report cannot be drawn here (matplotlib is missing)."""


def _matplotlib() -> tuple[Any, Any]:
    """matplotlib's ``Figure`` and ``NullFormatter``, or :class:`ReportDependencyError`."""
    try:  # Figure directly, not pyplot: no global backend or figure registry to disturb
        from matplotlib.figure import Figure
        from matplotlib.ticker import NullFormatter
    except ImportError as exc:
        raise ReportDependencyError(
            "the HTML report needs matplotlib: pip install './model_src[plot]' in the credit-explainer "
            "checkout (or --json FILE --no-html)"
        ) from exc
    return Figure, NullFormatter


def _img(figure: Any, draw: Callable[[Any], None], size: tuple[float, float], alt: str) -> str:
    """One figure drawn by ``draw`` as an ``<img>`` holding its base64 PNG."""
    fig = figure(figsize=size, dpi=100)
    draw(fig)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


class _Plots:
    """Each method draws one figure and returns it as an ``<img>`` with a base64 PNG."""

    def __init__(self, report: Report) -> None:
        self.Figure, self.NullFormatter = _matplotlib()
        self.r = report
        self.f = report.figures
        self.features: list[str] = report.figures["model"]["features"]

    def _img(self, draw: Callable[[Any], None], size: tuple[float, float], alt: str) -> str:
        return _img(self.Figure, draw, size, alt)

    def roc_ks(self) -> str:
        fpr, tpr = self.r.plots.roc
        xs, good, bad = self.r.plots.ks
        d = self.f["discrimination"]

        def draw(fig: Any) -> None:
            a, b = fig.subplots(1, 2)
            a.plot(fpr, tpr, color="#1f5fbf", label=f"model (AUC {d['auc']:.3f})")
            a.plot([0, 1], [0, 1], color="#999", ls="--", label="chance")
            a.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
            a.legend(loc="lower right")
            b.plot(xs, good, color="#0a7d32", label="non-defaults")
            b.plot(xs, bad, color="#b3261e", label="defaults")
            b.axvline(d["ks_score"], color="#555", ls=":", label=f"KS {d['ks']:.3f}")
            b.set(
                xlabel="score (probability of default)",
                ylabel="cumulative share",
                title="KS: the two score distributions",
            )
            b.set_xscale("log")
            ticks = [
                t for t in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0) if xs[0] <= t <= xs[-1]
            ]
            b.set_xticks(ticks, [f"{t:g}" for t in ticks])
            b.xaxis.set_minor_formatter(self.NullFormatter())  # crowded on a short decade
            b.legend(loc="lower right")

        return self._img(draw, (11, 4), "ROC and KS curves")

    def gains(self) -> str:
        rows = self.f["discrimination"]["gains"]

        def draw(fig: Any) -> None:
            a, b = fig.subplots(1, 2)
            x = [0] + [10 * r["decile"] for r in rows]
            a.plot(
                x,
                [0] + [100 * r["cumulative_gain"] for r in rows],
                "o-",
                color="#1f5fbf",
                label="model",
            )
            a.plot([0, 100], [0, 100], color="#999", ls="--", label="random")
            a.set(
                xlabel="% of applicants (riskiest first)",
                ylabel="% of defaults captured",
                title="Cumulative gains",
            )
            a.legend(loc="lower right")
            b.bar([r["decile"] for r in rows], [r["lift"] for r in rows], color="#1f5fbf")
            b.axhline(1.0, color="#999", ls="--")
            b.set(xlabel="score decile (1 = riskiest)", ylabel="lift", title="Lift by decile")
            b.set_xticks([r["decile"] for r in rows])

        return self._img(draw, (11, 3.8), "gains and lift")

    def reliability(self) -> str:
        rows = self.f["calibration"]["deciles"]

        def draw(fig: Any) -> None:
            a = fig.subplots()
            pred = [r["predicted"] for r in rows]
            obs = [r["observed"] for r in rows]
            top = max(max(pred), max(obs)) * 1.05
            a.plot([0, top], [0, top], color="#999", ls="--", label="perfect calibration")
            a.plot(pred, obs, "o-", color="#1f5fbf", label="model, by predicted decile")
            a.set(
                xlabel="mean predicted default rate",
                ylabel="observed default rate",
                title="Reliability",
            )
            a.legend(loc="upper left")

        return self._img(draw, (5.5, 4.2), "reliability plot")

    def importance(self) -> str:
        rows = self.f["explanations"]["importance"][::-1]

        def draw(fig: Any) -> None:
            a = fig.subplots()
            a.barh(
                [r["feature"] for r in rows], [r["mean_abs_shap"] for r in rows], color="#1f5fbf"
            )
            space = self.f["explanations"].get("space", "probability").replace("_", "-")
            a.set(xlabel=f"mean |SHAP| ({space})", title="Global importance")

        return self._img(draw, (5.5, 4.2), "global importance")

    def _order(self) -> list[int]:
        names = [r["feature"] for r in self.f["explanations"]["importance"]]
        return [self.features.index(n) for n in names]

    def summary(self) -> str:
        X, S = self.r.plots.X, self.r.plots.shap
        order = self._order()[::-1]
        rng = np.random.default_rng(1)

        def draw(fig: Any) -> None:
            a = fig.subplots()
            points = None
            for row, j in enumerate(order):
                col = X[:, j]
                present = ~np.isnan(col)
                rank = np.full(col.shape, np.nan)
                if present.any():
                    rank[present] = (np.argsort(np.argsort(col[present])) + 0.5) / present.sum()
                jitter = rng.uniform(-0.3, 0.3, len(col))
                a.scatter(S[~present, j], row + jitter[~present], s=4, color="#aaaaaa")
                points = a.scatter(
                    S[present, j],
                    row + jitter[present],
                    s=4,
                    c=rank[present],
                    cmap="coolwarm",
                    vmin=0,
                    vmax=1,
                )
            a.axvline(0, color="#555", lw=0.8)
            a.set_yticks(range(len(order)), [self.features[j] for j in order])
            a.set(
                xlabel="SHAP value (change in probability of default)",
                title=f"SHAP summary ({len(X)} applicants; grey = missing)",
            )
            if points is not None:
                bar = fig.colorbar(points, ax=a, fraction=0.03)
                bar.set_label("value rank (low to high)")

        return self._img(draw, (11, 5.5), "SHAP summary")

    def dependence(self) -> str:
        X, S = self.r.plots.X, self.r.plots.shap
        order = self._order()
        features, age = self.features, self.f["model"].get("age_feature")
        labels = self.f["model"].get("labels") or FEATURE_LABELS  # a report from before: built-in
        rows = -(-len(features) // 5)

        def draw(fig: Any) -> None:
            axes = fig.subplots(rows, 5, squeeze=False).ravel()
            for spare in axes[len(features) :]:
                spare.set_visible(False)
            for a, j in zip(axes, order, strict=False):
                col, s = X[:, j], S[:, j]
                present = ~np.isnan(col)
                x = col[present]
                if x.size:  # heavy tails: show the 1st-99th percentile range
                    lo, hi = np.quantile(x, [0.01, 0.99])
                    keep = (x >= lo) & (x <= hi)
                    colors = np.where(
                        (features[j] == age) & (x[keep] >= ELDERLY_AGE), "#b3261e", "#1f5fbf"
                    )
                    a.scatter(x[keep], s[present][keep], s=3, c=colors, alpha=0.5)
                    if axis_scale(x[keep]) == "symlog":
                        a.set_xscale("symlog", linthresh=1.0)
                        a.set_xlabel("log scale above 1", fontsize=7)
                a.axhline(0, color="#555", lw=0.8)
                a.set_title(_wrapped(features[j], labels), fontsize=8)
                a.tick_params(labelsize=7)
            for first in axes[::5]:
                first.set_ylabel("SHAP value")

        return self._img(draw, (13, 2.75 * rows), "dependence plots")

    def psi(self) -> str:
        st = self.f["stability"]
        names = [*self.features, "score"]
        values = [st["features"][n]["psi"] for n in self.features] + [st["score"]["psi"]]

        def draw(fig: Any) -> None:
            a = fig.subplots()
            colors = [_LEVEL_COLOURS[stability.reading(v)] for v in values]
            a.barh(names[::-1], values[::-1], color=colors[::-1])
            a.set_xlim(0, max(0.3, 1.1 * max(values)))
            for x, _ in PSI_BANDS[:-1]:
                a.axvline(x, color="#999", ls="--", lw=0.8)
            a.set(xlabel="PSI against the training baseline", title="Population stability")

        return self._img(draw, (7, 4.2), "PSI per feature")

    def reasons(self) -> str:
        rows = self.f["reasons"]["reasons"][::-1]

        def draw(fig: Any) -> None:
            a = fig.subplots()
            a.barh([r["code"] for r in rows], [100 * r["share"] for r in rows], color="#1f5fbf")
            a.set(xlabel="% of these applicants' notices", title="Principal reasons")

        return self._img(draw, (7, 3.8), "reason frequencies")


def render(report: Report) -> str:
    """The whole report as one HTML document (no external resources)."""
    from . import checks_html

    f = report.figures
    plots = _Plots(report)
    d, c, m = f["discrimination"], f["calibration"], f["model"]
    reg, mono, card = f["regulation_b"], f["monotonicity"], f["model_card"]
    parts: list[str] = []
    add = parts.append

    add(
        f"<h1>Model validation report</h1><p class='sub'>model <code>{_esc(m['model_version'])}"
        f"</code> · data {_esc(f['data']['source'])} ({_esc(f['data']['split'])}, "
        f"{f['data']['rows']:,} rows, default rate {_pct(f['data']['default_rate'])})</p>"
    )
    if f["data"].get("note"):
        add(f"<p class='fail'>Note: {_esc(f['data']['note'])}.</p>")
    add(
        '<div class="cards">'
        + _card(f"{d['auc']:.4f}", f"ROC AUC ({checks_html.interval_label(d)})")
        + _card(f"{d['gini']:.4f}", "Gini")
        + _card(f"{d['ks']:.4f}", f"KS (at score {d['ks_score']:.4f})")
        + _card(f"{c['brier']:.4f}", "Brier score")
        + _card(f"{c['ece']:.4f}", "expected calibration error")
        + _card(_verdict(reg["passed"]), "Regulation B, elderly applicants")
        + _card(_verdict(mono["passed"]), "past-due monotonicity")
        + _card(_verdict(f["calibration_test"]["passed"]), "calibration tests")
        + "</div>"
    )
    add(checks_html.verdicts(f))

    add("<h2>Discrimination</h2>")
    add(plots.roc_ks())
    add(plots.gains())
    add(
        _table(
            [
                "decile",
                "applicants",
                "defaults",
                "default rate",
                "scores",
                "cumulative gain",
                "lift",
                "cumulative lift",
            ],
            [
                [
                    str(r["decile"]),
                    f"{r['count']:,}",
                    f"{r['defaults']:,}",
                    _pct(r["default_rate"]),
                    f"{r['min_score']:.3f}&ndash;{r['max_score']:.3f}",
                    _pct(r["cumulative_gain"]),
                    f"{r['lift']:.2f}",
                    f"{r['cumulative_lift']:.2f}",
                ]
                for r in d["gains"]
            ],
        )
    )

    add(checks_html.discrimination(f))

    add("<h2>Calibration</h2><div class='grid'><div>")
    add(plots.reliability())
    add("</div><div>")
    add(
        _table(
            ["predicted decile", "applicants", "mean predicted", "observed"],
            [
                [str(r["decile"]), f"{r['count']:,}", _pct(r["predicted"]), _pct(r["observed"])]
                for r in c["deciles"]
            ],
        )
    )
    add(
        f"<p>Brier score {c['brier']:.5f}; expected calibration error (over these deciles) "
        f"{c['ece']:.5f}; mean predicted {_pct(c['mean_predicted'])} against observed "
        f"{_pct(c['observed'])}.</p></div></div>"
    )

    add(checks_html.calibration(f))

    e = f["explanations"]
    add("<h2>Explanations</h2>")
    add(
        f"<p>Exact path-dependent TreeSHAP ({_esc(e['explainer'])}), the explainer the model "
        f"server answers with, in {_esc(e.get('space', 'probability'))}; base value "
        f"{e['base_value']:.5f}; largest |base value + SHAP sum &minus; "
        f"{'log-odds of the probability' if e.get('space') == 'log_odds' else 'probability'}| "
        f"{e['max_additivity_gap']:.1e}.</p><div class='grid'><div>"
    )
    add(plots.importance())
    add("</div><div>")
    add(
        _table(
            ["feature", "mean |SHAP|", "mean SHAP"],
            [
                [_esc(r["feature"]), f"{r['mean_abs_shap']:.5f}", f"{r['mean_shap']:+.5f}"]
                for r in e["importance"]
            ],
        )
    )
    add("</div></div>")
    pts = f.get("points")
    if pts:
        add("<h3>Scorecard points</h3>")
        q = pts["score_quantiles"]
        add(
            f"<p>{_esc(pts['scorecard'])} (score:odds:points to double the odds): factor "
            f"{pts['factor']:.4f}, offset {pts['offset']:.2f}; scores on these rows: 1st "
            f"percentile {q['p1']:.0f}, median {q['p50']:.0f}, 99th {q['p99']:.0f}. Each answer's "
            "points sum exactly to its score.</p>"
        )
        add(
            _table(
                ["feature", "mean points", "fewest", "most"],
                [
                    [
                        _esc(r["feature"]),
                        f"{r['mean_points']:+.1f}",
                        str(r["min_points"]),
                        str(r["max_points"]),
                    ]
                    for r in pts["features"]
                ],
            )
        )
    add(plots.summary())
    add(
        f"<h3>Dependence (1st&ndash;99th percentile of each feature; red: aged {ELDERLY_AGE}+)</h3>"
    )
    add(plots.dependence())

    st = f["stability"]
    add("<h2>Stability</h2>")
    if st["available"]:
        add(
            "<p>PSI against the training baseline (bins: training deciles, missing as its own "
            "bin). Below 0.1 stable, 0.1&ndash;0.25 a moderate shift, above 0.25 a major one.</p>"
            "<div class='grid'><div>"
        )
        add(plots.psi())
        add("</div><div>")
        rows = [
            [_esc(n), f"{v['psi']:.4f}", _esc(v["reading"])]
            for n, v in [*st["features"].items(), ("score", st["score"])]
        ]
        add(_table(["variable", "PSI", "reading"], rows))
        add("</div></div>")
    else:
        add(f"<p>Not available: {_esc(st['why'])}.</p>")

    add("<h2>Segments</h2>")
    labels = (f["thresholds"] or {}).get("labels", [])
    add(
        _table(
            [
                "segment",
                "applicants",
                "share",
                "observed default rate",
                "predicted",
                "AUC",
                *labels,
            ],
            [
                [
                    _esc(s["segment"]),
                    f"{s['count']:,}",
                    _pct(s["share"]),
                    _pct(s["observed_default_rate"]),
                    _pct(s["predicted_default_rate"]),
                    _fmt(s["auc"]),
                    *[_pct(s["decisions"][label]) for label in labels],
                ]
                for s in f["segments"]
            ],
        )
    )
    if not labels:
        add("<p>Give <code>--decision-thresholds</code> for the share in each decision band.</p>")

    rs = f["reasons"]
    add("<h2>Adverse-action reasons</h2>")
    add(
        f"<p>Principal reasons (registry {_esc(rs['registry_version'])}) that would appear on "
        f"the notices of the {rs['applicants']:,} applicants in the {_esc(rs['basis'])} "
        f"(probability ≥ {rs['cutoff']:.4f}); {rs['without_reason']:,} would get no reason.</p>"
    )
    if rs["reasons"]:
        add("<div class='grid'><div>")
        add(plots.reasons())
        add("</div><div>")
        add(
            _table(
                ["code", "text", "notices", "share", "as first reason"],
                [
                    [
                        _esc(r["code"]),
                        _esc(r["text"]),
                        f"{r['applicants']:,}",
                        _pct(r["share"]),
                        f"{r['first']:,}",
                    ]
                    for r in rs["reasons"]
                ],
                left=(0, 1),
            )
        )
        add("</div></div>")

    add("<h2>Regulation B: elderly applicants</h2>")
    add(
        f"<p>{_verdict(reg['passed'])} Rule: {_esc(reg['rule'])} (12 CFR 1002.6(b)(2)). "
        f"{reg['age_raises_risk']:,} of {reg['elderly_applicants']:,} applicants aged "
        f"{ELDERLY_AGE}+ ({_pct(reg['share'])}) have an age contribution above "
        f"{reg['tolerance']:g}; the largest is {_fmt(reg['max_age_contribution'], 6)}. "
        f"Constraint used in training: {_esc(reg['method'])}.</p>"
    )

    add("<h2>Monotonicity of the past-due counts</h2>")
    add(
        f"<p>{_verdict(mono['passed'])} Check: {_esc(mono['check'])}; a violation is a "
        f"probability that falls by more than {mono['tolerance']:g}.</p>"
    )
    add(
        _table(
            ["feature", "violations", "share", "largest drop", "constrained in training"],
            [
                [
                    _esc(r["feature"]),
                    f"{r['violations']:,}",
                    _pct(r["share"]),
                    f"{r['largest_drop']:.5f}",
                    _fmt(r["constrained"]),
                ]
                for r in mono["features"]
            ],
        )
    )

    add(checks_html.disparate_impact(f))

    add("<h2>Model card</h2>")
    add(
        f"<h3>Intended use</h3><p>{_esc(card['intended_use'])}</p><h3>Limitations</h3><ul>"
        + "".join(f"<li>{_esc(x)}</li>" for x in card["limitations"])
        + "</ul>"
    )
    add("<div class='grid'><div><h3>Training data</h3>")
    add(_table(None, [[_esc(k), _fmt(v)] for k, v in card["training_data"].items()]))
    add("<h3>Hyperparameters</h3>")
    add(_table(None, [[_esc(k), _fmt(v)] for k, v in card["hyperparameters"].items()]))
    add("</div><div><h3>Held-out metrics at training</h3>")
    add(_table(None, [[_esc(k), _fmt(v)] for k, v in (card["training_metrics"] or {}).items()]))
    add("<h3>Library versions</h3>")
    add(_table(None, [[_esc(k), _esc(v)] for k, v in card["library_versions"].items()]))
    add("</div></div><h3>Training data by feature</h3>")
    stats = ("min", "p01", "median", "mean", "p99", "max")
    summary = card["feature_summary"]
    add(
        _table(
            ["feature", "missing", "min", "1st pct", "median", "mean", "99th pct", "max"],
            [
                [
                    _esc(name),
                    _pct(summary[name].get("missing_rate")),
                    *[_num(summary[name].get(k)) for k in stats],
                ]
                for name in f["model"]["features"]
                if name in summary
            ],
        )
    )
    add("<h3>Manifest (SHA-256)</h3>")
    add(
        _table(
            ["file", "sha256"],
            [[_esc(k), f"<code>{_esc(v)}</code>"] for k, v in card["manifest"].items()],
        )
    )
    add(f"<p>Model version {_esc(card['model_version'])}, created {_esc(m['created_at'])}.</p>")

    title = f"Model validation report {m['model_version']}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}'
        f"</title><style>{_CSS}</style></head><body><main>{''.join(parts)}</main></body></html>\n"
    )
