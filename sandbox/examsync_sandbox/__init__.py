"""examsync's sandbox: simulators of FS, Inspera (direct and through Gravitee), WISEflow,
Praktikportalen, Slack and Humio on loopback, seeded with realistic (made-up) institutions, for
`make demo`, the tests and the benchmarks. A distribution of its own, never part of examsync's
wheel or image.

- `simulators/<system>.py`: one simulator per outside system, named as its adapter in
  `examsync.adapters`; `simulators/serving.py` serves one with fault injection;
- `server.Sandbox`: every simulator started and seeded;
- `seed_no`, `seed_nowf`, `seed_dk`: the institutions and their data (made-up people included);
- `demo`: `make demo`; `cli`: the `examsync-sandbox` command.
"""
