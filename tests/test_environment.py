"""The three dependency lists (requirements.txt, environment.yml, pyproject.toml) agree."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    """Normalised project name of a requirement string ('Scikit_Image==0.26' -> 'scikit-image')."""
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip()).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_txt() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def environment_yml_pip() -> list[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict)]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip: section"
    return [str(req).strip() for req in pip_sections[0]]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_requirements_are_exact_pins():
    for req in requirements_txt():
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", req), f"not an exact pin: {req}"


def test_torch_comes_first():
    assert _name(requirements_txt()[0]) == "torch"


def test_environment_yml_matches_requirements():
    assert environment_yml_pip() == requirements_txt()


def test_environment_yml_python_is_311():
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    assert "python=3.11" in deps and "pip" in deps


def test_requirements_pin_exactly_the_pyproject_dependencies():
    project = pyproject()["project"]
    wanted = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        wanted += extra
    pinned = {_name(req) for req in requirements_txt()}
    missing = sorted({_name(req) for req in wanted} - pinned)
    assert not missing, f"in pyproject.toml but not pinned in requirements.txt: {missing}"
    extra = sorted(pinned - {_name(req) for req in wanted})
    assert not extra, f"pinned in requirements.txt but not a dependency in pyproject.toml: {extra}"
