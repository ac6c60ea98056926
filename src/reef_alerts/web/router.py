"""`make_router`: the endpoints the web app mounts to preview alerts and read their live state.
The web app's own session and auth dependencies are passed in, never imported (ADR 19)."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from enum import Enum
from typing import Annotated, Any, NoReturn

import attrs
from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from reef_alerts.adapters.clock import SystemClock
from reef_alerts.adapters.history import AsyncSqlHistoryReader
from reef_alerts.adapters.reports import (
    line_of,
    open_event,
    open_events_query,
    report_query,
)
from reef_alerts.adapters.rows import UnreadableColumnError
from reef_alerts.adapters.schema import Catalogue, UnknownGenerationError, catalogue
from reef_alerts.application.preview import (
    AsyncPreviewAlert,
    NotFoundError,
    Preview,
    Previews,
    Span,
)
from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    EvaluationPolicy,
    InvalidAlertError,
    RuleOptions,
)
from reef_alerts.domain.rules import DEFAULT_POLICY
from reef_alerts.entrypoints.wire import preview_json
from reef_alerts.ports import Clock
from reef_alerts.web.models import (
    DraftPreviewIn,
    OpenEventOut,
    PreviewOut,
    ProblemOut,
    RangeIn,
    StateOut,
    StoredOptionsOut,
    StoredPreviewIn,
)

DEFAULT_STEP = timedelta(seconds=30)
"""The worker's default --interval: what a preview evaluates at unless told otherwise."""

_LARGEST_ID = 2**31 - 1
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {"model": ProblemOut, "description": "No such alert or device."},
    status.HTTP_409_CONFLICT: {
        "model": ProblemOut,
        "description": "The stored alert or device has a row the worker cannot judge.",
    },
    status.HTTP_503_SERVICE_UNAVAILABLE: {
        "model": ProblemOut,
        "description": "The database has no tables the worker knows.",
    },
}


def make_router(
    get_session: Callable[..., Any],
    authorize: Callable[..., Any],
    *,
    policy: EvaluationPolicy = DEFAULT_POLICY,
    defaults: RuleOptions = DEFAULT_OPTIONS,
    step: timedelta = DEFAULT_STEP,
    clock: Clock | None = None,
    tags: list[str | Enum] | None = None,
) -> APIRouter:
    """The router: mount it with `app.include_router(router, prefix="/api")`.

    `get_session` is the web app's dependency that yields an AsyncSession (asyncpg or
    aiosqlite); `authorize` its auth dependency, run before every endpoint. `policy`,
    `defaults` and `step` should be the worker's (its REEF_ALERTS_* settings and --interval),
    so that a preview replays what the worker would do."""
    router = APIRouter(tags=tags or ["alerts"], dependencies=[Depends(authorize)])
    previews = Previews(policy, defaults)
    catalogues = _Catalogues()
    now = (clock or SystemClock()).now
    Session = Annotated[AsyncSession, Depends(get_session)]  # noqa: N806 - type aliases
    AlertId = Annotated[int, Path(ge=1, le=_LARGEST_ID)]  # noqa: N806

    async def previewing(session: AsyncSession) -> AsyncPreviewAlert:
        reader = AsyncSqlHistoryReader(session, await catalogues.of(session))
        return AsyncPreviewAlert(reader, previews)

    @router.post(
        "/alerts/preview",
        response_model=PreviewOut,
        responses=_PROBLEMS,
        summary="Preview a draft alert on its device's history",
    )
    async def preview_draft(body: DraftPreviewIn, session: Session) -> JSONResponse:
        """What the draft alert would have done over the range, as the worker would have
        judged it, and what it would have done with the default options alone where the
        options tried differ. Writes nothing."""
        span = _span(body.range, now, step)
        with _problems():
            use = await previewing(session)
            preview = await use.draft(body.alert.to_domain(), body.options.changes(), span)
        return _preview_response(preview)

    @router.post(
        "/alerts/{alert_id}/preview",
        response_model=PreviewOut,
        responses=_PROBLEMS,
        summary="Preview a stored alert, with changes tried, on its device's history",
    )
    async def preview_stored(
        alert_id: AlertId, session: Session, body: StoredPreviewIn | None = None
    ) -> JSONResponse:
        """What stored alert `alert_id` would have done over the range with the threshold,
        operator and options tried, and what it did as stored where that differs. Writes
        nothing."""
        body = body or StoredPreviewIn()
        span = _span(body.range, now, step)
        with _problems():
            use = await previewing(session)
            preview = await use.stored(alert_id, body.changes(), span)
        return _preview_response(preview)

    @router.get(
        "/alerts/{alert_id}/state",
        response_model=StateOut,
        responses=_PROBLEMS,
        summary="The live state of an alert, as the worker last found it",
    )
    async def alert_state(alert_id: AlertId, session: Session) -> StateOut:
        """Its state (ok, pending, firing, no_data, skipped, error, disabled), since when and
        why, its open events and its own options, from the worker's tables."""
        with _problems():
            found = await catalogues.of(session)
            row = (await session.execute(report_query(found, alert_id))).first()
            if row is None:
                raise NotFoundError(f"there is no alert {alert_id}")
            events = (await session.execute(open_events_query(found.tables, alert_id))).all()
        line = line_of(row, found.recorded)
        return StateOut(
            alert_id=line.alert_id,
            device=line.device,
            condition=line.condition,
            state=line.state,
            since=line.since,
            reason=line.reason,
            pending_since=line.since if line.state == "pending" else None,
            open_events=[OpenEventOut(**attrs.asdict(open_event(e))) for e in events],
            options=None if line.rule is None else StoredOptionsOut(**line.rule._asdict()),
        )

    return router


def _span(asked: RangeIn, now: Callable[[], Any], step: timedelta) -> Span:
    try:
        start, end = asked.bounds(now())
    except ValueError as error:
        _unprocessable(("body", "range"), str(error))
    return Span(start, end, asked.step or step)


def _preview_response(preview: Preview) -> JSONResponse:
    # The wire format is written once, for the CLI's --json too; PreviewOut describes it, and
    # the tests hold the two together. Validating 20,000 evaluations again would cost more than
    # the replay (docs/performance.md, issue 14).
    return JSONResponse(preview_json(preview))


@contextmanager
def _problems() -> Iterator[None]:
    """The use case's errors as the HTTP answers the router documents."""
    try:
        yield
    except NotFoundError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except (InvalidAlertError, UnreadableColumnError) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    except UnknownGenerationError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from None


def _unprocessable(location: tuple[str, ...], message: str) -> NoReturn:
    """A 422 shaped as FastAPI's own validation errors are."""
    raise HTTPException(
        422,  # named differently across Starlette's versions
        [{"type": "value_error", "loc": list(location), "msg": message}],
    )


class _Catalogues:
    """The database's catalogue, looked up at most once a minute: `reef-alerts db upgrade`
    run while the web app is up is seen within that."""

    _FOR = 60.0

    def __init__(self) -> None:
        self._found: Catalogue | None = None
        self._at = 0.0

    async def of(self, session: AsyncSession) -> Catalogue:
        if self._found is None or time.monotonic() - self._at > self._FOR:
            self._found = await session.run_sync(lambda s: catalogue(s.connection()))
            self._at = time.monotonic()
        return self._found
