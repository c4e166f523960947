"""SageMaker Data Capture's line, stated once: the model server writes it
(:mod:`credit_model.capture`) and the readers turn it into a
:class:`credit_schema.records.DecisionRecord` here (``decisions`` and ``monitor --capture``).

::

    {"captureData": {"endpointInput": {"observedContentType": ..., "mode": "INPUT",
                                       "data": ..., "encoding": "JSON" | "BASE64"},
                     "endpointOutput": {... "mode": "OUTPUT" ...}},
     "eventMetadata": {"eventId": ..., "inferenceId": ..., "inferenceTime": "...Z"},
     "eventVersion": "0"}
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final

from .content_types import CONTENT_TYPE_JSONLINES, media_type
from .errors import PayloadError
from .payload import body_records, validate_records
from .records import RECORD_VERSION, DecisionRecord, RecordError, record_from

#: The line, filled by %-formatting from JSON-encoded parts (the writer's hot path): input's
#: content type, data, encoding; output's three; event id, inference id, inference time.
CAPTURE_LINE: Final = (
    b'{"captureData":{'
    b'"endpointInput":{"observedContentType":%s,"mode":"INPUT","data":%s,"encoding":"%s"},'
    b'"endpointOutput":{"observedContentType":%s,"mode":"OUTPUT","data":%s,"encoding":"%s"}},'
    b'"eventMetadata":{"eventId":"%s","inferenceId":%s,"inferenceTime":"%s"},"eventVersion":"0"}\n'
)
#: ``inferenceTime``'s format (UTC, to the second).
INFERENCE_TIME: Final = "%Y-%m-%dT%H:%M:%SZ"


def _body(part: dict[str, Any]) -> bytes:
    data = part["data"]
    if not isinstance(data, str):
        raise TypeError("data is not text")
    return (
        base64.b64decode(data, validate=True) if part.get("encoding") == "BASE64" else data.encode()
    )


def _answer(part: dict[str, Any]) -> dict[str, Any]:
    body = _body(part)
    if media_type(part["observedContentType"]) == CONTENT_TYPE_JSONLINES:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        first = lines[0] if lines else {}
        return {
            "model_version": first.get("model_version"),
            "reason_codes_version": first.get("reason_codes_version"),
            "predictions": lines,
        }
    answer = json.loads(body)
    if not isinstance(answer, dict):
        raise TypeError("the answer is not a JSON object")
    return answer


def _inputs(records: list[Any], predictions: Any) -> list[dict[str, Any]]:
    """Each applicant's features as the model was sent them. Named records keep the features the
    answer explains (whatever the model's schema; ids and ignored columns dropped); value lists
    (batch transform's CSV) are read by the built-in schema, the only one they can be without
    the model's."""
    if all(isinstance(r, dict) for r in records) and len(records) == len(predictions):
        out = []
        for record, p in zip(records, predictions, strict=True):
            features = {c["feature"] for c in p["contributions"]}
            out.append({k: v for k, v in record.items() if k in features})
        return out
    return [a.to_features() for a in validate_records(records)]


def capture_record(data: Any) -> DecisionRecord:
    """One decoded capture line as a decision record (:class:`RecordError` if it is not one)."""
    try:
        meta, capture = data["eventMetadata"], data["captureData"]
        sent, answered = capture["endpointInput"], capture["endpointOutput"]
        sent_records = body_records(_body(sent), media_type(sent["observedContentType"]))
        answer = _answer(answered)
        predictions = answer["predictions"]
        applicants = _inputs(sent_records, predictions)
        results = [
            {**p, "index": i} if isinstance(p, dict) else p for i, p in enumerate(predictions)
        ]
        record = {
            "record_version": RECORD_VERSION,
            "request_id": meta["inferenceId"],
            "time": meta["inferenceTime"],
            "model_version": answer["model_version"],
            "reason_codes_version": answer.get("reason_codes_version"),
            "api_key_id": None,
            "applicants": applicants,
            "results": results,
        }
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise RecordError(f"not a data capture record: {type(exc).__name__} {exc}") from None
    except (ValueError, binascii.Error, PayloadError) as exc:
        raise RecordError(f"not a data capture record: {str(exc).splitlines()[0]}") from None
    return record_from(record)


def parse_capture(line: bytes | str) -> DecisionRecord:
    """One capture line as a decision record, or :class:`RecordError` saying why not."""
    try:
        data = json.loads(line)
    except UnicodeDecodeError:
        raise RecordError("not UTF-8 text") from None
    except ValueError:
        raise RecordError("not JSON: a damaged or cut-short line") from None
    return capture_record(data)
