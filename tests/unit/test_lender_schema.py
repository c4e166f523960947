"""Any lender's data: the schema language, schema infer, train --schema, bad schemas and bad data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from credit_model.data import DataError, encode_frame, load_csv, split_xy
from credit_model.infer import draft, review_marks
from credit_model.synth import OTHER_ID, OTHER_PROHIBITED, OTHER_TARGET, generate_other
from credit_schema import (
    BUILTIN,
    SchemaError,
    compile_schema,
    dump_schema,
    load_schema,
    parse_schema,
    validate_records,
)
from credit_schema.errors import ApplicantValidationError

CLI = [sys.executable, "-m", "credit_explainer"]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def _other_schema() -> Any:
    frame = generate_other(600, seed=3)
    schema, _ = draft(
        frame.astype(str).replace("nan", np.nan),
        target=OTHER_TARGET,
        positive="default",
        id_columns=[OTHER_ID],
        prohibited=[OTHER_PROHIBITED],
        name="other-lender",
    )
    return schema


def _good_document() -> dict[str, Any]:
    return json.loads(json.dumps(_other_schema().model_dump(mode="json")))


@pytest.mark.parametrize(
    ("edit", "where", "words"),
    [
        (lambda d: d["features"][0].update(kind="text"), "features[0]", "kind"),
        (lambda d: d["features"][0].update(categories=[]), "features[0]", "at least one category"),
        (
            lambda d: d["target"].update(name=d["features"][1]["name"]),
            "",
            "target",
        ),
        (
            lambda d: d["prohibited"][0].update(name=d["features"][2]["name"]),
            "",
            "prohibited",
        ),
        (lambda d: d["features"].append(dict(d["features"][0])), "features", "listed twice"),
    ],
    ids=["unknown kind", "empty categories", "target is a feature", "prohibited is a feature", "twice"],
)
def test_a_bad_schema_file_gets_one_error_naming_the_field(
    tmp_path: Path, edit: Any, where: str, words: str
) -> None:
    document = _good_document()
    assert document["features"][0]["kind"] == "category"  # the edits below rely on it
    edit(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(SchemaError) as caught:
        load_schema(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {where}") and words in message and "\n" not in message
    done = _run("schema", "check", str(path), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_json_and_yaml_read_back_the_same(tmp_path: Path) -> None:
    schema = _other_schema()
    for name in ("s.json", "s.yaml"):
        dump_schema(schema, tmp_path / name)
        assert load_schema(tmp_path / name) == schema
    assert load_schema(tmp_path / "s.json") == load_schema(tmp_path / "s.yaml")


def test_yaml_without_pyyaml_is_one_error_naming_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump_schema(_other_schema(), tmp_path / "s.yaml")
    monkeypatch.setitem(sys.modules, "yaml", None)  # as in an install without PyYAML
    for call in (
        lambda: load_schema(tmp_path / "s.yaml"),
        lambda: dump_schema(_other_schema(), tmp_path / "t.yaml"),
    ):
        with pytest.raises(SchemaError, match=r"YAML needs PyYAML \(pip install pyyaml\)"):
            call()
    assert not (tmp_path / "t.yaml").exists()


def test_the_built_in_schema_is_a_file_and_validates_as_before() -> None:
    assert BUILTIN.name == "give-me-some-credit" and len(BUILTIN.features) == 10
    assert BUILTIN.age_feature == "age" and BUILTIN.target == "SeriousDlqin2yrs"
    with pytest.raises(ApplicantValidationError) as caught:
        validate_records([{**dict.fromkeys(BUILTIN.features, 1), "Age": 40}])
    assert any("did you mean 'age'" in d.message for d in caught.value.details)


def test_infer_reads_kinds_categories_nulls_ids_and_marks_texts_for_review() -> None:
    schema = compile_schema(_other_schema())
    kinds = {f.name: f.kind.value for f in schema.schema.features}
    assert kinds["housing"] == "category" and kinds["duration_months"] == "integer"
    assert kinds["loan_amount"] == "number" and "loan_amount" in schema.nullable
    assert schema.feature["housing"].categories == ["own", "rent", "with_family"]
    assert schema.id_columns == (OTHER_ID,) and schema.prohibited == (OTHER_PROHIBITED,)
    assert OTHER_PROHIBITED not in schema.features and OTHER_ID not in schema.features
    assert schema.age_feature == "applicant_age"
    assert review_marks(schema.schema)  # descriptions and reasons await a person


def test_an_id_column_is_carried_and_a_prohibited_basis_is_dropped() -> None:
    schema = compile_schema(_other_schema())
    raw = generate_other(3, seed=9).to_dict(orient="records")
    records = [{k: (None if v != v else v) for k, v in r.items() if k != OTHER_TARGET} for r in raw]
    applicants = validate_records(records, schema)
    assert [a.ids() for a in applicants] == [{OTHER_ID: r[OTHER_ID]} for r in raw]
    assert all(OTHER_PROHIBITED not in a.to_features() for a in applicants)
    row = applicants[0].to_row()
    j = schema.features.index("housing")
    assert row[j] == schema.codes["housing"][raw[0]["housing"]]
    assert schema.wire_values(row)[j] == raw[0]["housing"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"housing": "castle"}, "housing", "Input should be"),
        ({"applicant_aeg": 40}, "applicant_aeg", "did you mean 'applicant_age'"),
        ({OTHER_ID: "=HYPERLINK(1)"}, OTHER_ID, "pattern"),
    ],
)
def test_bad_applicants_are_refused_naming_applicant_and_field(
    change: dict[str, Any], field: str, words: str
) -> None:
    schema = compile_schema(_other_schema())
    raw = generate_other(2, seed=9).drop(columns=[OTHER_TARGET]).to_dict(orient="records")
    record = {k: (None if v != v else v) for k, v in raw[1].items()}
    record.update(change)
    with pytest.raises(ApplicantValidationError) as caught:
        validate_records([raw[0] | {"loan_amount": 1.0}, record], schema)
    details = [d for d in caught.value.details if d.field == field]
    assert details and details[0].applicant == 1 and words in details[0].message


def test_a_missing_feature_is_refused() -> None:
    schema = compile_schema(_other_schema())
    raw = generate_other(1, seed=9).drop(columns=[OTHER_TARGET, "housing"]).iloc[0].to_dict()
    record = {k: (None if v != v else v) for k, v in raw.items()}
    with pytest.raises(ApplicantValidationError) as caught:
        validate_records([record], schema)
    assert [(d.applicant, d.field, d.type) for d in caught.value.details] == [(0, "housing", "missing")]


def test_bad_data_gets_one_clear_error(tmp_path: Path) -> None:
    schema = compile_schema(_other_schema())
    frame = generate_other(50, seed=4)
    unknown_column = frame.assign(branch="north")
    with pytest.raises(DataError, match="does not know: branch"):
        encode_frame(unknown_column, schema, "f.csv")
    unknown_category = frame.copy()
    unknown_category.loc[7, "housing"] = "castle"
    with pytest.raises(DataError, match=r"row 8, column housing: category 'castle'"):
        encode_frame(unknown_category, schema, "f.csv")
    # and through the command: one error line, exit 2
    dump_schema(schema.schema, tmp_path / "schema.json")
    unknown_category.to_csv(tmp_path / "data.csv", index=False)
    done = _run(
        "train", "--data", "data.csv", "--schema", "schema.json", "--model-dir", "m", cwd=tmp_path
    )
    assert done.returncode == 2 and "error: " in done.stderr and "castle" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "m").exists()


def test_load_csv_encodes_categories_and_the_text_target(tmp_path: Path) -> None:
    schema = compile_schema(_other_schema())
    frame = generate_other(400, seed=5)
    frame.to_csv(tmp_path / "d.csv", index=False)
    data = load_csv(tmp_path / "d.csv", schema)
    X, y = split_xy(data, schema)
    assert X.shape == (400, len(schema.features))
    assert y.tolist() == (frame[OTHER_TARGET] == "default").astype(int).tolist()
    j = schema.features.index("checking_account")
    codes = schema.codes["checking_account"]
    assert X[:, j].tolist() == [float(codes[v]) for v in frame["checking_account"]]
    assert data[OTHER_ID].tolist() == frame[OTHER_ID].tolist()


def test_parse_schema_refuses_an_id_that_is_also_prohibited() -> None:
    document = _good_document()
    document["id_columns"] = [document["prohibited"][0]["name"]]
    with pytest.raises(SchemaError, match="two roles"):
        parse_schema(document)


def test_a_training_job_reads_the_schema_its_train_channel_carries(tmp_path: Path) -> None:
    from credit_model.train import main
    from credit_schema import SCHEMA_FILE

    channel = tmp_path / "train"
    channel.mkdir()
    schema = _other_schema()
    dump_schema(schema, channel / SCHEMA_FILE)
    generate_other(800, seed=6).to_csv(channel / "loans.csv", index=False)
    assert main(["--train", str(channel), "--model-dir", str(tmp_path / "model"), "--n_jobs", "1"]) == 0
    assert load_schema(tmp_path / "model" / SCHEMA_FILE) == schema


def test_outcomes_are_read_by_the_schemas_target_rule(tmp_path: Path) -> None:
    from credit_explainer_tools.outcomes import read_outcomes

    target = _other_schema().target  # loan_status, risk label "default"
    path = tmp_path / "outcomes.csv"
    path.write_text("request_id,index,loan_status\nr1,0,default\nr1,1,repaid\n")
    assert read_outcomes(path, target) == {("r1", 0): 1, ("r1", 1): 0}
    assert BUILTIN.schema.target.outcome("1.0") == 1 and BUILTIN.schema.target.outcome("2") is None
    path.write_text("request_id,index,SeriousDlqin2yrs\nr1,0,yes\n")
    with pytest.raises(ValueError, match="line 2: SeriousDlqin2yrs must be 0 or 1"):
        read_outcomes(path, BUILTIN.schema.target)


def test_demo_refuses_a_model_of_another_schema(tmp_path: Path) -> None:
    from credit_model.train import Hyperparameters, train

    schema = compile_schema(_other_schema())
    model = tmp_path / "m"
    train(encode_frame(generate_other(600, seed=8), schema, "synthetic"), model, schema=schema,
          hyperparameters=Hyperparameters(n_estimators=5, n_jobs=1), log=lambda *_: None)
    done = _run("demo", "--model-dir", str(model), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
