"""config/README.md: generated from the config schema, every key described, every shipped config's key listed."""

from __future__ import annotations

from pathlib import Path

import yaml

from szmass.config_doc import SCHEMA, keys, markdown

REPO = Path(__file__).resolve().parents[1]


def schema() -> dict:
    return yaml.safe_load((REPO / SCHEMA).read_text())


def test_readme_is_the_schema_documented():
    expected = markdown(schema())
    actual = (REPO / "config" / "README.md").read_text()
    assert actual == expected, "config/README.md is out of date: run `python -m szmass.config_doc > config/README.md`"


def test_every_key_has_a_description():
    undescribed = [k.path for k in keys(schema()) if not k.schema.get("description", "").strip()]
    assert not undescribed, f"{SCHEMA}: keys without a description: {undescribed}"


def config_paths(value: object, node: dict, root: dict, prefix: str = "") -> set[str]:
    """The documented paths (``<name>`` for a free name, ``[]`` for list items) of the keys of a config value."""
    from szmass.config_doc import _resolve

    node = _resolve(node, root)
    out: set[str] = set()
    if isinstance(value, dict) and "properties" in node:
        for k, v in value.items():
            sub = node["properties"].get(k)
            out.add(f"{prefix}{k}" if sub is not None else f"{prefix}{k} (not in the schema)")
            if sub is not None:
                out |= config_paths(v, sub, root, f"{prefix}{k}.")
    elif isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
        for v in value.values():
            out |= config_paths(v, node["additionalProperties"], root, f"{prefix}<name>.")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for v in value:
            out |= config_paths(v, node["items"], root, f"{prefix.rstrip('.')}[].")
    return out


def test_every_key_of_the_shipped_configs_is_in_the_readme():
    doc = schema()
    readme = (REPO / "config" / "README.md").read_text()
    listed = {line.split("`")[1] for line in readme.splitlines() if line.startswith(("| `", "## `"))}
    for path in sorted((REPO / "config").glob("*.yaml")):
        used = config_paths(yaml.safe_load(path.read_text()), doc, doc)
        assert used, path
        assert not used - listed, f"config/{path.name}: keys missing from config/README.md: {sorted(used - listed)}"


def test_keys_follow_refs_free_names_and_list_items():
    tiny = {
        "$defs": {"seeds": {"type": "integer", "description": "runs"}},
        "properties": {
            "runs": {"$ref": "#/$defs/seeds"},
            "sims": {"type": "object", "additionalProperties": {"type": "object", "properties": {"n": {"type": "integer"}}}},
            "archs": {"type": "array", "items": {"type": "object", "properties": {"k": {"enum": [1, 3]}}}},
        },
        "required": ["runs"],
    }
    found = [(k.path, k.required, k.schema.get("description")) for k in keys(tiny)]
    assert found == [("runs", True, "runs"), ("sims", False, None), ("sims.<name>.n", False, None),
                     ("archs", False, None), ("archs[].k", False, None)]
    assert "| `archs[].k` | one of `1`, `3` |" in markdown(tiny)
