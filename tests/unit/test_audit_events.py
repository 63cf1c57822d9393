"""Audit events are typed and cannot carry secrets, tokens or row values; hashing is canonical."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

import tre.audit.events as events
from tre.audit import (
    EVENT_TYPES,
    TOKEN_PREFIX,
    AuditEvent,
    AuditPayload,
    canonical_json,
    denied_field_name,
    event_hash,
)
from tre.governance.tokens import hash_token, new_raw_token
from tre.governance.users import _hasher


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "new_password",
        "api_key",
        "key",
        "token",
        "raw_token",
        "token_hash",
        "client_secret",
        "cookie",
        "row",
        "rows",
        "row_values",
        "value",
        "cell_values",
        "data",
        "sql",
        "Password",
    ],
)
def test_field_names_on_the_deny_list_are_refused_when_the_class_is_defined(name: str) -> None:
    assert denied_field_name(name)
    with pytest.raises(TypeError, match="deny list"):
        type(
            "Leaky",
            (AuditEvent,),
            {"__annotations__": {name: str}, "event_type": "test.leaky_" + name.lower()},
        )


@pytest.mark.parametrize("name", ["token_id", "dataset", "datasets", "user_id", "reason"])
def test_ordinary_field_names_are_allowed(name: str) -> None:
    assert not denied_field_name(name)


@pytest.mark.parametrize(
    "annotation",
    [dict[str, Any], Any, float, list[dict[str, str]], tuple[float, ...], bytes, object],
)
def test_untyped_or_float_fields_are_refused(annotation: Any) -> None:
    with pytest.raises(TypeError, match="not allowed"):
        type(
            "Loose",
            (AuditEvent,),
            {"__annotations__": {"payload_field": annotation}, "event_type": "test.loose"},
        )


def test_nested_payloads_are_checked_too() -> None:
    with pytest.raises(TypeError, match="deny list"):
        type("Inner", (AuditPayload,), {"__annotations__": {"secret": str}})


def test_an_event_class_needs_a_type_name() -> None:
    with pytest.raises(TypeError, match="event_type"):
        type("Nameless", (AuditEvent,), {"__annotations__": {"user_id": int}})


def test_a_raw_token_in_any_string_is_refused() -> None:
    raw = new_raw_token()
    assert raw.startswith(TOKEN_PREFIX)
    with pytest.raises(ValidationError, match="credential"):
        events.TokenRevoked(token_id="abc", reason=f"user pasted {raw} by mistake")
    with pytest.raises(ValidationError, match="credential"):
        events.UserDisabled(user_id=1, reason=raw)


def test_a_password_hash_is_refused() -> None:
    with pytest.raises(ValidationError, match="credential"):
        events.UserDisabled(user_id=1, reason=_hasher.hash("a long enough password"))


def test_tokens_inside_tuples_are_refused() -> None:
    with pytest.raises(ValidationError, match="credential"):
        events.UserRolesSet(user_id=1, roles=("researcher", new_raw_token()))


def test_very_long_text_is_refused() -> None:
    with pytest.raises(ValidationError, match="longer than"):
        events.UserDisabled(user_id=1, reason="x" * 5000)


def test_extra_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        events.UserEnabled(user_id=1, note="extra")  # type: ignore[call-arg]


def test_every_event_class_in_the_module_is_registered_with_a_version() -> None:
    classes = [
        c
        for c in vars(events).values()
        if isinstance(c, type) and issubclass(c, AuditEvent) and c is not AuditEvent
    ]
    assert len(classes) >= 20
    for cls in classes:
        assert EVENT_TYPES[(cls.event_type, cls.schema_version)] is cls
        assert cls.schema_version >= 1


def test_token_hash_is_sha256_of_the_token_and_never_the_token() -> None:
    raw = new_raw_token()
    assert hash_token(raw) == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in hash_token(raw)
    assert len(raw) > len(TOKEN_PREFIX) + 40  # 32 random bytes, URL-safe


def test_canonical_json_ignores_key_order_and_keeps_unicode() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == canonical_json({"a": "é", "b": 1})
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def _hash(**overrides: Any) -> str:
    fields: dict[str, Any] = {
        "seq": 7,
        "occurred_at": "2025-03-03T09:30:00.000000Z",
        "event_type": "user.enabled",
        "schema_version": 1,
        "actor": "user:1",
        "payload": {"user_id": 3},
        "prev_hash": "a" * 64,
    }
    fields.update(overrides)
    return event_hash(**fields)


def test_event_hash_is_sha256_of_the_documented_canonical_document() -> None:
    doc = {
        "actor": "user:1",
        "payload": {"user_id": 3},
        "prev_hash": "a" * 64,
        "seq": 7,
        "time": "2025-03-03T09:30:00.000000Z",
        "type": "user.enabled",
        "version": 1,
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    assert _hash() == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 8},
        {"occurred_at": "2025-03-03T09:30:00.000001Z"},
        {"event_type": "user.disabled"},
        {"schema_version": 2},
        {"actor": "user:2"},
        {"payload": {"user_id": 4}},
        {"prev_hash": "b" * 64},
    ],
)
def test_every_hashed_field_changes_the_hash(change: dict[str, Any]) -> None:
    assert _hash(**change) != _hash()


def test_payloads_serialise_decimals_and_dates_exactly() -> None:
    e = events.AllowanceOpened(
        project_id=1,
        dataset="health",
        rho=Decimal("0.000000000001"),
        delta=Decimal("1E-18"),
        valid_from=date(2025, 1, 1),
        valid_until=date(2025, 12, 31),
    )
    dumped = e.model_dump(mode="json")
    assert Decimal(dumped["rho"]) == Decimal("1e-12")
    assert Decimal(dumped["delta"]) == Decimal("1e-18")
    assert dumped["valid_until"] == "2025-12-31"
    issued = events.TokenIssued(
        token_id="t", user_id=1, project_id=1, expires_at=datetime(2025, 1, 1, tzinfo=UTC)
    )
    assert "expires_at" in issued.model_dump(mode="json")
