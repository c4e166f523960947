"""The monitoring report (:func:`credit_model.monitor.monitor`) as one self-contained HTML file.

Written for a risk officer: the verdict first, then what moved, then the evidence as plots
(base64 PNG, no external files). matplotlib (the ``plot`` extra) is imported only here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..drift import PSI_BANDS
from .html import (
    _CSS,
    _LEVEL_COLOURS,
    _card,
    _esc,
    _fmt,
    _img,
    _matplotlib,
    _pct,
    _table,
    _tick,
    _wrapped,
)

_BASELINE, _NOW = "#9aa5b1", "#1f5fbf"
_VERDICTS = {
    "ok": "No drift beyond the thresholds",
    "watch": "Watch: some figures crossed a watch threshold",
    "act": "Act: the applicants or the model's reasoning moved beyond the act threshold",
}


def _paired(axes: Any, labels: list[str], then: list[float], now: list[float]) -> None:
    x = np.arange(len(labels))
    axes.bar(x - 0.2, np.multiply(then, 100), 0.4, color=_BASELINE, label="training")
    axes.bar(x + 0.2, np.multiply(now, 100), 0.4, color=_NOW, label="now")
    axes.set_xticks(x, [_tick(label) for label in labels], rotation=60, ha="right", fontsize=7)
    axes.tick_params(axis="y", labelsize=7)


def _trend(report: dict[str, Any], figure: Any) -> str:
    """``--window``: PSI, mean score, estimated and realised performance per period, as plots."""
    trend = report.get("trend")
    if not trend:
        return ""
    rows, t = trend["periods"], report["thresholds"]
    labels = [r["period"] for r in rows]
    x = np.arange(len(rows))
    estimated = {r["period"]: r for r in (report.get("estimated") or {}).get("periods", [])}
    realised = {r["period"]: r for r in (report.get("outcomes") or {}).get("periods", [])}

    def performance(a: Any, key: str, interval: str, title: str) -> None:
        est = [estimated.get(p, {}).get(key) for p in labels]
        if any(v is not None for v in est):
            bands = [estimated.get(p, {}).get(interval) or [np.nan, np.nan] for p in labels]
            values = [np.nan if v is None else v for v in est]
            a.plot(x, values, color=_BASELINE, marker="o", label="estimated")
            a.fill_between(x, [b[0] for b in bands], [b[1] for b in bands], color=_BASELINE,
                           alpha=0.3, label="95% interval")  # fmt: skip
        real = [realised.get(p, {}).get(key) for p in labels]
        if any(v is not None for v in real):
            a.plot(x, [np.nan if v is None else v for v in real], color=_NOW, marker="s", ls="",
                   label="realised")  # fmt: skip
        a.set_title(title, fontsize=9)
        a.legend(fontsize=7)

    def draw(fig: Any) -> None:
        psi, score, auc, rate = fig.subplots(2, 2).ravel()
        psi.plot(x, [r["max_feature_psi"] for r in rows], color=_NOW, marker="o",
                 label="largest feature PSI")  # fmt: skip
        psi.plot(x, [r["score_psi"] for r in rows], color="#555", marker="^", label="score PSI")
        for level in ("watch", "act"):
            psi.axhline(t[f"psi_{level}"], color=_LEVEL_COLOURS[level], ls="--", lw=0.8)
        psi.set_title("Population stability", fontsize=9)
        psi.legend(fontsize=7)
        score.plot(x, [r["mean_score"] for r in rows], color=_NOW, marker="o")
        score.set_title("Mean score (probability of default)", fontsize=9)
        performance(auc, "auc", "auc_interval", "AUC")
        performance(rate, "default_rate", "default_rate_interval", "Default rate")
        for a in (psi, score, auc, rate):
            a.set_xticks(x, labels, fontsize=7)
            a.tick_params(axis="y", labelsize=7)

    return (
        f"<h2>Trends by {_esc(trend['window'])}</h2>"
        + _img(figure, draw, (11, 7), f"PSI, score and performance by {trend['window']}")
        + _table(
            ["period", "applicants", "largest feature PSI", "score PSI", "mean score"],
            [[_esc(r["period"]), f"{r['applicants']:,}", _fmt(r["max_feature_psi"]),
              _fmt(r["score_psi"]), _fmt(r["mean_score"])] for r in rows],
        )
    )  # fmt: skip


def _estimated(report: dict[str, Any]) -> str:
    """Estimated performance by period, beside the realised figures where outcomes exist."""
    estimated = report.get("estimated")
    if not estimated:
        return ""
    realised = {m["period"]: m for m in (report.get("outcomes") or {}).get("periods", [])}

    def interval(value: float | None, bounds: list[float] | None, pct: bool) -> str:
        if value is None or bounds is None:
            return "&ndash;"
        show = _pct if pct else _fmt
        return f"{show(value)} ({show(bounds[0])}&ndash;{show(bounds[1])})"

    rows = []
    for m in estimated["periods"]:
        r = realised.get(m["period"], {})
        rows.append(
            [_esc(m["period"]), f"{m['applicants']:,}",
             interval(m["default_rate"], m["default_rate_interval"], True),
             _pct(r.get("default_rate")), interval(m["auc"], m["auc_interval"], False),
             _fmt(r.get("auc"))]
        )  # fmt: skip
    return (
        f"<h2>Estimated performance</h2><p>Before outcomes arrive: {_esc(estimated['method'])}; "
        "95% intervals of the sampling error. A realised figure outside its interval is a "
        "change the scores alone do not explain.</p>"
        + _table(
            ["period", "applicants", "estimated default rate", "realised", "estimated AUC",
             "realised"],
            rows,
        )
    )  # fmt: skip


def _outcomes(report: dict[str, Any]) -> str:
    """Realised figures by period of decision (``--outcomes``), or nothing."""
    figures = report.get("outcomes")
    if not figures:
        return ""
    reference = figures["reference_auc"]
    return (
        "<h2>Outcomes</h2><p>Observed outcomes joined to the recorded decisions"
        + (f"; training's held-out AUC {reference:.4f}" if reference is not None else "")
        + ".</p>"
        + _table(
            ["period", "applicants", "defaults", "default rate", "mean predicted", "binomial p",
             "AUC", "KS", "Brier"],
            [
                [_esc(m["period"]), f"{m['applicants']:,}", f"{m['defaults']:,}",
                 _pct(m["default_rate"]), _pct(m["mean_predicted"]), _fmt(m["binomial_p"]),
                 _fmt(m["auc"]), _fmt(m["ks"]), _fmt(m["brier"])]
                for m in figures["periods"]
            ],
        )
    )  # fmt: skip


def render(report: dict[str, Any]) -> str:
    """The whole page for ``report`` (the dict ``credit-explainer monitor --json`` writes)."""
    figure, _ = _matplotlib()
    t = report["thresholds"]
    features = report["features"]
    score = report["score"]
    attribution = report["attribution"]
    reasons = report["reasons"]

    def psi_bars(fig: Any) -> None:
        names = [f["feature"] for f in features] + ["score"]
        values = [f["psi"] for f in features] + [score["psi"]]
        levels = [f["level"] for f in features] + [score["level"]]
        a = fig.subplots()
        a.barh(names[::-1], values[::-1], color=[_LEVEL_COLOURS[v] for v in levels[::-1]])
        a.set_xlim(0, max(1.2 * t["psi_act"], 1.1 * max(values)))
        for x, label in ((t["psi_watch"], "watch"), (t["psi_act"], "act")):
            a.axvline(x, color="#555", ls="--", lw=0.8)
            a.text(
                x,
                len(names) - (0.4 if label == "watch" else 1.0),
                f" {label}",
                fontsize=8,
                color="#555",
            )
        a.set(xlabel="PSI against the training baseline", title="Population stability")

    panels = [(f["feature"], f) for f in features] + [("score (probability)", score)]
    rows = -(-len(panels) // 3)  # three panels a row, as many rows as the schema needs
    bars = max(4.6, 1.4 + 0.22 * len(panels))  # a bar chart's height: one bar a feature

    def distributions(fig: Any) -> None:
        axes = fig.subplots(rows, 3, squeeze=False).ravel()
        for a, (name, panel) in zip(axes, panels, strict=False):
            _paired(a, panel["bins"], panel["baseline_shares"],
                    panel["current_shares"])  # fmt: skip
            level = panel.get("level", "ok")
            a.set_title(f"{_wrapped(name)}\nPSI {panel['psi']:.3f}", fontsize=8,
                        color=_LEVEL_COLOURS[level])  # fmt: skip
        axes[0].legend(fontsize=7)
        for a in axes[len(panels) :]:
            a.set_visible(False)
        fig.supylabel("% of applicants in the training bin", fontsize=8)

    def attributions(fig: Any) -> None:
        rows = sorted(attribution["features"], key=lambda r: r["baseline_rank"])[::-1]
        y = np.arange(len(rows))
        a = fig.subplots()
        a.barh(y + 0.2, [r["baseline_mean_abs_shap"] for r in rows], 0.4, color=_BASELINE,
               label="training")  # fmt: skip
        a.barh(y - 0.2, [r["mean_abs_shap"] for r in rows], 0.4, color=_NOW, label="now")
        a.set_yticks(y, [f"{r['feature']} ({r['baseline_rank']}->{r['rank']})" for r in rows],
                     fontsize=8)  # fmt: skip
        a.set(xlabel="mean |SHAP| (contribution to the probability)",
              title=f"Attribution drift: NDCG {attribution['ndcg']:.3f}")  # fmt: skip
        a.legend(fontsize=8)

    def reason_shares(fig: Any) -> None:
        rows = sorted(reasons["features"], key=lambda r: r["baseline_share"])
        y = np.arange(len(rows))
        a = fig.subplots()
        a.barh(y + 0.2, [100 * r["baseline_share"] for r in rows], 0.4, color=_BASELINE,
               label="training")  # fmt: skip
        a.barh(y - 0.2, [100 * r["share"] for r in rows], 0.4, color=_NOW, label="now")
        a.set_yticks(y, [r["feature"] for r in rows], fontsize=8)
        a.set(xlabel="% of high-risk applicants given it as a principal reason",
              title="Principal reasons among high-risk applicants")  # fmt: skip
        a.legend(fontsize=8)

    def level(text: str) -> str:
        return f'<b style="color:{_LEVEL_COLOURS[text]}">{_esc(text)}</b>'

    alerts = "".join(f"<li>{level(a['level'])} {_esc(a['message'])}</li>" for a in report["alerts"])
    window = report.get("window") or {}
    table = _table(
        ["feature", "PSI", "level", "missing now", "missing at training", "outside training range",
         "training range"],
        [
            [_esc(f["feature"]), _fmt(f["psi"]), level(f["level"]), _pct(f["missing_rate"]),
             _pct(f["baseline_missing_rate"]), _pct(f["out_of_range_share"]),
             " to ".join(f"{v:,.4g}" for v in f["baseline_range"])]
            for f in features
        ],
    )  # fmt: skip
    bands = ", ".join(
        f"{label} below {bound:g}" if bound != float("inf") else f"{label} above"
        for bound, label in PSI_BANDS
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model monitoring: {_esc(report["model_version"])}</title>
<style>{_CSS}</style></head><body><main>
<h1>Model monitoring</h1>
<p class="sub">Model {_esc(report["model_version"])}; decisions from {_esc(window.get("first"))}
to {_esc(window.get("last"))}; capture {_esc(report.get("capture"))}</p>
<h2 style="color:{_LEVEL_COLOURS[report["status"]]}">{_esc(_VERDICTS[report["status"]])}</h2>
<div class="cards">{_card(str(report["applicants"]), "applicants")}
{_card(str(report.get("decisions", "")), "decisions (requests)")}
{_card(f"{score['psi']:.3f}", "score PSI")}
{_card(f"{attribution['ndcg']:.3f}", "attribution NDCG")}
{_card(str(reasons["high_risk_applicants"]), "high-risk applicants")}</div>
<h2>Alerts</h2>
{f"<ul>{alerts}</ul>" if alerts else "<p>None.</p>"}
{_trend(report, figure)}
{_estimated(report)}
{_outcomes(report)}
<h2>Population stability</h2>
{_img(figure, psi_bars, (8, bars), "PSI per feature and of the score")}
{table}
<h2>Distributions: training against now</h2>
<p>Share of applicants in each training bin (missing values excluded).</p>
{_img(figure, distributions, (11, 3 * rows), "distributions, training against now")}
<h2>Attribution drift</h2>
<p>How much each feature moves the probability on average, at training and now; ranks in
brackets. NDCG compares the order (1.0: the model leans on the features in the same order).</p>
{_img(figure, attributions, (8, bars), "mean absolute SHAP, training against now")}
<h2>Reasons among high-risk applicants</h2>
<p>Applicants with a probability of {reasons["high_risk_threshold"]:.4f} or more (the top tenth of
the training applicants): {reasons["high_risk_applicants"]} now.</p>
{_img(figure, reason_shares, (8, bars), "principal reasons, training against now")}
<h2>How to read this</h2>
<ul><li>PSI (population stability index) compares the share of applicants in each training bin:
{_esc(bands)}. Thresholds here: watch at {t["psi_watch"]:g}, act at {t["psi_act"]:g}.</li>
<li>A share outside the training range at or above {t["out_of_range_watch"]:g} is flagged: the
model has never seen such values.</li>
<li>Attribution NDCG below {t["ndcg_watch"]:g} (SageMaker Clarify's default) is flagged.</li>
<li>A few hundred applicants or more make PSI meaningful: with k bins, applicants drawn
exactly like the training data give about (k - 1) / n.</li></ul>
</main></body></html>
"""
