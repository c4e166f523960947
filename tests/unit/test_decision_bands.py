"""Decision bands: parsed once, and carried to the model in InvokeEndpoint's CustomAttributes."""

from __future__ import annotations

import pytest
from credit_schema.decisions import DecisionBands


def test_bands_decide_by_exclusive_upper_bounds() -> None:
    bands = DecisionBands.parse("approve:0.08, review:0.2 ,decline")
    decided = [bands.decide(p) for p in (0.0, 0.0799, 0.08, 0.19999, 0.2, 1.0)]
    assert decided == ["approve", "approve", "review", "review", "decline", "decline"]


@pytest.mark.parametrize(
    "text", ["approve:0.08,review:0.2,decline", "a:0.1,b", "low:0.30000000000000004,high"]
)
def test_bands_travel_in_custom_attributes_and_come_back_the_same(text: str) -> None:
    bands = DecisionBands.parse(text)
    header = bands.custom_attributes()
    assert header == f"decision_thresholds={text}"
    assert DecisionBands.from_custom_attributes(f"trace-id=abc;{header}; x=1") == bands


def test_custom_attributes_without_bands_give_none_and_bad_bands_raise() -> None:
    assert DecisionBands.from_custom_attributes(None) is None
    assert DecisionBands.from_custom_attributes("trace-id=abc; other") is None
    with pytest.raises(ValueError, match="increasing"):
        DecisionBands.from_custom_attributes("decision_thresholds=a:0.5,b:0.1,c")


@pytest.mark.parametrize("text", ["approuvé:0.1,refusé", "a;b:0.1,c", "a:0.1," + "x" * 1100])
def test_bands_that_cannot_be_a_custom_attribute_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"plain ASCII|runs over"):
        DecisionBands.parse(text).custom_attributes()
