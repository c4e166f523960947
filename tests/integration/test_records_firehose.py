"""Decision records on AWS: the scoring handler puts each record to an Amazon Data Firehose
stream (moto's server, delivering to S3 under yyyy/mm/dd/hh/) before it answers; a stream that
refuses (botocore's Stubber: moto always accepts) turns the answer into a 503."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import Stubber
from credit_explainer_tools.local import LocalStack
from credit_schema.records import FIREHOSE_MAX_RECORD_BYTES, hour_prefix, parse_record
from scoring_api.records import FirehoseSink, RecordUnavailableError

STREAM = "credit-explainer-records"
BUCKET = "records-bucket"


@pytest.fixture
def stream(account: Any) -> Iterator[Any]:
    """A Firehose stream delivering to an S3 bucket, as template.yaml's (moto: prefix + hour)."""
    account.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    account.client("firehose", region_name="us-east-1").create_delivery_stream(
        DeliveryStreamName=STREAM,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "BucketARN": f"arn:aws:s3:::{BUCKET}",
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "Prefix": "records/",
        },
    )
    yield account


def test_every_answer_is_put_to_the_stream_before_it_is_sent(
    stream: Any, moto_url: str, synthetic_model_dir: Path, sample_applicants: list[dict[str, Any]]
) -> None:
    environment = {"RECORDS_STREAM": STREAM, "AWS_ENDPOINT_URL_FIREHOSE": moto_url}
    with LocalStack(synthetic_model_dir, environment=environment, log_level="ERROR") as stack:
        answers = [
            httpx.post(f"{stack.api_url}/score", json=sample_applicants[: n + 1], timeout=30)
            for n in range(3)
        ]
    s3 = stream.client("s3", region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert all(k.startswith(f"records/{hour_prefix(datetime.now(UTC))[:10]}") for k in keys)
    records = {}
    for key in keys:
        for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().splitlines():
            record = parse_record(line)
            records[record.request_id] = record
    for answer in answers:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        record = records[body["request_id"]]
        assert [r.model_dump(by_alias=True) for r in record.results] == body["results"]
        assert record.applicants == [
            {k: a.get(k) for k in record.applicants[0]}
            for a in sample_applicants[: len(body["results"])]
        ]


def test_a_refusing_stream_refuses_the_answer_and_health_says_so() -> None:
    client = boto3.client("firehose", region_name="us-east-1")
    sink = FirehoseSink(STREAM, client)
    with Stubber(client) as stub:
        stub.add_client_error("put_record", "ServiceUnavailableException", http_status_code=503)
        with pytest.raises(RecordUnavailableError) as refused:
            sink.put([b"{}\n"], datetime.now(UTC))
        assert refused.value.status_code == 503 and refused.value.code == "record_unavailable"
        assert sink.problem() == f"Firehose stream {STREAM}: ServiceUnavailableException"
        stub.add_response(
            "put_record",
            {"RecordId": "1"},
            {"DeliveryStreamName": STREAM, "Record": {"Data": b"{}\n"}},
        )
        sink.put([b"{}\n"], datetime.now(UTC))
        assert sink.problem() is None
        stub.assert_no_pending_responses()


def test_a_request_too_large_for_one_firehose_record_is_recorded_in_parts() -> None:
    from credit_schema.records import record_lines

    applicant = {f"feature_{i}": float(i) for i in range(10)}
    result = {
        "index": 0,
        "probability": 0.5,
        "base_value": 0.5,
        "contributions": [
            {"feature": f, "value": v, "shap_value": 0.0, "direction": "none"}
            for f, v in applicant.items()
        ],
        "reasons": [
            {"code": "X" * 200, "text": "t" * 500, "feature": "feature_0", "shap_value": 0.0}
        ],
        "decision": None,
    }
    n = 2000
    lines = record_lines(
        request_id="r",
        moment=datetime.now(UTC),
        model_version="m",
        reason_codes_version=None,
        api_key_id=None,
        applicants=[applicant] * n,
        results=[dict(result, index=i) for i in range(n)],
        max_bytes=FIREHOSE_MAX_RECORD_BYTES,
    )
    assert len(lines) > 1 and all(len(line) <= FIREHOSE_MAX_RECORD_BYTES for line in lines)
    parts = [parse_record(line) for line in lines]
    assert [p.part for p in parts] == list(range(len(lines)))
    assert {p.parts for p in parts} == {len(lines)}
    assert [r.index for p in parts for r in p.results] == list(range(n))
