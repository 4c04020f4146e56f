"""Request dependencies, as ``Annotated`` aliases. The session dependency is the edge that owns
the transaction: it commits after the endpoint returns and before the answer is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from textbridge.accounts.service import Principal, accounts
from textbridge.channels import Channels
from textbridge.db.engine import run_after_commit
from textbridge.errors import Forbidden, Unauthorized
from textbridge.runtime import Runtime
from textbridge.settings import Settings


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


async def get_channels(runtime: RuntimeDep) -> Channels:
    return runtime.channels


SettingsDep = Annotated[Settings, Depends(get_settings)]
ChannelsDep = Annotated[Channels, Depends(get_channels)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.db.sessions() as session:
        async with session.begin():
            yield session
        run_after_commit(session)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def client_ip(request: Request) -> str | None:
    """The caller's address (uvicorn resolves X-Forwarded-For from trusted proxies)."""
    return request.client.host if request.client else None


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    return token.strip()


async def get_caller(request: Request, runtime: RuntimeDep) -> Principal:
    """Who is calling. A short transaction of its own, and only when the key is not cached: the
    send path holds no database connection while its rows wait for the group commit."""
    token = bearer_token(request)
    principal = accounts.cached(token)
    if principal is None:
        async with runtime.db.transaction() as session:
            principal = await accounts.authenticate(session, token)
    return principal


CallerDep = Annotated[Principal, Depends(get_caller)]


async def get_admin(caller: CallerDep) -> Principal:
    if not caller.is_admin:
        raise Forbidden("this needs the admin account's key")
    return caller


AdminDep = Annotated[Principal, Depends(get_admin)]
