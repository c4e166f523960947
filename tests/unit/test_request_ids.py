"""Request and event ids: time-ordered UUIDv7s made without a system call, and only AWS-shaped
ids accepted."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from credit_schema.edge import decision_id, id_time, new_id, request_id


def test_new_ids_are_distinct_time_ordered_rfc_9562_version_7_uuids() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:500]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert str(parsed) == text  # lower-case, canonical 8-4-4-4-12 form
    time.sleep(0.002)
    later = new_id()
    assert later > ids[0]  # later ids sort after earlier ones (millisecond prefix)
    made = id_time(ids[0])
    assert made is not None and before <= made <= datetime.now(UTC)


def test_id_time_reads_only_version_7_ids() -> None:
    assert id_time("0f2c8a9e-1b3d-4c5e-8f70-123456789abc") is None  # a v4, as API Gateway's
    assert id_time("not an id") is None
    assert id_time("01890a5d-ac96-774b-bcce-b302099a8057") == datetime(
        2023, 6, 30, 3, 34, 18, 518000, tzinfo=UTC
    )


def test_decision_ids_are_time_ordered_whatever_api_gateway_issued() -> None:
    v7 = new_id()
    assert decision_id(v7) == v7
    for given in (None, "0f2c8a9e-1b3d-4c5e-8f70-123456789abc"):
        assert uuid.UUID(decision_id(given)).version == 7


def test_request_id_keeps_an_aws_shaped_id_and_replaces_anything_else() -> None:
    given = "0f2c8a9e-1b3d-4c5e-8f70-123456789abc"
    assert request_id(given) == given
    for bad in (None, "", "x" * 36, given + "\nforged log line", given[:-1]):
        made = request_id(bad)
        assert made != bad and uuid.UUID(made).version == 7
