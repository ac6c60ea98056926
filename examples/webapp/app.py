"""A minimal web app that mounts reef_alerts' router, as the reef controller's web app does:
its own session and auth dependencies, passed in; the router under /api.

    make webapp        # the demo reef's database, on http://127.0.0.1:8000/docs

or, on a database of your own (the URL's driver must be asyncpg or aiosqlite):

    REEF_WEBAPP_DATABASE_URL=postgresql+asyncpg://user:password@host/reef \
        uvicorn --app-dir examples/webapp app:app
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from reef_alerts.web import make_router

DATABASE_URL = os.environ.get("REEF_WEBAPP_DATABASE_URL", "sqlite+aiosqlite:///reef_alerts_demo.db")
TOKEN = os.environ.get("REEF_WEBAPP_TOKEN")
"""The one bearer token this example accepts; unset, only requests from this machine are let in
(the demo)."""
LOOPBACK = {"127.0.0.1", "::1"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = create_async_engine(DATABASE_URL)
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    yield
    await engine.dispose()


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """The web app's `get_db`: one AsyncSession per request."""
    async with request.app.state.sessions() as session:
        yield session


bearer = HTTPBearer(auto_error=False)


async def get_current_user_or_service(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """Stands in for the web app's JWT or service-token check."""
    if TOKEN is None:
        if request.client is not None and request.client.host in LOOPBACK:
            return "demo"
        raise HTTPException(status.HTTP_403_FORBIDDEN, "set REEF_WEBAPP_TOKEN to serve others")
    given = b"" if credentials is None else credentials.credentials.encode()
    if not secrets.compare_digest(given, TOKEN.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token is needed",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return "service"


app = FastAPI(title="Reef controller (example)", lifespan=lifespan)
app.include_router(make_router(get_db, get_current_user_or_service), prefix="/api")
