"""No secret reaches a log line: connection-URL and DSN passwords are masked, for our records and libraries'."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from core.logging import configure_logging, get_logger, mask_secrets

secrets = st.text(  # passwords in URLs are %-encoded: no raw whitespace, '@' or '/'
    alphabet=st.characters(blacklist_characters="@/'", blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1, max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(secrets, st.sampled_from(["postgresql+psycopg", "postgresql", "redis", "kafka", "amqp"]))
def test_url_passwords_are_masked(secret: str, scheme: str) -> None:
    line = f"connecting to {scheme}://monitor:{secret}@db.internal:5432/monitor now"
    masked = mask_secrets(line)
    assert f":{secret}@" not in masked
    assert f"{scheme}://monitor:***@db.internal:5432/monitor now" in masked


def test_dsn_passwords_and_harmless_text() -> None:
    assert mask_secrets("host=db user=monitor password=s3cret dbname=x") == "host=db user=monitor password=*** dbname=x"
    assert mask_secrets("password='a b c' port=5") == "password=*** port=5"
    assert mask_secrets("postgresql+psycopg://postgres@127.0.0.1:5432/monitor") == \
        "postgresql+psycopg://postgres@127.0.0.1:5432/monitor"
    assert mask_secrets("ratio 3:4 at http://example.com/x") == "ratio 3:4 at http://example.com/x"


def test_log_lines_never_carry_the_password(capsys) -> None:
    configure_logging("INFO")
    url = "postgresql+psycopg://monitor:hunter2@db:5432/monitor"
    get_logger("test").warning("write failed", database_url=url, error=f"could not connect to {url}")
    logging.getLogger("sqlalchemy.engine").warning("engine %s failed", url)
    err = capsys.readouterr().err
    assert "hunter2" not in err
    assert err.count("monitor:***@db") == 3


def connect(url: str) -> None:
    raise ConnectionError(f"could not connect to {url}")


def test_tracebacks_mask_the_password_and_print_no_local_variables(capsys) -> None:
    """A crash's traceback once printed every frame's locals, connection URL and password included."""
    url = "postgresql+psycopg://monitor:hunter2@db:5432/monitor"
    for json in (False, True):
        configure_logging("INFO", json=json)
        try:
            connect(url)
        except ConnectionError:
            get_logger("test").exception("crashed")
        err = capsys.readouterr().err
        assert "in connect" in err and "could not connect to postgresql+psycopg://monitor:***@db" in err
        assert "hunter2" not in err
