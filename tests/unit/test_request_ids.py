"""Request and event ids: UUID4s made without a system call, and only AWS-shaped ids accepted."""

from __future__ import annotations

import uuid

from credit_schema.edge import new_id, request_id


def test_new_ids_are_distinct_rfc_4122_version_4_uuids() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:500]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text  # lower-case, canonical 8-4-4-4-12 form


def test_request_id_keeps_an_aws_shaped_id_and_replaces_anything_else() -> None:
    given = "0f2c8a9e-1b3d-4c5e-8f70-123456789abc"
    assert request_id(given) == given
    for bad in (None, "", "x" * 36, given + "\nforged log line", given[:-1]):
        made = request_id(bad)
        assert made != bad and uuid.UUID(made).version == 4
