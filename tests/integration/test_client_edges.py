"""What a new user hits at the edges (issue 16), through the real entry points.

The SDK and the ``credit-explainer`` CLI against the local stack (the real model
server, the real scoring handler behind the local API Gateway), and the HTTP API
itself with httpx.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from credit_explainer import (
    AuthenticationError,
    CreditExplainerClient,
    CreditExplainerError,
    Failure,
    ReasonCodes,
    Score,
    UsageError,
)
from credit_explainer.cli import main as cli_main
from credit_explainer_tools.local import LocalStack
from credit_schema import FEATURES, TARGET

synth = pytest.importorskip("credit_model.synth")

KEY = "edges-key"


@pytest.fixture(scope="module")
def stack(synthetic_model_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(synthetic_model_dir, api_key=KEY, log_level="ERROR") as running:
        yield running


@pytest.fixture
def client(stack: LocalStack) -> Iterator[CreditExplainerClient]:
    with CreditExplainerClient(stack.api_url, api_key=KEY) as c:
        yield c


@pytest.fixture
def http(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, headers={"x-api-key": KEY}) as c:
        yield c


@pytest.fixture(scope="module")
def applicants() -> list[dict[str, Any]]:
    frame = synth.generate(12, seed=11)[list(FEATURES)]
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def cell(v: Any) -> str:
    return "" if v is None else str(v)


# -- the CLI: every kind of broken row at once -------------------------------------------------


def test_cli_scores_every_good_row_of_a_mixed_file_and_the_corrected_rejects(
    stack: LocalStack,
    client: CreditExplainerClient,
    applicants: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The Kaggle layout: unnamed index column, the target, the ten features.
    rows = [[str(i + 1), "0", *(cell(a[f]) for f in FEATURES)] for i, a in enumerate(applicants)]
    age, debt = 2 + FEATURES.index("age"), 2 + FEATURES.index("DebtRatio")
    broken = {
        1: ("wrong number of cells", rows[1][:-2]),
        3: ("age", [*rows[3][:age], "7", *rows[3][age + 1 :]]),  # out of range
        4: ("DebtRatio", [*rows[4][:debt], "x" * 100, *rows[4][debt + 1 :]]),  # over-long
        6: ("age", [*rows[6][:age], "", *rows[6][age + 1 :]]),  # empty required cell
        7: ("DebtRatio", [*rows[7][:debt], "lots", *rows[7][debt + 1 :]]),  # not a number
        9: ("wrong number of cells", [*rows[9], "1"]),  # one cell too many
    }
    src = tmp_path / "applicants.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", TARGET, *FEATURES])
        w.writerows(broken[i][1] if i in broken else r for i, r in enumerate(rows))
    args = ["score", "--url", stack.api_url, "--api-key", KEY, "--no-progress", "--batch-size", "4"]

    assert cli_main([*args, str(src)]) == 1
    good = [i for i in range(len(rows)) if i not in broken]
    scored = list(csv.DictReader((tmp_path / "applicants.scored.csv").open()))
    assert [int(r["row"]) for r in scored] == good
    assert [r["id"] for r in scored] == [str(i + 1) for i in good]
    expected = client.score_many([applicants[i] for i in good]).scores
    assert [float(r["probability"]) for r in scored] == [s.probability for s in expected]

    rejects_path = tmp_path / "applicants.scored.rejects.csv"
    rejects = list(csv.reader(rejects_path.open()))
    assert rejects[0] == ["row", "error", "", TARGET, *FEATURES]
    assert [int(r[0]) for r in rejects[1:]] == sorted(broken)
    for r in rejects[1:]:
        why, raw = broken[int(r[0])]
        assert r[2:] == raw
        if why == "wrong number of cells":
            assert r[1] == f"{len(raw)} cells; the header has {2 + len(FEATURES)}"
        else:
            assert r[1].startswith(f"{why}: ")
    assert "may not be empty" in rejects[1 + sorted(broken).index(6)][1]  # the empty age cell
    err = capsys.readouterr().err
    assert f"scored {len(good)} of {len(rows)} rows" in err and "Traceback" not in err

    # Fixed in place (row and error columns left as they are), the rejects file scores.
    fixed = tmp_path / "fixed.csv"
    with fixed.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(rejects[0])
        for r in rejects[1:]:
            w.writerow([*r[:2], *rows[int(r[0])]])
    assert cli_main([*args, str(fixed)]) == 0
    rescored = list(csv.DictReader((tmp_path / "fixed.scored.csv").open()))
    again = client.score_many([applicants[i] for i in sorted(broken)]).scores
    assert [float(r["probability"]) for r in rescored] == [s.probability for s in again]
    assert [r["id"] for r in rescored] == [str(i + 1) for i in sorted(broken)]
    assert not (tmp_path / "fixed.scored.rejects.csv").exists()


def test_cli_headerless_and_json_lines_rejects_read_back(
    stack: LocalStack, applicants: list[dict[str, Any]], tmp_path: Path
) -> None:
    args = ["score", "--url", stack.api_url, "--api-key", KEY, "--no-progress"]
    src = tmp_path / "plain.csv"
    lines = [[cell(a[f]) for f in FEATURES] for a in applicants[:3]]
    src.write_text("\n".join(",".join(x) for x in [lines[0], lines[1][:4], lines[2]]) + "\n")
    assert cli_main([*args, str(src)]) == 1
    rejects = list(csv.reader((tmp_path / "plain.scored.rejects.csv").open()))
    assert rejects[0] == ["row", "error", *FEATURES] and rejects[1][0] == "1"
    fixed = tmp_path / "plain-fixed.csv"
    fixed.write_text(
        ",".join([*rejects[1][:2], *lines[1]]).join(
            ["row,error," + ",".join(FEATURES) + "\n", "\n"]
        )
    )
    assert cli_main([*args, str(fixed)]) == 0

    src = tmp_path / "in.jsonl"
    bad = dict(applicants[1], age=7, id="B")
    src.write_text("\n".join(json.dumps(x) for x in [applicants[0], bad]) + "\n")
    assert cli_main([*args, str(src)]) == 1
    [entry] = [
        json.loads(x) for x in (tmp_path / "in.scored.rejects.jsonl").read_text().splitlines()
    ]
    assert entry["row"] == 1 and entry["error"].startswith("age: ") and entry["id"] == "B"
    fixed = tmp_path / "in-fixed.jsonl"
    fixed.write_text(json.dumps(dict(entry, age=45)) + "\n")
    assert cli_main([*args, str(fixed)]) == 0
    [out] = [json.loads(x) for x in (tmp_path / "in-fixed.scored.jsonl").read_text().splitlines()]
    assert out["id"] == "B"


def test_cli_refuses_a_misspelt_header_once(
    stack: LocalStack,
    applicants: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["score", "--url", stack.api_url, "--api-key", KEY, "--no-progress"]
    src = tmp_path / "typo.csv"
    header = ["Agee" if f == "age" else f for f in FEATURES]
    src.write_text(
        "\n".join(",".join(r) for r in [header, *(map(cell, a.values()) for a in applicants)])
    )
    assert cli_main([*args, str(src)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {src}: the header does not name the features: "
        "Agee: unknown field; did you mean 'age'?\n"
    )
    assert not (tmp_path / "typo.scored.csv").exists()
    # Every name lower-cased: no name is known, yet it is a header, not a row of values.
    src.write_text(",".join(f.lower() for f in FEATURES) + "\n")
    assert cli_main([*args, str(src)]) == 2
    assert "revolvingutilizationofunsecuredlines: unknown field; did you mean" in (
        capsys.readouterr().err
    )


def test_cli_reads_semicolons_and_json_and_writes_plain_line_ends(
    stack: LocalStack,
    client: CreditExplainerClient,
    applicants: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["score", "--url", stack.api_url, "--api-key", KEY, "--no-progress"]
    expected = [s.probability for s in client.score_many(applicants).scores]
    semi = tmp_path / "semi.csv"
    semi.write_text(
        "\n".join(
            ";".join(r)
            for r in [
                ["id", *FEATURES],
                *([str(i), *map(cell, a.values())] for i, a in enumerate(applicants)),
            ]
        )
    )
    assert cli_main([*args, str(semi)]) == 0
    assert f"reading {semi} as ';'-separated" in capsys.readouterr().err
    text = (tmp_path / "semi.scored.csv").read_bytes()
    assert b"\r" not in text  # `cut -d, -f2` gives the id, not the id and a CR
    rows = list(csv.DictReader(io.StringIO(text.decode())))
    assert [float(r["probability"]) for r in rows] == expected
    assert [r["id"] for r in rows] == [str(i) for i in range(len(applicants))]

    doc = tmp_path / "applicants.json"
    doc.write_text(json.dumps(applicants, indent=2))
    assert cli_main([*args, str(doc)]) == 0
    out = [json.loads(x) for x in (tmp_path / "applicants.scored.jsonl").read_text().splitlines()]
    assert [o["probability"] for o in out] == expected
    capsys.readouterr()
    doc.write_text("{not json")
    assert cli_main([*args, str(doc)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {doc}: request body is not valid JSON")


def test_cli_without_url_names_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDIT_EXPLAINER_URL", raising=False)
    src = tmp_path / "a.csv"
    src.write_text(",".join(FEATURES) + "\n")
    assert cli_main(["score", str(src)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no API URL: pass --url or set CREDIT_EXPLAINER_URL")
    assert "url=" not in err


# -- the SDK -----------------------------------------------------------------------------------


def test_collect_returns_every_bad_applicant_as_a_failure_whatever_the_mix(
    client: CreditExplainerClient, applicants: list[dict[str, Any]]
) -> None:
    misspelt = dict(applicants[5])
    misspelt["Age"] = misspelt.pop("age")
    mixed: list[Any] = [
        applicants[0],
        [0.5, 40, 0],  # wrong number of values
        dict(applicants[2], age=7),  # out of range
        dict(applicants[3], DebtRatio="9" * 100),  # over-long string
        {k: v for k, v in applicants[4].items() if k != "MonthlyIncome"},  # nullable omitted
        misspelt,
        42,  # not an applicant at all
        applicants[7],
    ]
    results = client.score_many(mixed, on_error="collect", batch_size=3)
    assert [type(r) for r in results] == [Score, *[Failure] * 6, Score]
    fields = {f.index: [(e.applicant, e.field) for e in f.errors] for f in results.failures}
    assert fields == {
        1: [(1, None)],
        2: [(2, "age")],
        3: [(3, "DebtRatio")],
        4: [(4, "MonthlyIncome")],
        5: [(5, "Age")],
        6: [(6, None)],
    }
    by_index = {f.index: f.message for f in results.failures}
    assert by_index[4] == "MonthlyIncome: required: may be null when unknown, but must be sent"
    assert by_index[5] == "Age: unknown field; did you mean 'age'?"
    expected = client.score_many([applicants[0], applicants[7]])
    assert results.probabilities()[0] == expected[0].probability  # type: ignore[union-attr]
    assert results.probabilities()[7] == expected[1].probability  # type: ignore[union-attr]
    with pytest.raises(CreditExplainerError) as info:
        client.score_many(mixed)  # raise mode: one error naming every applicant at fault
    assert info.value.bad_indices == [1, 2, 3, 4, 5, 6]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "call",
    [
        lambda c, a: c.score_many(a[0]),
        lambda c, a: c.score_many("not applicants"),
        lambda c, a: c.score_many(7),
        lambda c, a: c.score([a[0], a[1]]),
        lambda c, a: c.score_many(a, on_error="ignore"),
        lambda c, a: c.score_many(a, batch_size=0),
        lambda c, a: c.score_many(a, concurrency=0),
        lambda c, a: c.score(a[0]).reasons(max_reasons=0),
        lambda c, a: CreditExplainerClient(c.base_url, batch_size=0),
        lambda c, a: c.score(dict(a[0], age=7)),
        lambda c, a: c.score([1, 2, 3]),
    ],
)
def test_every_sdk_error_is_a_credit_explainer_error(
    client: CreditExplainerClient, applicants: list[dict[str, Any]], call: Any
) -> None:
    with pytest.raises(CreditExplainerError):
        call(client, applicants)


def test_wrong_calls_say_what_to_do(
    client: CreditExplainerClient, applicants: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UsageError, match=r"use score_many\(\) for 2"):
        client.score([applicants[0], applicants[1]])
    monkeypatch.delenv("CREDIT_EXPLAINER_URL", raising=False)
    with pytest.raises(UsageError, match="CREDIT_EXPLAINER_URL"):
        CreditExplainerClient()
    # Still the built-in kinds older callers catch.
    with pytest.raises(TypeError):
        client.score_many(applicants[0])
    with pytest.raises(ValueError):
        ReasonCodes(max_reasons=0)


def test_a_missing_key_says_that_a_key_is_needed(
    stack: LocalStack, applicants: list[dict[str, Any]]
) -> None:
    with (
        CreditExplainerClient(stack.api_url, api_key="") as anonymous,
        pytest.raises(AuthenticationError) as info,
    ):
        anonymous.score(applicants[0])
    assert info.value.status == 403
    assert "API key" in str(info.value) and "CREDIT_EXPLAINER_API_KEY" in str(info.value)


def test_values_in_model_order_score_as_the_api_scores_them(
    client: CreditExplainerClient, http: httpx.Client, applicants: list[dict[str, Any]]
) -> None:
    values = [applicants[0][f] for f in FEATURES]
    by_list = client.score(values)
    assert by_list.probability == client.score(applicants[0]).probability
    api = http.post("/score", json=[values])
    assert api.status_code == 200
    assert api.json()["results"][0]["probability"] == by_list.probability
    many = client.score_many([values, tuple(values)])
    assert many.probabilities() == [by_list.probability] * 2


# -- one rule for the target, the index column and numeric strings -----------------------------


def test_target_and_index_are_ignored_and_numeric_strings_read_everywhere(
    client: CreditExplainerClient, http: httpx.Client, applicants: list[dict[str, Any]]
) -> None:
    plain = client.score(applicants[0]).probability
    extra = {**applicants[0], TARGET: 1, "id": 17, "Unnamed: 0": 17}
    as_text = {k: cell(v) if v is not None else None for k, v in applicants[0].items()}
    assert client.score(extra).probability == plain
    assert client.score(as_text).probability == plain
    for body in ([extra], [as_text]):
        answer = http.post("/score", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][0]["probability"] == plain
    # Any other unknown field is refused, naming applicant and field.
    answer = http.post("/score", json=[{**applicants[0], "Agee": 40}])
    assert answer.status_code == 422
    assert answer.json()["error"]["details"] == [
        {
            "applicant": 0,
            "field": "Agee",
            "message": "unknown field; did you mean 'age'?",
            "type": "extra_forbidden",
        }
    ]


def test_validation_messages_over_http(
    http: httpx.Client, applicants: list[dict[str, Any]]
) -> None:
    # A null age (an empty CSV cell in the CLI) is missing, not "not a valid number".
    answer = http.post("/score", json=[dict(applicants[0], age=None)])
    assert answer.status_code == 422
    [detail] = answer.json()["error"]["details"]
    assert (detail["field"], detail["message"]) == (
        "age",
        "required: may not be empty or null (only MonthlyIncome and NumberOfDependents may)",
    )
    omitted = {k: v for k, v in applicants[0].items() if k != "NumberOfDependents"}
    answer = http.post("/score", json=[omitted])
    [detail] = answer.json()["error"]["details"]
    assert (detail["field"], detail["message"]) == (
        "NumberOfDependents",
        "required: may be null when unknown, but must be sent",
    )


# -- the local stack's OpenAPI document ------------------------------------------------------


def test_openapi_servers_point_where_the_api_is_served(
    stack: LocalStack, http: httpx.Client, applicants: list[dict[str, Any]]
) -> None:
    document = http.get("/swagger", params={"format": "json"})
    assert document.status_code == 200
    [server] = document.json()["servers"]
    # What Swagger UI's "Try it out" sends: the server URL, then the operation's path.
    base = httpx.URL(stack.api_url).join(server["url"].rstrip("/") + "/")
    answer = http.post(str(base.join("score")), json=[applicants[0]])
    assert answer.status_code == 200, answer.text
    assert http.get(str(base.join("health"))).json()["status"] == "ok"
    page = http.get(str(base.join("swagger")))
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert http.get(str(base.join("swagger")), params={"format": "json"}).json() == document.json()


def test_the_async_client_collects_the_same_failures(
    stack: LocalStack, applicants: list[dict[str, Any]]
) -> None:
    import asyncio

    from credit_explainer import AsyncCreditExplainerClient

    mixed: list[Any] = [applicants[0], [1, 2], dict(applicants[2], DebtRatio="x" * 100), 7]

    async def run() -> Any:
        async with AsyncCreditExplainerClient(stack.api_url, api_key=KEY) as c:
            collected = await c.score_many(mixed, on_error="collect")
            with pytest.raises(UsageError):
                await c.score_many(applicants[0])
            return collected

    results = asyncio.run(run())
    assert [type(r) for r in results] == [Score, Failure, Failure, Failure]
    assert [f.index for f in results.failures] == [1, 2, 3]


def test_the_waterfall_of_a_served_score_speaks_plainly(
    client: CreditExplainerClient, applicants: list[dict[str, Any]], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    from credit_schema import FEATURE_LABELS, TARGET_LABEL

    score = client.score(applicants[0])
    fig = score.plot(tmp_path / "why.png")
    assert (tmp_path / "why.png").read_bytes()[:4] == b"\x89PNG"
    ax = fig.axes[0]
    shown = {t.get_text().split(" = ")[0] for t in ax.get_yticklabels()}
    assert shown == set(FEATURE_LABELS.values())
    assert TARGET_LABEL in ax.get_title() and TARGET_LABEL in ax.get_xlabel()
    notes = [t.get_text() for t in ax.texts]
    assert f"base value {score.base_value:.1%} (average applicant)" in notes
    assert f"prediction {score.probability:.1%}" in notes


def test_cli_writes_the_reasons_the_server_decided(
    synthetic_model_dir: Path,
    applicants: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from credit_schema.reasons import REASON_CODES_ENV

    codes = tmp_path / "codes.json"
    texts = {f: {"code": f"L{i}", "text": f"Lender says {f}"} for i, f in enumerate(FEATURES)}
    codes.write_text(json.dumps({"version": "lender-1", "reasons": texts}))
    monkeypatch.setenv(REASON_CODES_ENV, str(codes))  # read by the model server at start
    src = tmp_path / "in.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FEATURES)
        w.writerows([cell(a[n]) for n in FEATURES] for a in applicants)
    with LocalStack(synthetic_model_dir, log_level="ERROR") as stack:
        assert cli_main(["score", "--url", stack.api_url, "--no-progress", str(src)]) == 0
    scored = list(csv.DictReader((tmp_path / "in.scored.csv").open()))
    told = [r["reason_1"] for r in scored if r["reason_1"]]
    assert told and all(t.startswith("Lender says ") or "not provided" in t for t in told)
