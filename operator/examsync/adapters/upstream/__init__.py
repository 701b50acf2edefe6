"""The HTTP layer every adapter shares, one concern per module (rules: contracts/README.md).

`client.UpstreamClient` composes them; adapters use it, `decode` (answers into the contract's
models), `paging` and, for bearer tokens, `auth`:

- `retry`: which failed attempts are tried again and how long to wait (tenacity runs the loop);
- `deadline`: one call's 60 s from its first send to the last byte, retries included;
- `limits`: per-host concurrency caps and request rates, shared by every client in the process;
- `breaker`: a system that keeps failing is given up on for the rest of the run;
- `allowlist`: every request's host checked against `examsync.hosts` before it leaves;
- `observe`: the metrics of each request and each retry;
- `transport`: applies the per-request units above to every request a client sends;
- `body`: bodies read within a size cap and a process-wide budget, JSON within a depth;
- `error_text`: what of an upstream's error answer may be repeated;
- `defaults`: the timeout, retry policy and CA bundle a client gets from the settings.

Nothing is imported here: `adapters.errors` imports `error_text`, and the client imports the errors.
"""
