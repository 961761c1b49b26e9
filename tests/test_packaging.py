"""What the wheel ships: every module imports without the dev tools, the origin server names the
extra it needs, and the type information (py.typed) is package data."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV_ONLY = ("trustme", "pytest", "hypothesis", "selenium", "mypy", "ruff")
# Run in a fresh interpreter in which the dev-only packages cannot be imported.
BLOCK = "import sys\nfor name in {names!r}:\n    sys.modules[name] = None\n"


def _python(code: str) -> subprocess.CompletedProcess[str]:
    script = BLOCK.format(names=DEV_ONLY) + code
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def test_every_module_imports_without_the_dev_tools() -> None:
    done = _python(
        "import pkgutil, importlib, mediatool\n"
        "for m in pkgutil.walk_packages(mediatool.__path__, 'mediatool.'):\n"
        "    if m.name != 'mediatool.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "print('ok')\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_origin_server_names_the_testing_extra_when_trustme_is_missing() -> None:
    done = _python("from mediatool.testing.origin import OriginServer\nOriginServer()\n")
    assert done.returncode == 1
    assert "pip install 'mediatool[testing]'" in done.stderr.splitlines()[-1]


def test_the_testing_extra_holds_trustme_and_dev_depends_on_it() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert [d for d in extras["testing"] if d.startswith("trustme")]
    own = [d for d in extras["dev"] if d.startswith("mediatool[")]
    assert own and "testing" in own[0].removeprefix("mediatool[").rstrip("]").split(",")
    assert not [d for d in project["dependencies"] if d.startswith("trustme")]


def test_dask_and_boto3_are_optional_extras_not_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert [d for d in extras["dask"] if d.startswith("dask[distributed]")]
    assert [d for d in extras["s3"] if d.startswith("boto3")]
    heavy = ("dask", "distributed", "boto3", "moto")
    assert not [d for d in project["dependencies"] if d.startswith(heavy)]


def test_py_typed_is_shipped_as_package_data() -> None:
    assert resources.files("mediatool").joinpath("py.typed").is_file()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["mediatool"]
