"""The HTTP-01 answers: ``GET /.well-known/acme-challenge/<label>/<token>``, reached by ACME CAs through a redirect."""

from __future__ import annotations

import asyncio
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..services.public.http_validation import CHALLENGE_PATH

__all__ = ["http_challenge_routes"]


class _KeyAuthorizations(Protocol):
    def key_authorization(self, label: str, token: str) -> str | None: ...


class _HasHttpChallenges(Protocol):
    @property
    def http_challenges(self) -> _KeyAuthorizations: ...


def http_challenge_routes(container: _HasHttpChallenges) -> list[Route]:
    """The route serving the key authorizations of open orders (200 text/plain), 404 for anything else."""

    async def answer(request: Request) -> Response:
        label, token = request.path_params["label"], request.path_params["token"]
        found = await asyncio.to_thread(container.http_challenges.key_authorization, label, token)
        if found is None:
            return Response("no such challenge\n", 404, media_type="text/plain")
        return Response(found, 200, media_type="text/plain", headers={"Cache-Control": "no-store"})

    return [Route(CHALLENGE_PATH + "{label}/{token}", answer, methods=["GET"])]
