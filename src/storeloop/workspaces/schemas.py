"""Request and response models of the workspace and key management API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class WorkspaceOut(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    kind: Literal["write", "secret"]
    name: str
    prefix: str = Field(description="the first characters of the key, to recognise it")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreate(BaseModel):
    kind: Literal["write", "secret"]
    name: str = Field(default="", max_length=200)


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself: shown this once, stored only as a hash")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
