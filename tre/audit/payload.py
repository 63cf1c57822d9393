"""The base of every audit event: typed, versioned, and unable to carry secrets or row values.

Two guards, both tested:
- at class definition, field names are checked against a deny list (no `password`, `token`,
  `key`, `secret`, `value`, `row`, … fields) and field types must be plain scalars (str, int,
  bool, Decimal, date, datetime, enums), nested payloads, or tuples of those — no dicts, no
  floats, no `Any`, so nothing can smuggle a table row in;
- at construction, strings are length-limited and refused when they contain a tre token or a
  password hash (`SECRET_MARKERS`).
"""

from __future__ import annotations

import types
import typing
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

# Every raw API token starts with TOKEN_PREFIX (tre.governance.tokens uses it).
TOKEN_PREFIX = "tre_tok_"  # noqa: S105 - a public prefix, not a secret
SECRET_MARKERS = (TOKEN_PREFIX, "$argon2")
MAX_STRING = 2000

# Words that may not appear in a payload field name (split on "_").
DENIED_NAME_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "key",
        "keys",
        "credential",
        "credentials",
        "cookie",
        "salt",
        "hash",
        "value",
        "values",
        "row",
        "rows",
        "data",
        "sql",
    }
)
# Names that contain a denied word but are safe identifiers of a public kind.
ALLOWED_NAMES = frozenset({"token_id"})

_SCALARS: tuple[type, ...] = (str, int, bool, Decimal, date, datetime, type(None))


def denied_field_name(name: str) -> bool:
    """True when a payload field called `name` could carry a secret or a row value."""
    if name in ALLOWED_NAMES:
        return False
    return any(word in DENIED_NAME_WORDS for word in name.lower().split("_"))


def _check_annotation(owner: str, field: str, annotation: Any) -> None:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            _check_annotation(owner, field, arg)
        return
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            _check_annotation(owner, field, args[0])
            return
        for arg in args:
            _check_annotation(owner, field, arg)
        return
    if origin is typing.Literal:
        return
    if isinstance(annotation, type):
        if annotation is float:
            raise TypeError(f"{owner}.{field}: floats are not allowed in audit events (Decimal)")
        if annotation in _SCALARS or issubclass(annotation, Enum | AuditPayload):
            return
    raise TypeError(
        f"{owner}.{field}: type {annotation!r} is not allowed in an audit event "
        "(use str, int, bool, Decimal, date, datetime, an enum, a nested payload or a tuple)"
    )


def _check_strings(value: Any, where: str) -> None:
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ValueError(f"{where}: text longer than {MAX_STRING} characters")
        for marker in SECRET_MARKERS:
            if marker in value:
                raise ValueError(f"{where}: looks like a credential; never audit credentials")
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            _check_strings(item, f"{where}[{i}]")


class AuditPayload(BaseModel):
    """A frozen, typed piece of an audit event (events and their nested parts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse, at import time, a payload class whose fields could carry secrets or rows."""
        super().__pydantic_init_subclass__(**kwargs)
        for name, info in cls.model_fields.items():
            if denied_field_name(name):
                raise TypeError(
                    f"{cls.__name__}.{name}: field name is on the audit deny list "
                    "(audit events never carry secrets, tokens or row values)"
                )
            _check_annotation(cls.__name__, name, info.annotation)

    @model_validator(mode="after")
    def _no_secrets(self) -> AuditPayload:
        for name in type(self).model_fields:
            _check_strings(getattr(self, name), f"{type(self).__name__}.{name}")
        return self


# (event_type, schema_version) -> class; filled as event classes are defined.
EVENT_TYPES: dict[tuple[str, int], type[AuditEvent]] = {}


class AuditEvent(AuditPayload):
    """One kind of audit event: subclasses set `event_type` and `schema_version`."""

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Register the event class under its type name and schema version."""
        super().__pydantic_init_subclass__(**kwargs)
        event_type = cls.__dict__.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            raise TypeError(f"{cls.__name__} must set event_type")
        key = (event_type, cls.schema_version)
        if key in EVENT_TYPES and EVENT_TYPES[key] is not cls:
            raise TypeError(f"audit event {event_type} v{cls.schema_version} defined twice")
        EVENT_TYPES[key] = cls
