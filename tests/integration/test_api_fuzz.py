"""Schemathesis fuzzes every operation of the OpenAPI document against the app in-process, on the suite's real
PostgreSQL server and Redis, with and without tokens: never a 5xx, never a status, header or body the document does
not declare. Bounded (`MAX_EXAMPLES` per operation) to stay well under a minute.

The fuzzer creates tracked brands and alert rules with whatever names it generates, so it gets a database of its
own: left in the shared one, a generated brand's rules would tag other tests' posts."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from core.settings import Settings
from monitor.api.app import create_app
from monitor.cli.api import explainer_loader
from monitor.store.db import create_engine
from monitor.store.migrate import upgrade_head
from tests.integration.api_helpers import EXPLAINING_MODEL, labelled, seed
from tests.integration.database_helpers import private_database

pytestmark = pytest.mark.integration

READ, ADMIN = "fuzz-read", "fuzz-admin"
MAX_EXAMPLES = 25
FUZZED_BRAND = "fuzzed"
"""A known brand with data, so cases that use it (schemathesis reuses examples) get past the 404."""


def fuzz_schema(settings: Settings, tokens: bool):
    overrides = {"api_read_token": READ, "api_admin_token": ADMIN} if tokens else {
        "api_read_token": None, "api_admin_token": ADMIN}
    app = create_app(settings.replace(**overrides), run_alerts=False, explainer=explainer_loader(EXPLAINING_MODEL))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # The tests send the tokens themselves; generated ones would only be replaced.
    schema.config.generation.update(max_examples=MAX_EXAMPLES, modes=["positive", "negative"],
                                    with_security_parameters=False)
    schema.config.checks.update(included_check_names=["all"])
    # Rules a schema cannot state (since before until, a threshold's range per rule kind, minute buckets kept
    # 60 days, a name blank once normalised) refuse schema-valid input with a 422 that names the rule.
    schema.config.checks.positive_data_acceptance.expected_statuses = [
        *schema.config.checks.positive_data_acceptance.expected_statuses, "422"]
    # The live feed never ends: its first event is enough to check its status and media type.
    schema.config.max_stream_events = 1
    return schema


@pytest.fixture(scope="module")
def fuzz_settings(settings: Settings):
    """The suite's settings on a database of the fuzzer's own, at the newest schema, dropped afterwards."""
    with private_database(settings.store.database_url or "", prefix="fuzz") as own:
        upgrade_head(own)
        yield settings.replace(database_url=own)


@pytest.fixture(scope="module")
async def fuzzed_brand(fuzz_settings: Settings) -> str:
    engine = create_engine(fuzz_settings.store.database_url or "")
    try:
        await seed(engine, labelled(FUZZED_BRAND, {"positive": 1, "negative": 1}))
    finally:
        await engine.dispose()
    return FUZZED_BRAND


@pytest.fixture(scope="module")
def open_api(fuzz_settings, fuzzed_brand):
    return fuzz_schema(fuzz_settings, tokens=False)


@pytest.fixture(scope="module")
def guarded_api(fuzz_settings, fuzzed_brand):
    return fuzz_schema(fuzz_settings, tokens=True)


@pytest.fixture(autouse=True)
def _node_id(request) -> None:
    """schemathesis 4.32's fixture-loaded schemas read `Function._nodeid`, which pytest 9.2 no longer sets."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


open_schema = schemathesis.pytest.from_fixture("open_api")
guarded_schema = schemathesis.pytest.from_fixture("guarded_api")
FUZZ_SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)


@open_schema.parametrize()
@FUZZ_SETTINGS
def test_without_tokens(case):
    """No read token: reads are open; writes still need the admin token (sent), so they are fuzzed too."""
    case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN}"} if case.method != "GET" else None)


@guarded_schema.parametrize()
@FUZZ_SETTINGS
def test_with_tokens(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN}"})
