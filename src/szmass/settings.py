"""Config sections as dataclasses: the common check that a mapping names only known fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any


def known_keys(d: Mapping[str, Any] | None, cls: type, section: str) -> dict[str, Any]:
    """``dict(d)``, after checking that every key is a field of the dataclass ``cls``.

    Raises ValueError naming the config ``section``, the unknown keys and the expected ones.
    """
    d = dict(d or {})
    names = sorted(f.name for f in fields(cls))
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ValueError(f"{section}: unknown key(s) {unknown}; expected some of {names}")
    return d
