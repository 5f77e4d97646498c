"""Social posts and stories, created one by one or imported from CSV (upsert on url)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, get_args

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storeloop.influencers.repository import MarketingRepository
from storeloop.influencers.schemas import (
    ImportError_,
    PostCreate,
    PostImportResult,
    PostKind,
    PostOut,
    PostPage,
    PostUpdate,
)
from storeloop.influencers.service.common import (
    MAX_IMPORT_BYTES,
    PLATFORM,
    InvalidCsv,
    PostExists,
    UnknownReference,
    aware,
    changes_of,
    check_references,
    page_of,
    require,
)
from storeloop.influencers.service.influencers import resolve_ref
from storeloop.kit.errors import PayloadTooLarge, ValidationFailed
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.kit.urls import parse_web_url
from storeloop.models import Campaign, Influencer, Post

# -- posts ------------------------------------------------------------------------------------


def _post_out(post: Post) -> PostOut:
    return PostOut(
        id=post.id,
        platform=post.platform,
        kind=post.kind,
        url=post.url,
        posted_at=aware(post.posted_at),
        influencer_id=post.influencer_id,
        campaign_id=post.campaign_id,
        reach=post.reach,
        views=post.views,
        likes=post.likes,
        comments=post.comments,
        created_at=as_utc(post.created_at),
        updated_at=as_utc(post.updated_at),
    )


def _platform(value: str, field: str = "platform") -> str:
    platform = value.strip().lower()
    if not PLATFORM.match(platform):
        raise ValidationFailed(
            f"{value!r} is not a platform name (letters, digits, . _ -)", field=field
        )
    return platform


def _post_url(value: str) -> str:
    if parse_web_url(value) is None:
        raise ValidationFailed("a post's URL must be an absolute http(s) URL", field="url")
    return value


def create_post(session: Session, workspace_id: uuid.UUID, data: PostCreate) -> PostOut:
    repository = MarketingRepository(session, workspace_id)
    url = _post_url(data.url)
    check_references(repository, influencer_id=data.influencer_id, campaign_id=data.campaign_id)
    if repository.posts_by_url([url]):
        raise PostExists("a post with this URL exists; update it instead", field="url")
    now = utcnow()
    post = Post(
        id=new_id(),
        workspace_id=workspace_id,
        platform=_platform(data.platform),
        kind=data.kind,
        url=url,
        posted_at=aware(data.posted_at),
        influencer_id=data.influencer_id,
        campaign_id=data.campaign_id,
        reach=data.reach,
        views=data.views,
        likes=data.likes,
        comments=data.comments,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            repository.add(post)
    except IntegrityError:
        raise PostExists("a post with this URL exists; update it instead", field="url") from None
    return _post_out(post)


def get_post(session: Session, workspace_id: uuid.UUID, post_id: uuid.UUID) -> PostOut:
    post = require(
        MarketingRepository(session, workspace_id).get(Post, post_id), "post", post_id, "post_id"
    )
    return _post_out(post)


def list_posts(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    platform: str | None = None,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> PostPage:
    filters: list[Any] = []
    if platform is not None:
        filters.append(Post.platform == platform.strip().lower())
    if influencer_id is not None:
        filters.append(Post.influencer_id == influencer_id)
    if campaign_id is not None:
        filters.append(Post.campaign_id == campaign_id)
    rows, next_cursor = page_of(
        MarketingRepository(session, workspace_id), Post, filters, limit, cursor
    )
    return PostPage(items=[_post_out(row) for row in rows], next_cursor=next_cursor)


def update_post(
    session: Session, workspace_id: uuid.UUID, post_id: uuid.UUID, update: PostUpdate
) -> PostOut:
    changes = changes_of(update, not_null={"platform", "kind"})
    repository = MarketingRepository(session, workspace_id)
    post = require(repository.get(Post, post_id), "post", post_id, "post_id")
    check_references(
        repository,
        influencer_id=changes.get("influencer_id"),
        campaign_id=changes.get("campaign_id"),
    )
    if "platform" in changes:
        post.platform = _platform(changes["platform"])
    if "posted_at" in changes:
        post.posted_at = aware(changes["posted_at"])
    for name in ("kind", "influencer_id", "campaign_id", "reach", "views", "likes", "comments"):
        if name in changes:
            setattr(post, name, changes[name])
    post.updated_at = utcnow()
    session.flush()
    return _post_out(post)


# -- CSV import of posts ----------------------------------------------------------------------

_IMPORT_COLUMNS = (
    "platform",
    "url",
    "kind",
    "posted_at",
    "influencer",
    "campaign",
    "reach",
    "views",
    "likes",
    "comments",
)
_METRICS = ("reach", "views", "likes", "comments")
_KINDS: frozenset[str] = frozenset(get_args(PostKind))


class _RowErrors:
    def __init__(self, line: int) -> None:
        self.line = line
        self.errors: list[ImportError_] = []

    def add(self, column: str | None, code: str, reason: str) -> None:
        self.errors.append(ImportError_(line=self.line, column=column, code=code, reason=reason))


def _same(stored: Any, given: Any) -> bool:
    """Equality that sees SQLite's naive UTC times as the aware times they stand for."""
    if isinstance(stored, datetime) and isinstance(given, datetime):
        return as_utc(stored) == as_utc(given)
    return bool(stored == given)


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return as_utc(parsed)


def _parse_count(value: str) -> int:
    cleaned = value.replace(",", "").replace("_", "").replace(" ", "")
    if not cleaned.isascii() or not cleaned.isdigit() or len(cleaned) > 15:
        raise ValueError(value)
    return int(cleaned)


def decode_csv(body: bytes) -> str:
    if len(body) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(
            f"a CSV import is at most {MAX_IMPORT_BYTES // (1024 * 1024)} MiB; split the file",
            field="body",
        )
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidCsv("the CSV file must be UTF-8 encoded", field="body") from None


def count_csv_rows(text: str) -> int:
    """Data rows of a CSV text (for progress bars)."""
    return max(sum(1 for row in csv.reader(io.StringIO(text)) if any(row)) - 1, 0)


def import_posts(
    session: Session,
    workspace_id: uuid.UUID,
    text: str,
    *,
    progress: Callable[[int], None] | None = None,
) -> PostImportResult:
    """Create or update posts from CSV rows, matched on their URL (so importing a file twice
    changes nothing). Rows with errors are skipped and listed; the valid rows are kept.
    ``created``/``updated``/``unchanged`` count posts (distinct urls), ``rows`` and ``failed``
    count rows.

    Columns: platform, url (required), kind, posted_at, influencer (id or name), campaign (id or
    name), reach, views, likes, comments. Empty cells leave an existing post's value as it is.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidCsv("the CSV file is empty; it needs a header row", field="body") from None
    except csv.Error as exc:
        raise InvalidCsv(f"line 1 is not valid CSV: {exc}", field="body") from None
    columns = [name.strip().lower() for name in header]
    for required in ("platform", "url"):
        if required not in columns:
            raise InvalidCsv(f"the header has no {required!r} column", field=required)
    repository = MarketingRepository(session, workspace_id)
    references: dict[tuple[str, str], uuid.UUID | UnknownReference] = {}

    def reference(model: type[Influencer] | type[Campaign], what: str, ref: str) -> uuid.UUID:
        key = (what, ref.strip().lower())
        if key not in references:
            try:
                references[key] = resolve_ref(repository, model, ref, what)
            except UnknownReference as exc:
                references[key] = exc
        found = references[key]
        if isinstance(found, UnknownReference):
            raise found
        return found

    parsed: list[tuple[int, dict[str, Any]]] = []
    errors: list[ImportError_] = []
    rows = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows += 1
            errors.append(
                ImportError_(line=reader.line_num, column=None, code="invalid_csv", reason=str(exc))
            )
            break
        if not any(cell.strip() for cell in record):
            continue
        rows += 1
        line = reader.line_num
        cells = {
            name: record[index].strip() if index < len(record) else ""
            for index, name in enumerate(columns)
            if name in _IMPORT_COLUMNS
        }
        row_errors = _RowErrors(line)
        values = _import_row(cells, row_errors, reference)
        if row_errors.errors:
            errors.extend(row_errors.errors)
        else:
            parsed.append((line, values))
        if progress is not None:
            progress(1)
    # A url on several rows is one post: the later row's non-empty cells win.
    merged: dict[str, dict[str, Any]] = {}
    for _line, values in parsed:
        merged.setdefault(values["url"], {}).update(values)
    created = updated = unchanged = 0
    existing = repository.posts_by_url(set(merged))
    now = utcnow()
    try:
        # A savepoint: a concurrent import that created one of these urls first must answer
        # 409, not leave the caller's transaction broken.
        with session.begin_nested():
            for values in merged.values():
                outcome = _upsert(session, workspace_id, existing, values, now)
                created += outcome == "created"
                updated += outcome == "updated"
                unchanged += outcome == "unchanged"
    except IntegrityError:
        raise PostExists(
            "another import created some of these posts at the same time; import again",
            field="url",
        ) from None
    failed_lines = {error.line for error in errors}
    return PostImportResult(
        rows=rows,
        created=created,
        updated=updated,
        unchanged=unchanged,
        failed=len(failed_lines),
        errors=errors,
    )


def _upsert(
    session: Session,
    workspace_id: uuid.UUID,
    existing: dict[str, Post],
    values: dict[str, Any],
    now: datetime,
) -> str:
    post = existing.get(values["url"])
    if post is None:
        post = Post(
            id=new_id(),
            workspace_id=workspace_id,
            kind=values.pop("kind", "post"),
            created_at=now,
            updated_at=now,
            **values,
        )
        session.add(post)
        existing[post.url] = post
        return "created"
    changed = {
        name: value for name, value in values.items() if not _same(getattr(post, name), value)
    }
    if not changed:
        return "unchanged"
    for name, value in changed.items():
        setattr(post, name, value)
    post.updated_at = now
    return "updated"


def _import_row(
    cells: Mapping[str, str],
    errors: _RowErrors,
    reference: Callable[[type[Influencer] | type[Campaign], str, str], uuid.UUID],
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    nul_columns = [column for column, cell in cells.items() if "\x00" in cell]
    if nul_columns:
        # PostgreSQL text cannot hold NUL; such a row is not read any further.
        for column in nul_columns:
            errors.add(column, "invalid_text", "the cell contains a NUL character")
        return values
    platform = cells.get("platform", "")
    if not platform:
        errors.add("platform", "missing", "platform is required")
    elif not PLATFORM.match(platform.lower()):
        errors.add("platform", "invalid_platform", f"{platform!r} is not a platform name")
    else:
        values["platform"] = platform.lower()
    url = cells.get("url", "")
    if not url:
        errors.add("url", "missing", "url is required")
    elif len(url) > 2000 or parse_web_url(url) is None:
        errors.add("url", "invalid_url", "not an absolute http(s) URL of at most 2000 characters")
    else:
        values["url"] = url
    kind = cells.get("kind", "").lower()
    if kind:
        if kind in _KINDS:
            values["kind"] = kind
        else:
            errors.add("kind", "invalid_kind", f"kind must be one of {', '.join(sorted(_KINDS))}")
    posted_at = cells.get("posted_at", "")
    if posted_at:
        try:
            values["posted_at"] = _parse_time(posted_at)
        except ValueError:
            errors.add(
                "posted_at", "invalid_datetime", "not an ISO 8601 date or time (2026-03-01T10:00Z)"
            )
    for column, model in (("influencer", Influencer), ("campaign", Campaign)):
        ref = cells.get(column, "")
        if ref:
            try:
                values[f"{column}_id"] = reference(model, column, ref)
            except UnknownReference as exc:
                errors.add(column, f"unknown_{column}", exc.message)
    for metric in _METRICS:
        cell = cells.get(metric, "")
        if cell:
            try:
                values[metric] = _parse_count(cell)
            except ValueError:
                errors.add(metric, "invalid_number", f"{metric} must be a whole number >= 0")
    return values
