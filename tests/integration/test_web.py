"""The web app's router (reef_alerts.web) through a real FastAPI app, on PostgreSQL (asyncpg)
and SQLite (aiosqlite) of both generations: previews, live state, auth, bad bodies, unknown ids.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI, HTTPException, status
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Engine, NullPool, make_url, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from reef_alerts.adapters import notify_admin, rule_store, schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.tables import Generation
from reef_alerts.domain import RuleOptions
from reef_alerts.web import make_router
from reef_alerts.web.models import AckOut, PreviewOut, StateOut

from .reef import (
    NOW,
    FixedClock,
    add_alert,
    add_device,
    add_reading,
    events,
    make_app_tables,
    run_cycle,
    tables_of,
)
from .test_cli import invoke
from .test_preview import a_hovering_heater

RANGE = {
    "from": (NOW - timedelta(hours=2)).isoformat(),
    "to": (NOW + timedelta(minutes=1)).isoformat(),
}


def async_url(url: str) -> str:
    """The database's URL with the asynchronous driver the web app uses."""
    parsed = make_url(url)
    driver = "asyncpg" if parsed.get_backend_name() == "postgresql" else "aiosqlite"
    return parsed.set(drivername=f"{parsed.get_backend_name()}+{driver}").render_as_string(False)


async def nobody_is_let_in() -> None:
    """The host app's auth dependency, refusing every request."""
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not authenticated")


async def everyone_is_let_in() -> str:
    return "keeper"


def web_app(url: str, authorize: Any = everyone_is_let_in) -> FastAPI:
    """A host app as the web app is one: its own session dependency, the router under /api."""
    # No pool: each request's connection belongs to the event loop that serves it.
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session

    app = FastAPI()
    app.include_router(make_router(get_db, authorize, clock=FixedClock(NOW)), prefix="/api")
    return app


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(web_app(str(engine.url.render_as_string(False)))) as client:
        yield client


@pytest.fixture
def client_on() -> Any:
    """A TestClient on a host app on the database at a URL."""
    return lambda url: TestClient(web_app(url))


Model = TypeVar("Model", bound=BaseModel)


def answered(response: httpx.Response, model: type[Model]) -> Model:
    """A 200 answer, read as the OpenAPI model that describes it (which forbids extra keys)."""
    assert response.status_code == 200, response.text
    return model.model_validate(response.json())


class TestPreview:
    def test_a_stored_alert_with_changes_answers_what_the_cli_prints(
        self, engine: Engine, client: TestClient, tmp_path: Path
    ) -> None:
        url = a_hovering_heater(engine)
        rule_store.set_rule(engine, 1, {"recovery_margin": 0.1})

        response = client.post(
            "/api/alerts/1/preview",
            json={"options": {"pending": "5m", "recovery_margin": 0.3}, "range": RANGE},
        )
        code, out, err = invoke(
            [
                "preview",
                "--alert",
                "1",
                "--pending",
                "5m",
                "--recovery-margin",
                "0.3",
                "--since",
                "2h1m",
                "--until",
                RANGE["to"],
                "--json",
            ],
            tmp_path,
            DATABASE_URL=url,
        )

        assert code == 0, err
        found = answered(response, PreviewOut)  # what OpenAPI says it is
        assert response.json() == json.loads(out)
        assert found.timeline.counts.events == 0
        assert found.compared is not None
        assert found.compared.options.recovery_margin == 0.1  # as stored
        assert found.compared.timeline.counts.events == 12
        assert events(engine) == []  # a preview writes nothing

    def test_a_stored_alert_with_a_threshold_tried_fires_where_it_would_have(
        self, engine: Engine, client: TestClient
    ) -> None:
        a_hovering_heater(engine)

        response = client.post(
            "/api/alerts/1/preview",
            json={"threshold_value": 82.25, "operator": ">=", "range": RANGE},
        )

        found = answered(response, PreviewOut)
        assert found.alert.threshold_value == 82.25
        assert found.alert.operator.value == ">="
        assert found.compared is not None  # as stored: > 82
        tried, stored = found.timeline.counts, found.compared.timeline.counts
        assert 0 < tried.time_in_alert_seconds < stored.time_in_alert_seconds

    def test_an_empty_body_replays_the_stored_alert_over_the_last_day(
        self, engine: Engine, client: TestClient
    ) -> None:
        a_hovering_heater(engine)

        response = client.post("/api/alerts/1/preview")

        answered(response, PreviewOut)
        timeline = response.json()["timeline"]
        assert timeline["to"] == NOW.isoformat()
        assert timeline["from"] == (NOW - timedelta(hours=24)).isoformat()
        assert response.json()["compared"] is None  # nothing was changed

    def test_a_draft_is_replayed_with_its_options_and_the_defaults_alone(
        self, engine: Engine, client: TestClient
    ) -> None:
        a_hovering_heater(engine)

        response = client.post(
            "/api/alerts/preview",
            json={
                "alert": {
                    "device_id": 1,
                    "metric": "temperature",
                    "operator": ">",
                    "threshold_value": 82,
                    "alert_metadata": {"note": "from the form"},
                },
                "options": {"pending": "5m", "recovery_margin": 0.3},
                "range": {"last": "2h1m", "to": RANGE["to"], "step": "1m"},
            },
        )

        found = answered(response, PreviewOut)
        assert found.alert.id is None
        assert found.timeline.step_seconds == 60
        assert found.timeline.counts.evaluations == 122
        assert found.compared is not None
        assert found.compared.options.pending_seconds == 0  # the defaults alone
        assert found.compared.timeline.counts.events > found.timeline.counts.events

    def test_a_trend_draft_is_replayed_with_its_forecast_event(
        self, engine: Engine, client: TestClient
    ) -> None:
        a_hovering_heater(engine)
        add_device(engine, 2, "Display Tank Heater")
        for minute in range(120):  # warming 1.8 °F an hour, past 82 at 100 minutes
            add_reading(engine, 2, 79.0 + 0.03 * minute, age=timedelta(minutes=119 - minute))
        draft = {"device_id": 2, "metric": "temperature", "operator": ">", "threshold_value": 82}

        response = client.post(
            "/api/alerts/preview", json={"alert": {**draft, "trend_enabled": True}, "range": RANGE}
        )

        found = answered(response, PreviewOut)
        forecast, threshold = found.timeline.events
        assert (forecast.kind, threshold.kind) == ("forecast", "threshold")
        assert forecast.opened_at < threshold.opened_at == forecast.resolved_at
        counts = found.timeline.counts
        assert (counts.events, counts.forecast_events, counts.rate_events) == (1, 1, 0)


def test_httpx_async_client_previews_a_draft_on_the_event_loop(engine: Engine) -> None:
    a_hovering_heater(engine)
    app = web_app(str(engine.url.render_as_string(False)))
    draft = {"device_id": 1, "metric": "temperature", "operator": "<", "threshold_value": 81.8}

    async def ask() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reef") as client:
            return list(
                await asyncio.gather(
                    client.post("/api/alerts/preview", json={"alert": draft, "range": RANGE}),
                    client.get("/api/alerts/1/state"),
                )
            )

    preview, state = asyncio.run(ask())

    assert answered(preview, PreviewOut).timeline.counts.events == 12
    assert answered(state, StateOut).condition == "temperature > 82"


class TestState:
    def test_a_firing_alert_shows_its_open_event(self, engine: Engine, client: TestClient) -> None:
        schema.upgrade(engine)
        add_device(engine, 1, "Display Tank Heater")
        add_alert(engine, 1, 1, "temperature", ">", 82.0)
        add_reading(engine, 1, 84.5)
        run_cycle(engine)

        response = client.get("/api/alerts/1/state")

        found = answered(response, StateOut)
        assert (found.state, found.device, found.condition) == (
            "firing",
            "Display Tank Heater",
            "temperature > 82",
        )
        assert [(e.kind, e.current_value) for e in found.open_events] == [("threshold", 84.5)]
        assert found.since == found.open_events[0].triggered_at
        assert found.options is None

    def test_a_pending_alert_says_since_when_and_its_options(
        self, engine: Engine, client: TestClient
    ) -> None:
        schema.upgrade(engine)
        add_device(engine, 1)
        add_alert(engine, 1, 1, "temperature", ">", 82.0)
        rule_store.set_rule(engine, 1, {"pending_seconds": 600.0})
        add_reading(engine, 1, 84.5)
        run_cycle(engine, FixedClock(NOW))

        found = answered(client.get("/api/alerts/1/state"), StateOut)

        assert found.state == "pending"
        assert found.pending_since == found.since == NOW
        assert "pending time" in found.reason
        assert found.open_events == []
        assert found.options is not None
        assert found.options.pending_seconds == 600.0

    def test_a_skipped_alert_says_why(self, engine: Engine, client: TestClient) -> None:
        schema.upgrade(engine)
        add_device(engine, 1)
        add_alert(engine, 1, 1, "nitrate", ">", 10.0)
        add_reading(engine, 1, json_value={"temperature": 80.1})
        run_cycle(engine)

        found = answered(client.get("/api/alerts/1/state"), StateOut)

        assert found.state == "skipped"
        assert "nitrate" in found.reason


class TestAck:
    def test_an_open_event_is_acknowledged_and_its_reminders_stop(
        self, engine: Engine, client: TestClient
    ) -> None:
        schema.upgrade(engine)
        add_device(engine, 1, "Display Tank Heater")
        add_alert(engine, 1, 1, "temperature", ">", 82.0)
        add_reading(engine, 1, 84.5)
        run_cycle(engine)
        event_id = events(engine)[0]["id"]

        response = client.post(
            f"/api/events/{event_id}/ack", json={"by": "sam", "note": "new heater on its way"}
        )

        done = answered(response, AckOut)
        assert (done.event_id, done.alert_id, done.by, done.acknowledged_at) == (
            event_id,
            1,
            "sam",
            NOW,
        )
        assert notify_admin.acknowledgements(engine)[1][0].note == "new heater on its way"

    def test_a_missing_or_resolved_event_or_a_database_not_upgraded_is_refused(
        self, engine: Engine, client: TestClient
    ) -> None:
        add_device(engine, 1)
        add_alert(engine, 1, 1, "temperature", ">", 82.0)
        add_reading(engine, 1, 84.5)
        run_cycle(engine)
        assert client.post("/api/events/1/ack").status_code == 503  # no notification tables
        schema.upgrade(engine)
        add_reading(engine, 1, 80.0, age=timedelta(seconds=1))
        run_cycle(engine)

        assert client.post("/api/events/99/ack").status_code == 404
        resolved = client.post("/api/events/1/ack")
        assert resolved.status_code == 409
        assert resolved.json()["detail"] == "event 1 is resolved: there is nothing to stop"


class TestAuth:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/api/alerts/preview"),
            ("POST", "/api/alerts/1/preview"),
            ("GET", "/api/alerts/1/state"),
        ],
    )
    def test_every_endpoint_runs_the_host_apps_auth_first(
        self, sqlite_url: str, method: str, path: str
    ) -> None:
        with TestClient(web_app(sqlite_url, nobody_is_let_in)) as client:
            response = client.request(method, path, json={})

        assert response.status_code == 401
        assert response.json() == {"detail": "not authenticated"}

    def test_overriding_the_auth_dependency_lets_a_request_in(self, engine: Engine) -> None:
        a_hovering_heater(engine)
        app = web_app(str(engine.url.render_as_string(False)), nobody_is_let_in)
        app.dependency_overrides[nobody_is_let_in] = everyone_is_let_in

        with TestClient(app) as client:
            response = client.get("/api/alerts/1/state")

        assert response.status_code == 200, response.text

    def test_overriding_it_the_other_way_shuts_the_door(self, engine: Engine) -> None:
        a_hovering_heater(engine)
        app = web_app(str(engine.url.render_as_string(False)))
        app.dependency_overrides[everyone_is_let_in] = nobody_is_let_in

        with TestClient(app) as client:
            response = client.get("/api/alerts/1/state")

        assert response.status_code == 401


DRAFT = {"device_id": 1, "metric": "temperature", "operator": ">", "threshold_value": 82}


class TestBadRequests:
    @pytest.mark.parametrize(
        ("body", "location", "said"),
        [
            ({"alert": {**DRAFT, "operator": "=>"}}, ["body", "alert", "operator"], "'>'"),
            (
                {"alert": {**DRAFT, "threshold_value": "warm"}},
                ["body", "alert", "threshold_value"],
                "number",
            ),
            ({"alert": {**DRAFT, "device_id": 0}}, ["body", "alert", "device_id"], "greater"),
            ({"alert": {**DRAFT, "metric": ""}}, ["body", "alert", "metric"], "at least 1"),
            ({"alert": {**DRAFT, "colour": "red"}}, ["body", "alert", "colour"], "not permitted"),
            (
                {"alert": DRAFT, "options": {"pending": "soon"}},
                ["body", "options", "pending"],
                "not a duration",
            ),
            (
                {"alert": DRAFT, "options": {"recovery_margin": -1}},
                ["body", "options", "recovery_margin"],
                "greater",
            ),
            (
                {"alert": DRAFT, "options": {"no_data_after": "0s"}},
                ["body", "options", "no_data_after"],
                "more than 0",
            ),
            (
                {"alert": DRAFT, "options": {"pending": 4e9}},
                ["body", "options", "pending"],
                "at most 7d",
            ),
            (
                {"alert": DRAFT, "options": {"pending": -5}},
                ["body", "options", "pending"],
                "0 or more",
            ),
            ({"alert": {**DRAFT, "device_id": True}}, ["body", "alert", "device_id"], "integer"),
            (
                {"alert": {**DRAFT, "trend_enabled": "yes"}},
                ["body", "alert", "trend_enabled"],
                "boolean",
            ),
            (
                {"alert": DRAFT, "range": {"to": "9999-12-31T23:59:59+00:00"}},
                ["body", "range", "to"],
                "between the years 2 and 9998",
            ),
            (
                {"alert": DRAFT, "range": {"from": "0001-01-01T00:00:00+14:00"}},
                ["body", "range", "from"],
                "between the years 2 and 9998",
            ),
            (
                {"alert": DRAFT, "range": {"last": "1h", "from": RANGE["from"]}},
                ["body", "range"],
                "not both",
            ),
            (
                {"alert": DRAFT, "range": {"from": RANGE["to"], "to": RANGE["from"]}},
                ["body", "range"],
                "before",
            ),
            ({"alert": DRAFT, "range": {"step": 0.5}}, ["body", "range"], "1s or longer"),
            ({"alert": DRAFT, "range": {"from": "2026-11-30T12:00"}}, ["body", "range"], "before"),
            ({}, ["body", "alert"], "required"),
        ],
    )
    def test_a_bad_draft_is_a_422_that_says_where_and_why(
        self, sqlite_url: str, body: dict[str, Any], location: list[str], said: str
    ) -> None:
        with TestClient(web_app(sqlite_url)) as client:
            response = client.post("/api/alerts/preview", json=body)

        assert response.status_code == 422, response.text
        problems = response.json()["detail"]
        assert [
            p for p in problems if p["loc"][: len(location)] == location and said in p["msg"]
        ], problems

    @pytest.mark.parametrize(
        ("device", "metric", "threshold", "options"),
        [
            ("1", '"t"', "NaN", "{}"),
            ("NaN", '"t"', "1", "{}"),
            ("1", '"t"', "1e400", "{}"),
            ("1", '"\\ud800"', "1", "{}"),
            ("1", '"t"', "1", '{"pending": Infinity}'),
        ],
    )
    def test_a_value_json_cannot_carry_back_is_still_a_422(
        self, sqlite_url: str, device: str, metric: str, threshold: str, options: str
    ) -> None:
        body = (
            f'{{"alert": {{"device_id": {device}, "metric": {metric}, "operator": ">", '
            f'"threshold_value": {threshold}}}, "options": {options}}}'
        )
        with TestClient(web_app(sqlite_url)) as client:
            response = client.post(
                "/api/alerts/preview", content=body, headers={"content-type": "application/json"}
            )

        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][:2] in (["body", "alert"], ["body", "options"])

    @pytest.mark.parametrize("alert_id", ["1_0", "+1", "01x", "1.0"])
    def test_an_alert_id_not_written_as_digits_is_a_422(
        self, sqlite_url: str, alert_id: str
    ) -> None:
        with TestClient(web_app(sqlite_url)) as client:
            response = client.get(f"/api/alerts/{alert_id}/state")

        assert response.status_code == 422, response.text

    def test_a_bad_override_of_a_stored_alert_is_a_422(self, sqlite_url: str) -> None:
        with TestClient(web_app(sqlite_url)) as client:
            response = client.post("/api/alerts/1/preview", json={"operator": "~"})

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "operator"]


class TestUnknown:
    def test_an_unknown_alert_is_a_404_for_its_preview_and_its_state(
        self, engine: Engine, client: TestClient
    ) -> None:
        a_hovering_heater(engine)

        preview = client.post("/api/alerts/99/preview", json={})
        state = client.get("/api/alerts/99/state")

        assert (preview.status_code, preview.json()) == (404, {"detail": "there is no alert 99"})
        assert (state.status_code, state.json()) == (404, {"detail": "there is no alert 99"})

    def test_a_draft_on_an_unknown_device_is_a_404(
        self, engine: Engine, client: TestClient
    ) -> None:
        a_hovering_heater(engine)

        response = client.post("/api/alerts/preview", json={"alert": {**DRAFT, "device_id": 7}})

        assert (response.status_code, response.json()) == (404, {"detail": "there is no device 7"})

    def test_an_alert_id_that_is_no_id_is_a_422(self, sqlite_url: str) -> None:
        with TestClient(web_app(sqlite_url)) as client:
            response = client.get("/api/alerts/0/state")

        assert response.status_code == 422

    def test_a_database_without_the_shared_tables_is_a_503_that_says_so(
        self, sqlite_url: str
    ) -> None:
        make_engine(sqlite_url).dispose()  # an empty file

        with TestClient(web_app(sqlite_url)) as client:
            state = client.get("/api/alerts/1/state")
            preview = client.post("/api/alerts/1/preview")

        for response in (state, preview):
            assert response.status_code == 503
            assert "history and alert_events do not exist" in response.json()["detail"]

    def test_a_missing_table_is_a_503_and_the_next_request_looks_again(
        self, sqlite_url: str, generation: Generation
    ) -> None:
        make_app_tables(sqlite_url, generation)
        engine = make_engine(sqlite_url)
        with TestClient(web_app(sqlite_url)) as client:
            assert client.get("/api/alerts/1/state").status_code == 404
            with engine.begin() as connection:
                connection.execute(text("ALTER TABLE alerts RENAME TO alerts_elsewhere"))
            missing = client.get("/api/alerts/1/state")
            with engine.begin() as connection:
                connection.execute(text("ALTER TABLE alerts_elsewhere RENAME TO alerts"))
            back = client.get("/api/alerts/1/state")
        engine.dispose()

        assert missing.status_code == 503, missing.text
        assert missing.json()["detail"].startswith("the database could not answer")
        assert "SELECT" not in missing.json()["detail"]  # the statement stays in the log
        assert back.status_code == 404


def test_the_openapi_document_has_the_endpoints_with_examples(sqlite_url: str) -> None:
    with TestClient(web_app(sqlite_url)) as client:
        document = client.get("/openapi.json").json()

    assert {
        "/api/alerts/preview",
        "/api/alerts/{alert_id}/preview",
        "/api/alerts/{alert_id}/state",
        "/api/events/{event_id}/ack",
    } <= set(document["paths"])
    draft = document["components"]["schemas"]["DraftPreviewIn"]
    assert draft["examples"][0]["alert"]["threshold_value"] == 82
    responses = document["paths"]["/api/alerts/{alert_id}/preview"]["post"]["responses"]
    assert {"200", "404", "422"} <= set(responses)


def test_the_router_previews_with_the_defaults_it_is_given(engine: Engine) -> None:
    a_hovering_heater(engine)
    engine_url = str(engine.url.render_as_string(False))
    app = FastAPI()
    sessions = async_sessionmaker(create_async_engine(async_url(engine_url), poolclass=NullPool))

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session

    worker_defaults = RuleOptions(pending=timedelta(minutes=5))
    router = make_router(
        get_db, everyone_is_let_in, defaults=worker_defaults, clock=FixedClock(NOW)
    )
    app.include_router(router, prefix="/api")

    with TestClient(app) as client:
        found = client.post("/api/alerts/preview", json={"alert": DRAFT, "range": RANGE}).json()

    assert found["options"]["pending_seconds"] == 300  # the worker's defaults, as it would
    assert found["timeline"]["counts"]["events"] == 0
    assert found["compared"] is None  # nothing tried beyond the defaults


class TestStoredRowsTheWorkerCannotJudge:
    def test_a_broken_operator_is_a_409_unless_the_body_mends_it(
        self, engine: Engine, client: TestClient
    ) -> None:
        a_hovering_heater(engine)
        tables = tables_of(engine)
        with engine.begin() as connection:
            connection.execute(update(tables.alerts).values(operator="=>"))

        broken = client.post("/api/alerts/1/preview", json={"range": RANGE})
        mended = client.post("/api/alerts/1/preview", json={"operator": ">", "range": RANGE})

        assert broken.status_code == 409
        assert "=>" in broken.json()["detail"]
        found = answered(mended, PreviewOut)
        assert found.compared is None
        assert found.timeline.counts.events == 12
        assert any("as stored, alert 1 cannot be judged" in w for w in found.timeline.warnings)

    def test_options_that_cannot_be_read_are_a_409_for_the_state_too(
        self, sqlite_url: str, client_on: Any
    ) -> None:
        engine = make_engine(sqlite_url)
        a_hovering_heater(engine)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO reef_alerts_rules (alert_id, pending_seconds, updated_at) "
                    "VALUES (1, 'soon', '2026-11-29 12:00:00')"
                )
            )
        engine.dispose()

        with client_on(sqlite_url) as client:
            state = client.get("/api/alerts/1/state")
            preview = client.post("/api/alerts/1/preview", json={"range": RANGE})

        assert state.status_code == 409, state.text
        assert preview.status_code == 409, preview.text


def test_the_worker_tables_made_while_the_app_is_up_are_read_at_once(
    engine: Engine, client: TestClient
) -> None:
    add_device(engine, 1, "Frag Tank Heater")
    add_alert(engine, 1, 1, "temperature", ">", 82.0)

    before = answered(client.get("/api/alerts/1/state"), StateOut)
    schema.upgrade(engine)
    rule_store.set_rule(engine, 1, {"pending_seconds": 600.0})
    after = answered(client.get("/api/alerts/1/state"), StateOut)

    assert (before.state, before.options) == ("unknown", None)
    assert after.state == "ok"
    assert after.options is not None
    assert after.options.pending_seconds == 600.0


def test_a_draft_answers_what_the_cli_prints(
    engine: Engine, client: TestClient, tmp_path: Path
) -> None:
    url = a_hovering_heater(engine)

    response = client.post(
        "/api/alerts/preview",
        json={
            "alert": {**DRAFT, "operator": ">=", "threshold_value": 82.2},
            "options": {"no_data_after": "10m"},
            "range": {"last": "2h1m", "to": RANGE["to"], "step": "1m"},
        },
    )
    code, out, err = invoke(
        [
            "preview",
            "--device",
            "1",
            "--metric",
            "temperature",
            "--op",
            ">=",
            "--threshold",
            "82.2",
            "--no-data-after",
            "10m",
            "--since",
            "2h1m",
            "--until",
            RANGE["to"],
            "--step",
            "1m",
            "--json",
        ],
        tmp_path,
        DATABASE_URL=url,
    )

    assert code == 0, err
    assert answered(response, PreviewOut).compared is not None
    assert response.json() == json.loads(out)


def test_a_range_beyond_the_evaluation_cap_replays_its_newest_part(
    engine: Engine, client: TestClient
) -> None:
    a_hovering_heater(engine)

    response = client.post(
        "/api/alerts/1/preview", json={"range": {"last": "30d", "to": RANGE["to"]}}
    )

    found = answered(response, PreviewOut)
    assert found.timeline.to.isoformat() == RANGE["to"]
    assert found.timeline.counts.evaluations == 50_000
    assert found.timeline.counts.events == 12  # the recent hours are in it
    assert any("replayed from" in w for w in found.timeline.warnings)


def test_a_router_refuses_a_step_shorter_than_a_second() -> None:
    with pytest.raises(ValueError, match="step must be 1s or longer"):
        make_router(everyone_is_let_in, everyone_is_let_in, step=timedelta(0))
