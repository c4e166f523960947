"""The verdicts of :mod:`.checks` as HTML fragments of the validation report (tables only)."""

from __future__ import annotations

from typing import Any

from .html import _esc, _pct, _table, _verdict


def _interval(bounds: list[float]) -> str:
    return f"{bounds[0]:.4f}&ndash;{bounds[1]:.4f}"


def interval_label(discrimination: dict[str, Any]) -> str:
    iv = discrimination["intervals"]
    return f"{iv['confidence']:.0%} interval {iv['auc'][0]:.3f}-{iv['auc'][1]:.3f}"


def verdicts(figures: dict[str, Any]) -> str:
    """The list of checks at the top: which passed, which failed (what ``--strict`` exits on)."""
    rows = figures["verdicts"]
    failed = [r["check"] for r in rows if not r["passed"]]
    head = (
        f"<p class='fail'>{len(failed)} of {len(rows)} checks failed: "
        f"{_esc('; '.join(failed))}.</p>"
        if failed
        else f"<p class='pass'>All {len(rows)} checks passed.</p>"
    )
    return (
        "<h2>Checks</h2>"
        + head
        + _table(["check", "verdict"], [[_esc(r["check"]), _verdict(r["passed"])] for r in rows])
    )


def discrimination(figures: dict[str, Any]) -> str:
    """Bootstrap intervals, and the model beside the benchmark logistic regression."""
    d, iv, bench = (
        figures["discrimination"],
        figures["discrimination"]["intervals"],
        figures["benchmark"],
    )
    level = f"{iv['confidence']:.0%}"
    out = [
        f"<h3>Uncertainty</h3><p>{level} {_esc(iv['method'])} intervals over {iv['resamples']:,} "
        "resamples of the rows:</p>",
        _table(
            ["figure", "value", f"{level} interval"],
            [
                [name, f"{d[key]:.4f}", _interval(iv[key])]
                for name, key in (("ROC AUC", "auc"), ("Gini", "gini"), ("KS", "ks"))
            ],
        ),
        "<h3>Benchmark</h3>",
    ]
    if not bench["available"]:
        out.append(f"<p>Not computed: {_esc(bench['why'])}.</p>")
        return "".join(out)
    model, lr = bench["model"], bench["logistic_regression"]
    out.append(
        f"<p>A {_esc(bench['benchmark'])}, fitted on the model's {bench['train_rows']:,} training "
        "rows and scored on these rows:</p>"
    )
    out.append(
        _table(
            ["figure", "model", "benchmark", "model - benchmark"],
            [
                [name, f"{model[key]:.4f}", f"{lr[key]:.4f}", f"{model[key] - lr[key]:+.4f}"]
                for name, key in (
                    ("ROC AUC", "auc"),
                    ("Gini", "gini"),
                    ("KS", "ks"),
                    ("Brier score", "brier"),
                )
            ],
        )
    )
    return "".join(out)


def calibration(figures: dict[str, Any]) -> str:
    """Hosmer-Lemeshow and the binomial test per predicted decile, with the verdict."""
    t = figures["calibration_test"]
    hl = t["hosmer_lemeshow"]
    return (
        f"<h3>Calibration tests</h3><p>{_verdict(t['passed'])} Hosmer-Lemeshow chi-square "
        f"{hl['statistic']:.2f} on {hl['df']} degrees of freedom, p = {hl['p_value']:.4f} "
        f"(passes at p &ge; {t['alpha']:g}); exact two-sided binomial test of each predicted "
        f"decile's defaults against its mean predicted rate, flagged at p &lt; "
        f"{t['decile_alpha']:g} ({t['alpha']:g} over the deciles).</p>"
        + _table(
            ["predicted decile", "applicants", "defaults", "expected", "binomial p", "flagged"],
            [
                [
                    str(r["decile"]),
                    f"{r['count']:,}",
                    f"{r['defaults']:,}",
                    f"{r['expected_defaults']:.1f}",
                    f"{r['p_value']:.4f}",
                    "<span class='fail'>yes</span>" if r["flagged"] else "no",
                ]
                for r in t["deciles"]
            ],
        )
    )


def disparate_impact(figures: dict[str, Any]) -> str:
    """Per prohibited-basis attribute: approval rates, adverse impact ratios, contributions."""
    di = figures["disparate_impact"]
    out = ["<h2>Disparate impact</h2>"]
    if not di["attributes"]:
        return (
            out[0] + "<p>No prohibited-basis attribute given (<code>report --prohibited "
            "COLUMN</code>: a column of the data that is never a model input).</p>"
        )
    out.append(
        f"<p>Approval: {_esc(di['approval'])}. A group whose approval rate is under "
        f"{di['threshold_ratio']:g} of the most favoured group's is flagged (the four-fifths "
        "rule). Mean contributions show the features through which a group's risk differs "
        "(proxies).</p>"
    )
    for s in di["attributes"]:
        shown = s["widest_contribution_gaps"]
        out.append(
            f"<h3>{_esc(s['attribute'])} {_verdict(s['passed'])}</h3>"
            + _table(
                ["group", "applicants", "approval rate", "adverse impact ratio", "flagged"]
                + [f"mean SHAP: {f}" for f in shown],
                [
                    [
                        _esc(g["group"]),
                        f"{g['count']:,}",
                        _pct(g["approval_rate"]),
                        "&ndash;"
                        if g["adverse_impact_ratio"] is None
                        else f"{g['adverse_impact_ratio']:.3f}",
                        "<span class='fail'>yes</span>" if g["flagged"] else "no",
                    ]
                    + [f"{g['mean_contributions'][f]:+.4f}" for f in shown]
                    for g in s["groups"]
                ],
            )
        )
    return "".join(out)
