"""The segment lookup API: a FastAPI app that the Airflow plugin mounts on the api-server at /segmentation.

Endpoints (JSON; OpenAPI docs at /segmentation/docs):

    GET /shops/{shop_id}/history                       a shop's segment in every published month
    GET /months                                        the published months (model_runs)
    GET /months/{month}/segments                       the month's segments: size, share, profile
    GET /months/{month}/segments/{segment_id}/shops    the segment's shops in that month
    GET /months/{month}/transitions?from_month=        shops per (segment then, segment now)

Lists that can be long take ``limit`` and ``offset`` and say ``total_entries``, as Airflow's REST API does.
Every endpoint needs what Airflow's REST API needs: a JWT from ``POST /auth/token`` as a bearer token (or the
UI's session cookie), checked by Airflow's own dependency, and the permission to read assets (the segments
are published as the ``segmentation_segments`` asset). No token: 401; a token that does not verify: 403.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..months import add_months
from ..warehouse.duckdb import WarehouseBusyError
from . import lookup

log = logging.getLogger(__name__)
URL_PREFIX = "/segmentation"
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
DEFAULT_PAGE, MAX_PAGE = 100, 1000
BUSY_RETRY_SECONDS = 5

Month = Annotated[str, Path(pattern=MONTH_PATTERN, description="a month, YYYY-MM", examples=["2024-03"])]
ShopId = Annotated[str, Path(min_length=1, max_length=256, description="the shop's (or customer's) id")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="entries per page")]
Offset = Annotated[int, Query(ge=0, description="entries to skip")]


class ShopSegment(BaseModel):
    month: str
    segment_id: int = Field(description="-1 = noise; 900-999 = lifecycle segments; ids are stable across models")
    segment_name: str
    membership_strength: float = Field(description="0..1: how firmly the shop belongs to its segment")
    lifecycle: bool = Field(description="the segment comes from a lifecycle rule (ids 900-999), not the model")
    eligible: bool = Field(description="the shop's history was long enough for the model")
    model_version: str = Field(description="the model that scored the month")


class ShopHistory(BaseModel):
    shop_id: str
    history: list[ShopSegment] = Field(description="oldest month first")
    total_entries: int


class MonthRun(BaseModel):
    month: str
    decision: str = Field(description="train | reuse | skip")
    reason: str
    model_version: str | None = Field(description="the model that scored the month; null in a warm-up month")
    shops: int
    segments: int
    noise_share: float | None
    published_at: datetime


class MonthCollection(BaseModel):
    months: list[MonthRun]
    total_entries: int


class SegmentProfile(BaseModel):
    segment_id: int
    name: str
    lifecycle: bool
    shops: int
    share: float
    mean_strength: float | None
    medians: dict[str, float | None] = Field(description="median features of the segment's shops")


class MonthSegments(BaseModel):
    month: str
    run: MonthRun
    segments: list[SegmentProfile]
    total_entries: int


class Transition(BaseModel):
    from_segment_id: int | None = Field(description="null: the shop was not segmented in from_month")
    from_segment_name: str | None
    to_segment_id: int | None = Field(description="null: the shop is not segmented in the month")
    to_segment_name: str | None
    shops: int


class MonthTransitions(BaseModel):
    from_month: str
    to_month: str
    transitions: list[Transition] = Field(description="largest first")
    total_entries: int


class SegmentMember(BaseModel):
    shop_id: str
    membership_strength: float
    eligible: bool
    model_version: str


class SegmentMembers(BaseModel):
    month: str
    segment_id: int
    segment_name: str
    shops: list[SegmentMember] = Field(description="in shop id order")
    total_entries: int


def reader_from_airflow():
    """The configured warehouse's reader, with settings resolved as Airflow tasks resolve them."""
    from ..airflow_settings import settings_in_airflow

    return lookup.reader_for(settings_in_airflow())


async def _reader(request: Request):
    """The app's warehouse reader, opened on first use (a failure is logged and retried on the next request).

    A coroutine, so that a request does not hop to a worker thread for it; opening happens once (it reads the
    settings, the Airflow Variable among them) and briefly blocks the event loop then."""
    state = request.app.state
    if state.reader is None:
        with state.reader_lock:
            if state.reader is None:
                try:
                    state.reader = state.open_reader()
                except Exception:
                    log.exception("segment lookup: cannot open the warehouse")
                    raise HTTPException(
                        status.HTTP_503_SERVICE_UNAVAILABLE,
                        "the segment warehouse is not available; see the api-server log",
                    ) from None
    return state.reader


Reader = Annotated[object, Depends(_reader)]


def _page(items: list, limit: int, offset: int) -> list:
    return items[offset : offset + limit]


def _published_run(reader, month: str) -> dict:
    run = lookup.month_run(reader, month)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"month {month} is not published in the warehouse")
    return run


def shop_history(shop_id: ShopId, reader: Reader, limit: Limit = DEFAULT_PAGE, offset: Offset = 0) -> ShopHistory:
    """The shop's segment, strength, lifecycle flag and model version in every published month."""
    history = lookup.shop_history(reader, shop_id)
    if not history:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"shop {shop_id!r} has no segments in the warehouse")
    return ShopHistory(shop_id=shop_id, history=_page(history, limit, offset), total_entries=len(history))


def months(reader: Reader) -> MonthCollection:
    """Every published month with its decision, scoring model, shops, segments and noise share."""
    runs = lookup.published_months(reader)
    return MonthCollection(months=runs, total_entries=len(runs))


def month_segments(month: Month, reader: Reader) -> MonthSegments:
    """The month's segments (noise as -1): size, share, mean strength and median features."""
    run = _published_run(reader, month)
    profiles = lookup.segment_profiles(reader, month)
    return MonthSegments(month=month, run=run, segments=profiles, total_entries=len(profiles))


def segment_shops(
    month: Month, segment_id: int, reader: Reader, limit: Limit = DEFAULT_PAGE, offset: Offset = 0
) -> SegmentMembers:
    """One page of the shops in a segment in the month."""
    _published_run(reader, month)
    profile = lookup.segment_profile(reader, month, segment_id)
    if profile is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"month {month} has no segment {segment_id}")
    members = lookup.segment_members(reader, month, segment_id, limit, offset)
    return SegmentMembers(
        month=month, segment_id=segment_id, segment_name=profile["name"], shops=members, total_entries=profile["shops"]
    )


def month_transitions(
    month: Month,
    reader: Reader,
    from_month: Annotated[
        str | None, Query(pattern=MONTH_PATTERN, description="the earlier month (default: the month before)")
    ] = None,
    limit: Limit = DEFAULT_PAGE,
    offset: Offset = 0,
) -> MonthTransitions:
    """How many shops went from each segment in from_month to each segment in the month."""
    earlier = from_month or add_months(month, -1)
    for wanted in (earlier, month):
        _published_run(reader, wanted)
    moves = lookup.transitions(reader, earlier, month)
    return MonthTransitions(
        from_month=earlier, to_month=month, transitions=_page(moves, limit, offset), total_entries=len(moves)
    )


def _busy(request: Request, exc: WarehouseBusyError) -> JSONResponse:
    return JSONResponse(
        {"detail": "the warehouse is being written; try again shortly"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(BUSY_RETRY_SECONDS)},
    )


def _nothing_published(request: Request, exc: FileNotFoundError) -> JSONResponse:
    return JSONResponse(
        {"detail": "the warehouse has nothing published yet"}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE
    )


def airflow_access():
    """Airflow's own check: a valid Airflow JWT (bearer or UI cookie) of a user allowed to read assets."""
    from airflow.api_fastapi.core_api.security import requires_access_asset

    return Depends(requires_access_asset("GET"))


@contextlib.asynccontextmanager
async def _close_reader_on_shutdown(app: FastAPI):
    yield
    reader = app.state.reader
    if hasattr(reader, "close"):  # DuckDBReader: lets go of the file and stops its watcher
        reader.close()


def create_app(open_reader: Callable[[], object] = reader_from_airflow) -> FastAPI:
    """The lookup API. open_reader gives the warehouse reader, called on the first request."""
    app = FastAPI(
        title="Segment lookup",
        version="1",
        lifespan=_close_reader_on_shutdown,
        description=__doc__.split("\n\n", 1)[1],
        dependencies=[airflow_access()],
    )
    app.state.open_reader = open_reader
    app.state.reader = None
    app.state.reader_lock = threading.Lock()
    app.add_exception_handler(WarehouseBusyError, _busy)
    app.add_exception_handler(FileNotFoundError, _nothing_published)
    app.get("/shops/{shop_id}/history", response_model=ShopHistory)(shop_history)
    app.get("/months", response_model=MonthCollection)(months)
    app.get("/months/{month}/segments", response_model=MonthSegments)(month_segments)
    app.get("/months/{month}/segments/{segment_id}/shops", response_model=SegmentMembers)(segment_shops)
    app.get("/months/{month}/transitions", response_model=MonthTransitions)(month_transitions)
    return app
