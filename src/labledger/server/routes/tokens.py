"""API tokens over HTTP (admin only): list, create (the secret is shown once) and revoke.

On the server machine, ``labledger token ...`` does the same straight on the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from labledger.core.access import TOKEN_NAME_PATTERN, ApiToken, Scope
from labledger.server.deps import Actor, LabDep
from labledger.server.rendering import JSONBody, json_response
from labledger.server.schemas import ERRORS

__all__ = ["TokenCreate", "TokenCreated", "TokenPublic", "router"]

router = APIRouter(tags=["tokens"])


class TokenCreate(BaseModel):
    """A token to make."""

    name: str = Field(pattern=TOKEN_NAME_PATTERN, description="Shown in the event log")
    scope: Scope = Field(description="read, write or admin")
    note: str | None = Field(default=None, max_length=1000)


class TokenPublic(BaseModel):
    """A token as listed (never its secret)."""

    name: str
    scope: Scope
    note: str | None
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    """A new token with its secret, which is shown this once and stored only as a hash."""

    secret: str


def _public(token: ApiToken) -> dict[str, object]:
    return token.model_dump(mode="json")


TokenName = Annotated[str, Path(pattern=TOKEN_NAME_PATTERN)]


@router.get("/tokens", response_model=list[TokenPublic], responses=ERRORS)
def list_tokens(lab: LabDep) -> JSONBody:
    """Every token, revoked ones included, oldest first (admin)."""
    return json_response([_public(t) for t in lab.tokens.list()])


@router.post("/tokens", response_model=TokenCreated, status_code=201, responses=ERRORS)
def create_token(body: TokenCreate, lab: LabDep, actor: Actor) -> JSONBody:
    """Make a token (admin). Its secret is in this answer only."""
    token, secret = lab.tokens.create(body.name, body.scope, note=body.note, created_by=actor)
    lab.access.invalidate()
    return json_response({**_public(token), "secret": secret}, status_code=201)


@router.delete("/tokens/{name}", response_model=TokenPublic, responses=ERRORS)
def revoke_token(name: TokenName, lab: LabDep) -> JSONBody:
    """Revoke a token at once (admin); it stays listed, for the event log."""
    token = lab.tokens.revoke(name)
    lab.access.invalidate()
    return json_response(_public(token))
