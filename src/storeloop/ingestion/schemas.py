"""Response models of the quarantine API, and the Segment request shapes for OpenAPI."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class QuarantineItem(BaseModel):
    id: uuid.UUID
    source: str
    received_at: datetime
    batch_index: int | None
    message_id: str | None
    reason: str = Field(description="stable code, e.g. missing_field, invalid_timestamp")
    field: str | None = Field(description="the offending field's path in the request")
    detail: str
    status: str
    resolved_at: datetime | None
    payload: Any = Field(description="the raw event (or body) as it was received")


class QuarantinePage(BaseModel):
    items: list[QuarantineItem]
    next_cursor: uuid.UUID | None


class ReplayRequest(BaseModel):
    payload: dict[str, Any] = Field(description="the corrected event; omit to replay as stored")


class RefusedMessage(BaseModel):
    index: int = Field(description="the message's place in the body's batch")
    code: str = Field(description="stable code, e.g. missing_field, invalid_timestamp")
    field: str | None = Field(default=None, description="the offending field's path in the body")
    message: str
    messageId: str | None = None


class ReplayResult(BaseModel):
    item: QuarantineItem
    inbox_id: uuid.UUID
    rejected: list[RefusedMessage] = Field(
        default_factory=list,
        description="a corrected body's messages that are still refused: they are quarantined"
        " again when the body is processed, the others are stored",
    )


_STRING_OR_NUMBER: dict[str, Any] = {"oneOf": [{"type": "string"}, {"type": "number"}]}

_MESSAGE_PROPERTIES: dict[str, Any] = {
    "messageId": {"type": "string", "maxLength": 255},
    "anonymousId": _STRING_OR_NUMBER,
    "userId": _STRING_OR_NUMBER,
    "timestamp": {"type": "string", "format": "date-time"},
    "sentAt": {"type": "string", "format": "date-time"},
    "context": {"type": "object"},
    "integrations": {"type": "object"},
    "properties": {"type": "object"},
    "traits": {"type": "object"},
}

_SPECIFIC: dict[str, dict[str, Any]] = {
    "track": {"event": {"type": "string", "maxLength": 255}},
    "page": {"name": {"type": "string"}, "category": {"type": "string"}},
    "screen": {"name": {"type": "string"}, "category": {"type": "string"}},
    "group": {"groupId": _STRING_OR_NUMBER},
    "alias": {"previousId": _STRING_OR_NUMBER},
    "identify": {},
}


def _message_schema(source: str) -> dict[str, Any]:
    properties = {**_MESSAGE_PROPERTIES, **_SPECIFIC[source]}
    return {"type": "object", "properties": properties}


def segment_openapi(source: str) -> dict[str, Any]:
    if source == "batch":
        item = {
            "type": "object",
            "properties": {
                **_MESSAGE_PROPERTIES,
                "type": {"type": "string", "enum": sorted(_SPECIFIC)},
                "event": {"type": "string"},
                "name": {"type": "string"},
                "groupId": _STRING_OR_NUMBER,
                "previousId": _STRING_OR_NUMBER,
            },
            "required": ["type"],
        }
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "batch": {"type": "array", "items": item},
                "sentAt": {"type": "string", "format": "date-time"},
                "writeKey": {"type": "string"},
            },
            "required": ["batch"],
        }
    else:
        schema = _message_schema(source)
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "security": [{"writeKey": []}],
    }
