"""A file made for another data set's model fails in one short line, saying so (German credit's
31 columns against the built-in model gave 31 problems on one line), in score and in train."""

from __future__ import annotations

from pathlib import Path

import pytest
from credit_explainer import cli
from credit_explainer.scoring_cli import SourceError, check_header
from credit_schema import BUILTIN, FEATURES

OTHER = ["status_of_existing_checking_account", "duration_in_month", "purpose", "creditability"]


def test_score_says_the_file_is_not_for_this_apis_model() -> None:
    with pytest.raises(SourceError) as caught:
        check_header(OTHER, BUILTIN)
    assert str(caught.value) == (
        "none of its columns is a feature of the API's schema 'give-me-some-credit' "
        "(RevolvingUtilizationOfUnsecuredLines, age, NumberOfTime30-59DaysPastDueNotWorse, ...): "
        "is this the API of the model the file is for?"
    )


def test_score_lists_five_header_problems_and_counts_the_rest() -> None:
    with pytest.raises(SourceError) as caught:
        check_header([f.lower() for f in FEATURES], BUILTIN)  # each one a "did you mean"
    message = str(caught.value)
    assert message.startswith(
        "the header does not name the features: revolvingutilizationofunsecuredlines: unknown "
        "field; did you mean 'RevolvingUtilizationOfUnsecuredLines'?; "
    )
    assert message.count("did you mean") == 5 and message.endswith("; and 4 more")  # age is age


def test_train_without_schema_on_another_data_set_names_the_schema_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("numpy")
    data = tmp_path / "loans.csv"
    data.write_text(",".join(OTHER) + "\nA11,6,radio,good\nA12,48,car,bad\n")
    assert cli.main(["train", "--data", str(data), "--model-dir", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err == (
        f"error: {data}: none of its columns is a feature of the schema 'give-me-some-credit' "
        "(for a lender's own data: --schema FILE, drafted by credit-explainer schema infer)\n"
    )
