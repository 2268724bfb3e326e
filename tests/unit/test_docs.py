"""The docs are part of the product: the site builds strictly, and its configuration and API pages are made from
the code (every setting, every endpoint), so they cannot go stale."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import FLAT_NAMES, Settings, sections

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).with_name("mkdocs")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if not MKDOCS.exists():
        pytest.fail("mkdocs is missing: `make install` installs the dev extra, which pins mkdocs-material")
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-4000:]
    yield out
    shutil.rmtree(out, ignore_errors=True)


def test_every_setting_is_on_the_configuration_page_with_its_default(site):
    page = (site / "configuration" / "index.html").read_text()
    for section_name, section in sections().items():
        for name, field in section.model_fields.items():
            env = str(field.validation_alias)
            assert f"<code>{env}</code>" in page, env
            assert f"settings.{section_name}.{name}" in page
            if field.default not in (None, ""):
                assert f"<code>{field.default}</code>" in page, env


def test_every_endpoint_is_on_the_api_page(site):
    from monitor.api.app import create_app

    page = (site / "api" / "index.html").read_text()
    spec = create_app(Settings(), run_alerts=False).openapi()
    for path, operations in spec["paths"].items():
        for method in operations:
            assert f"{method.upper()} {path}" in page, (method, path)
    assert json.dumps(spec)  # the document itself is valid JSON


def test_environment_names_are_unique_and_flat():
    """Two fields with one variable would silently share a value."""
    names = [str(field.validation_alias) for section in sections().values() for field in section.model_fields.values()]
    assert len(names) == len(set(names)) == len(FLAT_NAMES)
    assert all(name == name.upper() and "__" not in name for name in names)
