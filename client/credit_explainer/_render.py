"""A readable text rendering of one explanation, for terminals and logs of the caller's own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._models import Score

__all__ = ["render_text"]

_BAR_WIDTH: Final = 24
#: The widest value shown: a longer category text is cut, its end marked.
_VALUE_WIDTH: Final = 24
_EIGHTHS: Final = " ▏▎▍▌▋▊▉"


def _bar(fraction: float, *, ascii: bool) -> str:
    cells = max(0.0, min(1.0, fraction)) * _BAR_WIDTH
    full = int(cells)
    if ascii:
        return "#" * full
    rest = int((cells - full) * 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


def _value(value: float | str | None) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str):  # a category
        return value
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def _shown_value(value: float | str | None, ascii: bool) -> str:
    text = _value(value)
    if len(text) <= _VALUE_WIDTH:
        return text
    return text[: _VALUE_WIDTH - 3] + "..." if ascii else text[: _VALUE_WIDTH - 1] + "…"


def render_text(score: Score, *, max_features: int | None = None, ascii: bool = False) -> str:
    """The score, then one line per contribution (largest first) with a bar, then the sum.

    ::

        probability of default: 31.21%  (base value 6.67%, ...)
          feature                value      SHAP
          late_payments_12m          2   +0.1830  ▲ ███████████████
          ...
    """
    shown = score.contributions if max_features is None else score.contributions[:max_features]
    width = max([len("feature"), *(len(c.feature) for c in shown)])
    values = [_shown_value(c.value, ascii) for c in shown]
    vwidth = max([10, *map(len, values)])  # numbers keep their 10 columns
    biggest = max([abs(c.shap_value) for c in score.contributions] + [1e-300])
    up, down = ("^", "v") if ascii else ("▲", "▼")
    head = f"probability of {score.data_schema.target_label}: {score.probability:.2%}  (base value {score.base_value:.2%}"
    if score.decision:
        head += f", decision {score.decision}"
    head += f", model {score.model_version[:12]}, request {score.request_id})"
    lines = [head, f"  {'feature':<{width}}  {'value':>{vwidth}}  {'SHAP':>9}"]
    for c, value in zip(shown, values, strict=True):
        arrow = up if c.shap_value > 0 else down if c.shap_value < 0 else " "
        lines.append(
            f"  {c.feature:<{width}}  {value:>{vwidth}}  {c.shap_value:+9.4f}  "
            f"{arrow} {_bar(abs(c.shap_value) / biggest, ascii=ascii)}".rstrip()
        )
    hidden = score.contributions[len(shown) :]
    if hidden:
        rest = sum(c.shap_value for c in hidden)
        lines.append(f"  {f'({len(hidden)} more)':<{width}}  {'':>{vwidth}}  {rest:+9.4f}")
    total = sum(c.shap_value for c in score.contributions)
    lines.append(
        f"  {'base value + contributions':<{width}}  {'':>{vwidth}}  "
        f"{score.base_value:.4f} {total:+.4f} = {score.base_value + total:.4f}"
    )
    return "\n".join(lines)
