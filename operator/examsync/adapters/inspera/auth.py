"""Inspera's token exchange as httpx.Auth (contracts/inspera.md).

`POST /authenticate/token/?grant_type=authorization_code&client_id={clientId}` with the API key in
the `code` header answers an access token. Inspera answers 409 "Multiple tokens for user" to a
token request while another for the same user is open, so one token request at a time per
Inspera instance across the process (Institutions sharing an instance would otherwise race), and
a 409 (a request of another process) is asked again after a jittered wait.
"""

from __future__ import annotations

import asyncio
import random
import time
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from examsync.adapters.errors import ClientError
from examsync.adapters.upstream.auth import BearerTokenAuth, Token
from examsync.adapters.upstream.decode import parse_json
from examsync.adapters.upstream.limits import per_loop

RENEW_MARGIN = 60.0  # seconds before expiry a token is replaced
TOKEN_CONFLICT_ATTEMPTS = 6

_INSTANCE_LOCKS: dict[tuple[int, str], asyncio.Lock] = {}  # one token request at a time per instance


class TokenResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    access_token: str
    expires_in: float = 3600.0


def _conflict(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and exc.status == 409


def _conflict_wait(state: RetryCallState) -> float:
    return random.uniform(0.1, 0.3) * state.attempt_number  # jittered: peers drift apart


class InsperaTokenAuth(BearerTokenAuth):
    """The secret is the Institution's Inspera API key."""

    async def fetch(self) -> Token:
        query = f"grant_type=authorization_code&client_id={quote(self.client_id, safe='')}"
        async with per_loop(_INSTANCE_LOCKS, self.http.host, asyncio.Lock):
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_conflict),
                wait=_conflict_wait,
                stop=stop_after_attempt(TOKEN_CONFLICT_ATTEMPTS),
                reraise=True,
            ):
                with attempt:
                    response = await self.http.request(
                        "POST",
                        f"/authenticate/token/?{query}",
                        operation="token",
                        data={},
                        headers={"code": self.secret},
                        accept=frozenset(),
                        authenticate=False,
                    )
        token = parse_json(self.system, "token", response, TokenResponse)
        # renew a little before expiry (a tenth of the lifetime for short-lived tokens)
        margin = min(RENEW_MARGIN, token.expires_in / 10)
        return Token(token.access_token, time.monotonic() + max(0.0, token.expires_in - margin))
