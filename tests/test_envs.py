"""The rules' conda environments (envs/*.yaml, `snakemake --sdm conda`) against what the rules import and
pyproject.toml: conda channels cannot be reached here, so this checks the specifications, not the solve."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
ENVS = {name: REPO / "envs" / f"{name}.yaml" for name in ("maps", "training", "products")}
CPU_BUILDS = {"tensorflow-cpu": "tensorflow"}  # a CPU-only build of a project: the environments use the project

# Every rule's environment and script, from Snakemake itself (in a subprocess: it sets up logging and the cwd).
RULES_SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    wf = api.workflow(resource_settings=ResourceSettings(), storage_settings=StorageSettings(),
                      config_settings=ConfigSettings(configfiles=[Path("config/config.yaml")]),
                      snakefile=Path("Snakefile"), workdir=Path("."))
    rules = {}
    for r in wf._workflow.rules:  # the parsed rules (no public accessor)
        base = Path(r.basedir.get_path_or_uri(secret_free=True) if hasattr(r.basedir, "get_path_or_uri") else r.basedir)
        rules[r.name] = {"conda": r.conda_env and str((base / r.conda_env).resolve()),
                         "script": r.script and str((base / r.script).resolve()),
                         "runs": not r.norun, "is_run": r.is_run}
json.dump(rules, sys.stdout)
"""


@pytest.fixture(scope="module")
def rules() -> dict[str, dict]:
    proc = subprocess.run([sys.executable, "-c", RULES_SCRIPT], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def env_packages(path: Path) -> dict[str, tuple[Version, frozenset[str]]]:
    """Canonical name -> (exact version, pip extras) of every package of a conda environment file."""
    spec = yaml.safe_load(path.read_text())
    out: dict[str, tuple[Version, frozenset[str]]] = {}
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                req = Requirement(line)
                pins = [s for s in req.specifier if s.operator == "=="]
                assert len(pins) == 1, f"{path.name}: pip requirement {line!r} must pin one exact version (==)"
                out[canonicalize_name(req.name)] = (Version(pins[0].version), frozenset(req.extras))
        elif dep != "pip":
            name, sep, version = dep.partition("=")
            assert sep and version.lstrip("="), f"{path.name}: conda package {dep!r} must pin an exact version (name=version)"
            out[canonicalize_name(name)] = (Version(version.lstrip("=")), frozenset())
    return out


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pyproject_requirements() -> list[Requirement]:
    """The runtime dependencies and those of every extra."""
    project = pyproject()
    lines = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in lines]


def module_file(name: str) -> Path | None:
    """The source file of the szmass module ``name`` (dotted), None for a name that is no module."""
    p = REPO.joinpath("src", *name.split("."))
    for f in (p / "__init__.py", p.with_suffix(".py")):
        if f.is_file():
            return f
    return None


def imported_names(path: Path) -> set[str]:
    """Dotted names of the modules ``path`` imports anywhere (also inside functions), ``from a import b`` as a.b too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


@cache
def third_party_imports(script: Path) -> frozenset[str]:
    """Top-level third-party modules a script imports, directly or through the szmass modules it imports."""
    found: set[str] = set()
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for name in imported_names(todo.pop()):
            top = name.split(".")[0]
            if top == "szmass":
                parts = name.split(".")
                files = (module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1))
                for f in files:
                    if f is not None and f not in seen:
                        seen.add(f)
                        todo.append(f)
            elif top not in sys.stdlib_module_names:
                found.add(top)
    return frozenset(found)


@cache
def providers() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@cache
def distribution(module: str) -> str:
    """The canonical name of the installed distribution that provides the top-level ``module``."""
    dists = providers().get(module)
    assert dists, f"no installed distribution provides module {module!r}"
    name = canonicalize_name(dists[0])
    return CPU_BUILDS.get(name, name)


def test_every_rule_that_runs_a_script_has_one_of_the_group_environments(rules):
    envs = {str(p.resolve()) for p in ENVS.values()}
    scripted = {name: r for name, r in rules.items() if r["script"]}
    assert len(scripted) > 20
    wrong = {name: r["conda"] for name, r in scripted.items() if r["conda"] not in envs}
    assert not wrong, f"rules without one of {sorted(ENVS)} as conda environment: {wrong}"
    others = [name for name, r in rules.items() if r["runs"] and not r["script"] and not r["is_run"]]
    assert not others, f"rules that run neither a script nor a run block (give them a conda environment): {others}"
    assert {r["conda"] for r in scripted.values()} == envs  # all three groups in use


@pytest.mark.parametrize("group", sorted(ENVS))
def test_each_environment_holds_every_package_its_rules_import(rules, group):
    packages = env_packages(ENVS[group])
    scripts = {Path(r["script"]) for r in rules.values() if r["conda"] == str(ENVS[group].resolve())}
    missing = {
        f"{script.name}: {module}"
        for script in scripts
        for module in third_party_imports(script)
        if distribution(module) not in packages
    }
    assert not missing, f"envs/{group}.yaml lacks packages its rules import: {sorted(missing)}"


@pytest.mark.parametrize("group", sorted(ENVS))
def test_environment_versions_are_the_constraints_within_pyproject_ranges(group):
    packages = env_packages(ENVS[group])
    python, _ = packages.pop("python")
    assert python in SpecifierSet(pyproject()["requires-python"]), f"envs/{group}.yaml: python {python}"
    requirements = pyproject_requirements()
    constraints = {
        canonicalize_name(name): Version(version)
        for name, version in (
            line.split("==") for line in (REPO / "constraints.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        )
    }
    for name, (version, extras) in packages.items():
        declared = [r for r in requirements if canonicalize_name(r.name) == name and set(r.extras) == extras]
        assert declared, f"envs/{group}.yaml: {name}{sorted(extras) or ''} is not declared in pyproject.toml"
        outside = [str(r) for r in declared if version not in r.specifier]
        assert not outside, f"envs/{group}.yaml: {name} {version} outside pyproject.toml's {outside}"
        assert constraints.get(name) == version, (
            f"envs/{group}.yaml: {name} {version}, constraints.txt pins {constraints.get(name)}"
        )


@pytest.mark.parametrize("group", sorted(ENVS))
def test_post_deploy_script_installs_szmass_from_the_checkout(group, tmp_path):
    script = ENVS[group].with_name(f"{group}.post-deploy.sh")
    assert "pip install --no-deps --editable" in script.read_text()
    env = dict(os.environ, SZMASS_SOURCE=str(tmp_path))  # no pyproject.toml there: refused before pip runs
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert f"SZMASS_SOURCE='{tmp_path}' is not the szmass checkout (no pyproject.toml)" in proc.stderr
