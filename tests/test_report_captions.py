"""The report's captions (workflow/report/*.rst): Jinja templates that Snakemake's report renders with
``snakemake.config``, then reads as reStructuredText; they must describe the configured sky."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from docutils.core import publish_parts
from jinja2 import Environment
from workflow_utils import REPO, validated_config

REPORT = REPO / "workflow" / "report"


def render(caption: Path, config: dict) -> str:
    """``caption`` rendered as Snakemake's report renders it (its Jinja settings), with ``snakemake.config``."""
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(caption.read_text()).render(snakemake=SimpleNamespace(config=config))


@pytest.mark.parametrize("ymap", [None, "planck/COM_CompMap_YSZ_R2.02_milca.fits"])
def test_captions_name_the_configured_sky(ymap: str | None) -> None:
    cfg = validated_config()
    cfg["planck"] = cfg["planck"] | {"ymap": ymap}
    for caption in sorted(REPORT.glob("*.rst")):
        publish_parts(render(caption, cfg), writer="html", settings_overrides={"halt_level": 2})  # valid rst
    figure2, supp_fig6 = (render(REPORT / f"{name}.rst", cfg) for name in ("figure2", "supp_fig6"))
    if ymap:
        assert f"``{ymap}``" in figure2 and "real sky" in figure2
        assert "synthetic" not in figure2 and "synthetic" not in supp_fig6
    else:
        assert "the sky is synthetic" in figure2 and "The sky is synthetic" in supp_fig6
        assert "real sky" not in figure2
