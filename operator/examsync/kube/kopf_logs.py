"""kopf's log lines in the operator's JSON shape.

kopf logs about an object through a ``LoggerAdapter`` whose extras are the object reference
(``k8s_ref``), a flag, and the whole ``OperatorSettings`` (about 1.8 KB once printed). This filter,
on the handler that writes stderr, turns the reference into the ``institution`` field, drops the
rest, moves kopf's per-event handler messages ("Handler 'wake' succeeded.") to debug, and cuts
the exception text kopf appends to a failure message (the type and the traceback stay).
"""

from __future__ import annotations

import logging
import re

# what kopf attaches to every line about an object
_KOPF_EXTRAS = ("settings", "k8s_skip", "k8s_ref")

_HANDLER = r"(?:Handler|Daemon|Timer|Indexer|Webhook) '[^']*'"
# said on every watch event the handlers are called for: debug, not info
_PER_EVENT = re.compile(rf"^(?:{_HANDLER} succeeded\.$|[\w ]+ is processed: |[\w ]+ is superseded by )")
# "Handler 'x' failed with an exception and will try again in 60 seconds: <str(exc)>"
_FAILED = re.compile(rf"^((?:{_HANDLER}|Activity '[^']*') (?:has )?failed[^:]*?)(?:: .*)?$", re.DOTALL)


class KopfRecords(logging.Filter):
    """Shapes kopf's records for the JSON formatter; every other record passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("kopf"):
            return True
        ref = getattr(record, "k8s_ref", None)
        for attr in _KOPF_EXTRAS:
            if attr in record.__dict__:
                delattr(record, attr)
        if isinstance(ref, dict) and ref.get("name"):
            namespace, name = ref.get("namespace"), ref.get("name")
            key = f"{namespace}/{name}" if namespace else str(name)
            if ref.get("kind") == "Institution":
                record.institution = key
            else:
                record.object = f"{ref.get('kind')} {key}"
        message = record.getMessage()
        failed = _FAILED.match(message)
        if failed is not None and failed.group(0) != failed.group(1):
            cause = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
            record.msg, record.args = failed.group(1) + (f" ({cause})" if cause else ""), ()
        if record.levelno == logging.INFO and _PER_EVENT.match(message):
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def install(handler: logging.Handler) -> None:
    """Shape kopf's records on ``handler`` (the one ``setup_logging`` returned)."""
    if not any(isinstance(f, KopfRecords) for f in handler.filters):
        handler.addFilter(KopfRecords())
