"""Charts of one explanation (matplotlib, the ``plot`` extra; imported only when used).

Figures are built with :class:`matplotlib.figure.Figure` directly, not pyplot:
no global state, no GUI backend, safe in servers and threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from ._config import install_hint
from ._exceptions import MissingDependencyError
from ._render import _value

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._models import Score

__all__ = ["plot_score"]

UP_COLOR: Final = "#d62728"  # raises the risk
DOWN_COLOR: Final = "#1f77b4"  # lowers the risk


def _figure_class() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(
            f"plotting needs matplotlib: {install_hint('credit-explainer', 'plot')}"
        ) from exc
    return Figure


def plot_score(
    score: Score,
    path: str | Path | None = None,
    *,
    kind: Literal["waterfall", "bar"] = "waterfall",
    max_features: int | None = None,
    title: str | None = None,
) -> Figure:
    """Waterfall from the base value to the probability, or ranked bars of SHAP values.

    Features beyond ``max_features`` are merged into one "other features" step.
    Saved as PNG (150 dpi) when ``path`` is given; the figure is returned either way.
    """
    if kind not in ("waterfall", "bar"):
        raise ValueError("kind must be 'waterfall' or 'bar'")
    figure_class = _figure_class()
    from matplotlib.ticker import PercentFormatter

    contributions = list(score.contributions)
    n = (
        len(contributions)
        if max_features is None
        else max(1, min(max_features, len(contributions)))
    )
    shown, hidden = contributions[:n], contributions[n:]
    names, target_label = score.data_schema.labels, score.data_schema.target_label
    labels = [f"{names.get(c.feature, c.feature)} = {_value(c.value)}" for c in shown]
    values = [c.shap_value for c in shown]
    if hidden:
        labels.append(f"{len(hidden)} other features")
        values.append(sum(c.shap_value for c in hidden))
    # Largest at the top: draw bottom-up from the smallest.
    labels.reverse()
    values.reverse()

    fig = figure_class(figsize=(9.0, 0.45 * len(values) + 1.8), layout="constrained")
    ax = fig.add_subplot()
    colors = [UP_COLOR if v > 0 else DOWN_COLOR for v in values]
    ys = list(range(len(values)))
    if kind == "waterfall":
        starts: list[float] = []
        x = score.base_value
        for v in values:
            starts.append(x)
            x += v
        ax.barh(ys, values, left=starts, color=colors, height=0.6)
        span = max(abs(v) for v in values) or 1.0
        for y, start, v in zip(ys, starts, values, strict=True):
            end = start + v
            # The value beside the bar's far end: right of a rise, left of a fall.
            ax.text(
                end + (0.01 if v >= 0 else -0.01) * span,
                y,
                f"{v:+.4f}",
                va="center",
                ha="left" if v >= 0 else "right",
                fontsize=8,
            )
        # Both lines labelled above the plot, each on the side away from the other.
        left, right = sorted([(score.base_value, "base"), (score.probability, "prediction")])
        for (x, which), align in ((left, "right"), (right, "left")):
            base = which == "base"
            ax.axvline(
                x, color="grey" if base else "black", linestyle="--" if base else "-", lw=0.8
            )
            ax.text(
                x,
                1.01,
                f"base value {x:.1%} (average applicant)" if base else f"prediction {x:.1%}",
                transform=ax.get_xaxis_transform(),
                ha=align if left[0] != right[0] else "center",
                va="bottom",
                fontsize=8,
                color="grey" if base else "black",
            )
        ax.set_xlabel(f"probability of {target_label}")
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        lo = min(
            [
                score.base_value,
                score.probability,
                *starts,
                *(s + v for s, v in zip(starts, values, strict=True)),
            ]
        )
        hi = max(
            [
                score.base_value,
                score.probability,
                *starts,
                *(s + v for s, v in zip(starts, values, strict=True)),
            ]
        )
        pad = 0.15 * (hi - lo or 1.0)
        ax.set_xlim(lo - pad, hi + pad)
    else:
        ax.barh(ys, values, color=colors, height=0.6)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel(f"contribution to the probability of {target_label}")
    ax.set_yticks(ys, labels, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(
        title
        or f"Why the probability of {target_label} is {score.probability:.1%}\n"
        "red raises it, blue lowers it",
        fontsize=10,
        pad=18 if kind == "waterfall" else 6,
    )
    if path is not None:
        fig.savefig(Path(path), format="png", dpi=150)
    return fig
