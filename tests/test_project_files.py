"""The project's own files: licence, citation, and no references to documents users do not get."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PAPER_DOI = "10.1038/s41550-022-01784-y"
# Not the project's files: environments, outputs, caches. tests/ may read reference data from outside.
SKIP_DIRS = {".git", ".venv", ".snakemake", "results", "resources", "logs", "tests", "build", "dist", "__pycache__",
             ".pytest_cache", ".mypy_cache", "benchmarks/out"}
OUTSIDE = re.compile(r"DESIGN\.md|FACTS\.md|\.\./shared")


def project_text_files() -> list[Path]:
    files = []
    for root, dirs, names in os.walk(REPO):
        rel = Path(root).relative_to(REPO)
        dirs[:] = [d for d in dirs if not ({d, str(rel / d)} & SKIP_DIRS or d.endswith(".egg-info"))]
        files += [Path(root) / n for n in names if Path(n).suffix in {".py", ".md", ".smk", ".yaml", ".yml", ".rst",
                                                                         ".toml", ".cff", ".txt", ".sh", ""}]
    return files


def test_no_file_refers_to_documents_outside_the_repository() -> None:
    hits = []
    for path in project_text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        hits += [f"{path.relative_to(REPO)}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, f"references to documents outside the repository: {hits}"


def test_licence_file_matches_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().splitlines()[0] == "MIT License"


def test_citation_cites_the_paper_and_the_data_sets_and_the_readme_links_the_paper() -> None:
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["preferred-citation"]["doi"] == PAPER_DOI
    assert cff["preferred-citation"]["authors"][0]["family-names"] == "de Andres"
    titles = " ".join(ref["title"] for ref in cff["references"])
    for data_set in ("The Three Hundred project", "Second Planck Catalogue of Sunyaev-Zeldovich Sources",
                     "A map of the thermal Sunyaev-Zeldovich effect"):
        assert data_set in titles
    opening = "\n".join((REPO / "README.md").read_text().splitlines()[:8])
    assert f"https://doi.org/{PAPER_DOI}" in opening
