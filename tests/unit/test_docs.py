"""The README is part of the product: its configuration table must match the settings object."""

import re
from pathlib import Path

from core.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_and_nothing_else():
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README.read_text(), flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_readme_defaults_match_code():
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| (`[^`]*`|unset) \|", README.read_text(), flags=re.MULTILINE))
    for name, field in Settings.model_fields.items():
        expected = "unset" if field.default is None else f"`{field.default}`"
        assert rows[name.upper()] == expected, name
