"""WISEflow's OAuth2 client credentials as httpx.Auth (contracts/wiseflow.md).

`POST /oauth2/token` with a form body (client_id, client_secret, grant_type=client_credentials)
answers an access token; 400 with an OAuth2 error such as `invalid_client` is the only answer
WISEflow documents for refused client credentials.
"""

from __future__ import annotations

import time

from examsync.adapters.errors import AuthError, ClientError
from examsync.adapters.upstream.auth import BearerTokenAuth, Token
from examsync.adapters.upstream.decode import parse_json
from examsync.adapters.wiseflow.models import TokenAnswer, TokenForm, TokenRefusal

# OAuth2 error codes of a token request whose client credentials are refused
CREDENTIAL_REFUSALS = frozenset({"invalid_client", "unauthorized_client", "invalid_grant"})
DEFAULT_LIFETIME = 300.0  # seconds, when the answer does not say
RENEW_MARGIN = 30.0  # renewed this early, so a token never expires in flight


class WiseflowClientCredentials(BearerTokenAuth):
    """The secret is the OAuth2 client's secret."""

    async def fetch(self) -> Token:
        form = TokenForm(client_id=self.client_id, client_secret=self.secret, grant_type="client_credentials")
        response = await self.http.request(
            "POST",
            "/oauth2/token",
            operation="token",
            accept=frozenset({400}),
            data=form.body_form(),
            authenticate=False,
        )
        if response.status_code == 400:
            refusal = parse_json(self.system, "token", response, TokenRefusal)
            code = refusal.error if refusal.error in CREDENTIAL_REFUSALS else None
            if code is None:
                raise ClientError(self.system, "token", "token request refused", 400)
            # reported as 401 so the Institution is Stalled as Unauthorized, as for any system
            raise AuthError(self.system, "token", f"client credentials refused ({code})", 401)
        token = parse_json(self.system, "token", response, TokenAnswer)
        lifetime = float(token.expires_in) if token.expires_in is not None else DEFAULT_LIFETIME
        return Token(token.access_token, time.monotonic() + max(1.0, lifetime - RENEW_MARGIN))
