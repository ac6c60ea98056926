"""`make_router`: the endpoints the web app mounts to preview alerts and read their live state.
The web app's own session and auth dependencies are passed in, never imported (ADR 19)."""

import json
import logging
import weakref
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import Enum
from typing import Annotated, Any, NoReturn

import anyio.to_thread
import attrs
from anyio import CapacityLimiter
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BeforeValidator, ValidationError
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from reef_alerts.adapters import notify_admin
from reef_alerts.adapters.clock import SystemClock
from reef_alerts.adapters.history import AsyncSqlHistoryReader
from reef_alerts.adapters.outbox import NoOutboxError
from reef_alerts.adapters.reports import line_of, open_event, open_events_query, report_query
from reef_alerts.adapters.rows import UnreadableColumnError
from reef_alerts.adapters.schema import Catalogue, UnknownGenerationError, catalogue
from reef_alerts.adapters.tables import Generation
from reef_alerts.application.preview import (
    AsyncPreviewAlert,
    NotFoundError,
    Preview,
    Previews,
    Span,
)
from reef_alerts.config import DEFAULT_INTERVAL
from reef_alerts.domain import DEFAULT_OPTIONS, EvaluationPolicy, InvalidAlertError, RuleOptions
from reef_alerts.domain.rules import DEFAULT_POLICY
from reef_alerts.ports import Clock
from reef_alerts.web.models import (
    LARGEST_ID,
    AckIn,
    AckOut,
    DraftPreviewIn,
    OpenEventOut,
    PreviewOut,
    ProblemOut,
    RangeIn,
    StateOut,
    StoredOptionsOut,
    StoredPreviewIn,
)
from reef_alerts.wire import preview_json

_log = logging.getLogger("reef_alerts.web")

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {"model": ProblemOut, "description": "No such alert or device."},
    status.HTTP_409_CONFLICT: {
        "model": ProblemOut,
        "description": "The stored alert, its options or its device has a row the worker "
        "cannot judge.",
    },
    status.HTTP_503_SERVICE_UNAVAILABLE: {
        "model": ProblemOut,
        "description": "The database has no tables the worker knows, or could not answer.",
    },
}


def _digits(raw: object) -> object:
    """A path's id written as plain digits, so that one alert has one URL (not `1_0`, `+1`)."""
    if isinstance(raw, str) and not (raw.isascii() and raw.isdigit()):
        raise ValueError("must be written as digits")
    return raw


AlertId = Annotated[int, Path(ge=1, le=LARGEST_ID), BeforeValidator(_digits)]
EventId = Annotated[int, Path(ge=1, le=LARGEST_ID), BeforeValidator(_digits)]


def make_router(
    get_session: Callable[..., Any],
    authorize: Callable[..., Any],
    *,
    policy: EvaluationPolicy = DEFAULT_POLICY,
    defaults: RuleOptions = DEFAULT_OPTIONS,
    step: timedelta = DEFAULT_INTERVAL,
    clock: Clock | None = None,
    replays: int = 2,
    tags: list[str | Enum] | None = None,
) -> APIRouter:
    """The router: mount it with `app.include_router(router, prefix="/api")`.

    `get_session` is the web app's dependency that yields an AsyncSession (asyncpg or
    aiosqlite); `authorize` its auth dependency, run for every route. `policy`, `defaults`
    and `step` should be the worker's (its REEF_ALERTS_* settings and --interval), so that a
    preview replays what the worker would do. At most `replays` previews replay at once, each
    in a worker thread; the others wait their turn."""
    if step < timedelta(seconds=1):
        raise ValueError(f"step must be 1s or longer, got {step}")
    if replays < 1:
        raise ValueError(f"replays must be 1 or more, got {replays}")
    router = APIRouter(
        tags=tags or ["alerts"], dependencies=[Depends(authorize)], route_class=_Route
    )
    previews = Previews(policy, defaults)
    catalogues = _Catalogues()
    now = (clock or SystemClock()).now
    limiter = CapacityLimiter(replays)
    Session = Annotated[AsyncSession, Depends(get_session)]  # noqa: N806 - a type alias

    async def offload(replay: Callable[..., Preview], *args: Any) -> Preview:
        return await anyio.to_thread.run_sync(replay, *args, limiter=limiter)

    async def previewing(session: AsyncSession) -> AsyncPreviewAlert:
        """The use case on this request's session."""
        reader = AsyncSqlHistoryReader(session, await catalogues.of(session))
        return AsyncPreviewAlert(reader, previews, offload)

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
        span = _span(body.range, now(), step)
        with _problems(catalogues, session):
            use = await previewing(session)
            preview = await use.draft(body.alert.to_domain(), body.options.changes(), span)
        return JSONResponse(preview_json(preview))

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
        span = _span(body.range, now(), step)
        with _problems(catalogues, session):
            use = await previewing(session)
            preview = await use.stored(alert_id, body.changes(), span)
        # The wire format is written once, for the CLI's --json too; PreviewOut describes it,
        # and the tests hold the two together (ADR 19).
        return JSONResponse(preview_json(preview))

    @router.get(
        "/alerts/{alert_id}/state",
        response_model=StateOut,
        responses=_PROBLEMS,
        summary="The live state of an alert, as the worker last found it",
    )
    async def alert_state(alert_id: AlertId, session: Session) -> StateOut:
        """Its state (ok, pending, firing, no_data, skipped, error, disabled), since when and
        why, its open events and its own options, from the worker's tables."""
        with _problems(catalogues, session):
            found = await catalogues.of(session)
            row = (await session.execute(report_query(found, alert_id))).first()
            if row is None:
                raise NotFoundError(f"there is no alert {alert_id}")
            events = (await session.execute(open_events_query(found.tables, alert_id))).all()
        line = line_of(row, found.recorded)
        try:
            options = None if line.rule is None else StoredOptionsOut(**line.rule._asdict())
        except ValidationError:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"alert {alert_id}'s options cannot be read: {tuple(line.rule or ())!r}",
            ) from None
        return StateOut(
            alert_id=line.alert_id,
            device=line.device,
            condition=line.condition,
            state=line.state,
            since=line.since,
            reason=line.reason,
            pending_since=line.since if line.state == "pending" else None,
            open_events=[OpenEventOut(**attrs.asdict(open_event(e))) for e in events],
            options=options,
        )

    @router.post(
        "/events/{event_id}/ack",
        response_model=AckOut,
        responses=_PROBLEMS,
        summary="Acknowledge an open event: its reminders and escalation stop",
    )
    async def acknowledge(event_id: EventId, session: Session, body: AckIn | None = None) -> AckOut:
        """Record who acknowledged open event `event_id`, and why; the worker sends no more
        reminders of it, nor its escalation. An event acknowledged before keeps its first
        acknowledgement, which is answered. 404 for no such event, 409 for a resolved one, 503
        where `reef-alerts db upgrade` has not added the notification tables."""
        body = body or AckIn()
        at = now()
        with _problems(catalogues, session):
            try:
                done = await session.run_sync(
                    lambda s: notify_admin.acknowledge_on(
                        s.connection(), event_id, at, body.by, body.note
                    )
                )
            except notify_admin.NoSuchEventError as error:
                raise NotFoundError(str(error)) from None
            except NoOutboxError as error:
                raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from None
            except notify_admin.NotifyAdminError as error:
                raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
            await session.commit()
        return AckOut(
            event_id=done.event_id,
            alert_id=done.alert_id,
            acknowledged_at=done.at,
            by=done.by,
            note=done.note,
        )

    return router


def _span(asked: RangeIn, now: datetime, step: timedelta) -> Span:
    try:
        start, end = asked.bounds(now)
    except ValueError as error:
        _unprocessable(("body", "range"), str(error))
    return Span(start, end, asked.step or step)


@contextmanager
def _problems(catalogues: "_Catalogues", session: AsyncSession) -> Iterator[None]:
    """The use case's and the database's errors as the HTTP answers the router documents."""
    try:
        yield
    except NotFoundError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except (InvalidAlertError, UnreadableColumnError) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    except UnknownGenerationError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from None
    except DBAPIError as error:
        # A table changed under a cached catalogue, a missing table, a database that is down:
        # look again next time. The statement and its parameters stay in the log.
        catalogues.forget(session)
        _log.warning("a preview's read failed", exc_info=True)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the database could not answer ({type(error.orig).__name__}); "
            "the web app's log has the details",
        ) from None


def _unprocessable(location: tuple[str, ...], message: str) -> NoReturn:
    """A 422 shaped as FastAPI's own validation errors are."""
    raise HTTPException(
        422,  # named differently across Starlette's versions
        [{"type": "value_error", "loc": list(location), "msg": message}],
    )


class _Route(APIRoute):
    """FastAPI's route, whose 422 can always be written: an input that JSON cannot carry (NaN,
    infinity, a lone surrogate) is left out of the error rather than failing the answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                problems = [_writable(problem) for problem in error.errors()]
                return JSONResponse({"detail": problems}, status_code=422)

        return handle


def _writable(problem: Any) -> Any:
    problem = {k: v for k, v in problem.items() if k != "ctx" or "error" not in v}
    encoded = jsonable_encoder(problem)
    try:
        json.dumps(encoded, allow_nan=False, ensure_ascii=False).encode()  # as Starlette writes
    except (ValueError, UnicodeEncodeError):
        encoded = jsonable_encoder({k: v for k, v in problem.items() if k not in ("input", "ctx")})
    return encoded


class _Catalogues:
    """What each database the sessions are bound to holds: its generation found once, the
    worker's tables looked for on every request (one catalogue query), so that a `db upgrade`
    is seen at once. On PostgreSQL, each request's timestamps are read as ISO text whatever
    the host's DateStyle."""

    def __init__(self) -> None:
        self._generations: weakref.WeakKeyDictionary[Engine, Generation] = (
            weakref.WeakKeyDictionary()
        )

    async def of(self, session: AsyncSession) -> Catalogue:
        bind = _engine(session)
        known = self._generations.get(bind)
        if bind.dialect.name == "postgresql":
            await session.execute(text("SET LOCAL datestyle TO 'ISO, YMD'"))
        found = await session.run_sync(lambda s: catalogue(s.connection(), known))
        self._generations[bind] = found.tables.generation
        return found

    def forget(self, session: AsyncSession) -> None:
        self._generations.pop(_engine(session), None)


def _engine(session: AsyncSession) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine
