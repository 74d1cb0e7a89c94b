"""Installing says what it costs, and building the package raises no setuptools warning."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUILD_METADATA = """
import tempfile, warnings
import setuptools.build_meta as backend
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    backend.prepare_metadata_for_build_wheel(tempfile.mkdtemp())
for warning in caught:
    print("WARNING:", str(warning.message).splitlines()[0])
"""


def test_the_license_is_an_spdx_expression() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in pyproject["build-system"]["requires"]


def test_building_the_metadata_warns_about_nothing(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    done = subprocess.run(
        [sys.executable, "-c", BUILD_METADATA],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stdout.splitlines() if line.startswith("WARNING:")]
    assert warnings == []
    assert "deprecated" not in done.stderr.lower()


def test_make_says_before_installing_that_it_takes_minutes_and_3_gb() -> None:
    makefile = (ROOT / "Makefile").read_text()
    stamp = makefile[makefile.index("$(STAMP):") :]
    say, install = stamp.index("a few minutes and about 3 GB"), stamp.index("pip install")
    assert say < install
