"""config/README.md from the config schema (workflow/schemas/config.schema.yaml): every key, its type,
allowed values, default and description, so the documentation cannot drift from what the workflow checks.

``python -m szmass.config_doc [SCHEMA] > config/README.md`` regenerates it (tests/test_config_doc.py
checks that the committed file is up to date).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"

_HEADER = """\
# Configuration keys

Every key a szmass config file may hold, generated from the schema the workflow validates configs
against (`{schema}`) by `python -m szmass.config_doc > config/README.md`; do not edit by hand.
A key outside this list, a value of another type or out of range stops the run at start.
`<name>` stands for a name of your choice (e.g. a simulation's), `[]` for each item of a list.
The configs in this directory: `config.yaml` (the synthetic demo), `ci.yaml` (a tiny run of every stage),
`study.yaml` (the supplement's studies), `validation.yaml` (the demo at a size whose statistics mean something,
docs/validation.md), `cross_model.yaml` (Supplementary Table 3 with the paper's set-up), `scale.yaml` (timing at full resolution), `the300_planck.yaml` (THE THREE HUNDRED and the
Planck sky: the paper's run).

"""


@dataclass(frozen=True)
class KeyDoc:
    """One documented key: dotted ``path`` (``<name>`` for a free name, ``[]`` for list items) and its schema."""

    path: str
    schema: Mapping[str, Any]
    required: bool


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``node`` with a local ``$ref`` ("#/a/b") replaced by its target (the node's own keys win)."""
    ref = node.get("$ref")
    if not ref:
        return node
    if not ref.startswith("#/"):
        raise ValueError(f"config schema: only local $ref are supported, got {ref!r}")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    return {**_resolve(target, root), **{k: v for k, v in node.items() if k != "$ref"}}


def keys(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, prefix: str = "") -> Iterator[KeyDoc]:
    """Every key the schema allows, depth first in the schema's order."""
    root = schema if root is None else root
    required = set(schema.get("required", ()))
    for name, sub in (schema.get("properties") or {}).items():
        sub = _resolve(sub, root)
        path = f"{prefix}{name}"
        yield KeyDoc(path, sub, name in required)
        yield from _children(sub, root, path)


def _children(node: Mapping[str, Any], root: Mapping[str, Any], path: str) -> Iterator[KeyDoc]:
    if "properties" in node:
        yield from keys(node, root, f"{path}.")
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping) and ("properties" in extra or "additionalProperties" in extra):
        yield from _children(_resolve(extra, root), root, f"{path}.<name>")
    items = node.get("items")
    if isinstance(items, Mapping) and "properties" in _resolve(items, root):
        yield from _children(_resolve(items, root), root, f"{path}[]")


def _type(node: Mapping[str, Any]) -> str:
    if "enum" in node:
        return "one of " + ", ".join(f"`{_yaml(v)}`" for v in node["enum"])
    if "oneOf" in node:
        return " or ".join(_type(alt) for alt in node["oneOf"])
    kind = node.get("type", "object" if "properties" in node else "any")
    text = " or ".join(kind) if isinstance(kind, list) else kind
    items = node.get("items")
    if "array" in text and isinstance(items, Mapping) and "properties" not in items:
        text += f" of {_type(items)}"
    return text


def _yaml(value: Any) -> str:
    """``value`` as one line of YAML (as a config file would spell it)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _range(node: Mapping[str, Any]) -> str:
    bounds = [(">=", "minimum"), (">", "exclusiveMinimum"), ("<=", "maximum"), ("<", "exclusiveMaximum")]
    parts = [f"{op} {node[k]:g}" for op, k in bounds if k in node]
    for op, k in (("at least", "minItems"), ("at most", "maxItems")):
        if k in node:
            parts.append(f"{op} {node[k]} items")
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`")
    return ", ".join(parts)


def _default(node: Mapping[str, Any]) -> str:
    return f"`{_yaml(node['default'])}`" if "default" in node else ""


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(schema: Mapping[str, Any]) -> str:
    """config/README.md: a section per top-level key, a table row per key below it (or the key itself)."""
    out = [_HEADER.format(schema=SCHEMA.as_posix())]
    required = set(schema.get("required", ()))
    for name, node in schema["properties"].items():
        node = _resolve(node, schema)
        rows = list(_children(node, schema, name)) or [KeyDoc(name, node, name in required)]
        out += [f"## `{name}`", "", _cell(node.get("description", "")) + ("" if name in required else " Optional."), "",
                "| key | type | allowed | default | description |", "| --- | --- | --- | --- | --- |"]
        out += [f"| `{k.path}` | {_cell(_type(k.schema))} | {_cell(_range(k.schema))} | {_cell(_default(k.schema))} | "
                f"{_cell(k.schema.get('description', ''))} |" for k in rows]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """Print config/README.md for the schema file given (default: the workflow's, from the checkout's root)."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else SCHEMA
    sys.stdout.write(markdown(yaml.safe_load(path.read_text())))


if __name__ == "__main__":
    main()
