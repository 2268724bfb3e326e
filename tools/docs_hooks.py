"""mkdocs hooks: the configuration and HTTP API pages, and the sizing table, are generated, so they cannot go stale.

`docs/configuration.md` and `docs/api.md` hold the hand-written introduction; the marker comment in each is
replaced at build time by tables made from `core.settings.Settings` and the API's OpenAPI document. The sizing
marker in `docs/operations.md` becomes `monitor bench size`'s table over the committed worker reports.
"""

from __future__ import annotations

from typing import Any

SETTINGS_MARKER = "<!-- generated: settings -->"
OPENAPI_MARKER = "<!-- generated: openapi -->"
SIZING_MARKER = "<!-- generated: sizing -->"
SIZING_RATE = 1000.0
"""The example target of the sizing table (posts/s at peak)."""


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return "computed"
    if field.default is None:
        return "unset"
    return "empty" if field.default == "" else f"`{field.default}`"


def settings_markdown() -> str:
    """One table per section: environment variable, default, what it does."""
    from core.settings import sections

    parts = []
    for name, section in sections().items():
        parts += [f"## {name}", "", _cell(section.__doc__ or ""), "",
                  "| Variable | Default | Description |", "| --- | --- | --- |"]
        for field_name, field in section.model_fields.items():
            parts.append(f"| `{field.validation_alias}` | {_default(field)} | {_cell(field.description or '')} "
                         f"(`settings.{name}.{field_name}`) |")
        parts.append("")
    return "\n".join(parts)


def _schema_type(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_schema_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    kind = schema.get("type", "any")
    return f"{kind} ({', '.join(map(str, schema['enum']))})" if "enum" in schema else kind


def openapi_markdown() -> str:
    """Every operation of the API's OpenAPI document: summary, parameters, request body, responses."""
    from core.settings import Settings
    from monitor.api.app import create_app

    spec = create_app(Settings(), run_alerts=False).openapi()
    parts = [f"OpenAPI {spec['openapi']}, API version {spec['info']['version']}. The same document is served at "
             "`/openapi.json` and browsable at `/docs` on a running `monitor api`.", ""]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            parts += [f"## `{method.upper()} {path}`", "", _cell(operation.get("summary", "")), ""]
            if operation.get("description"):
                parts += [operation["description"].strip(), ""]
            parameters = operation.get("parameters", [])
            if parameters:
                parts += ["| Parameter | In | Type | Required | Description |", "| --- | --- | --- | --- | --- |"]
                parts += [f"| `{p['name']}` | {p['in']} | {_cell(_schema_type(p.get('schema', {})))} | "
                          f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description', ''))} |"
                          for p in parameters]
                parts.append("")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                parts += [f"Request body: `{_schema_type(body['schema'])}` (JSON).", ""]
            responses = ", ".join(f"`{code}` {_cell(r.get('description', ''))}"
                                  for code, r in operation.get("responses", {}).items())
            parts += [f"Responses: {responses}.", ""]
    return "\n".join(parts)


def sizing_markdown() -> str:
    """`monitor bench size --rate SIZING_RATE` over bench/results/worker-*.json."""
    from pathlib import Path

    from benchmarks.sizing import measured_workers, plan, plan_table

    reports = sorted((Path(__file__).resolve().parents[1] / "bench" / "results").glob("worker-*.json"))
    return plan_table([plan(m, SIZING_RATE) for path in reports for m in measured_workers(path)])


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if SETTINGS_MARKER in markdown:
        markdown = markdown.replace(SETTINGS_MARKER, settings_markdown())
    if OPENAPI_MARKER in markdown:
        markdown = markdown.replace(OPENAPI_MARKER, openapi_markdown())
    if SIZING_MARKER in markdown:
        markdown = markdown.replace(SIZING_MARKER, sizing_markdown())
    return markdown
