"""The wheel ships the templates: build it from a copy of the sources, install it into a
target directory (not editable) and load the templates from there."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from process_support import run_python

import symdiff

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.packaging
def test_wheel_contains_the_templates_and_an_installed_copy_finds_them(tmp_path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("symdiff",):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    dist = tmp_path / "dist"
    # offline with the installed setuptools when there is one, else pip's isolated build env
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", *isolation,
         "-w", str(dist), "-q"],
        check=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = dist.glob("symdiff-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    templates = sorted(n for n in names if n.startswith("symdiff/codegen/templates/"))
    shipped = (ROOT / "symdiff" / "codegen" / "templates").glob("*.jinja")
    expected = sorted(f"symdiff/codegen/templates/{p.name}" for p in shipped)
    assert expected, "templates/ holds no .jinja file"
    assert set(expected) <= set(templates)
    assert "symdiff/cli/__init__.py" in names and "symdiff/__main__.py" in names

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", str(wheel), "--no-deps", "--target",
         str(target), "-q"],
        check=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    probe = (
        "import importlib.resources, json, symdiff; "
        "print(symdiff.__file__); "
        "print(json.dumps(sorted(p.name for p in "
        "importlib.resources.files('symdiff.codegen.templates').iterdir()"
        " if p.name.endswith('.jinja')))); "
        "m = symdiff.compile_tensor('mean((X @ w - y)**2)', "
        "{'X': ('n', 3), 'w': (3,), 'y': ('n',)}, ['w']); "
        "print(m.loss({'w': [1.0, 2.0, 3.0]}, [[1.0, 0.0, 0.0]], [0.0]))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=120, check=True,
    )  # fmt: skip
    location, found, tensor_loss = result.stdout.splitlines()
    assert location.startswith(str(target))
    assert json.loads(found) == [name.rsplit("/", 1)[1] for name in expected]
    assert float(tensor_loss) == 1.0  # the tensor template is found from the installed copy


def test_the_tests_and_their_subprocesses_import_the_installed_symdiff() -> None:
    """tests/conftest.py takes the checkout off sys.path (in every xdist worker too) and
    process_support starts subprocesses outside it: both import the installed package, unless a
    developer set SYMDIFF_TEST_CHECKOUT=1 to test the checkout."""
    here = Path(symdiff.__file__).resolve()
    child = run_python("-c", "import symdiff; print(symdiff.__file__)")
    assert child.returncode == 0, child.stderr
    assert Path(child.stdout.strip()).resolve() == here
    assert here.is_relative_to(ROOT) == (os.environ.get("SYMDIFF_TEST_CHECKOUT") == "1")
