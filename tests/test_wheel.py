"""The built wheel works outside the checkout: schemas and the default register travel with it."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from dpa.resources import default_register_text

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_validates_a_register(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("dpa-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dpa/schemas/register.schema.json" in names
    assert "dpa/data/default-register.yaml" in names
    assert any(n.startswith("dpa/migrations/versions/") for n in names)

    # A fresh venv outside the repo. Its own site-packages gets the wheel; the test
    # environment's site-packages is appended (not searched first) to provide the
    # dependencies without a download. The editable dpa there is never reached: its
    # .pth hook is not processed for an appended path, and the wheel's dpa comes first.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
            site,
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    register_file = tmp_path / "register.yaml"
    register_file.write_text(default_register_text())
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    located = subprocess.run(
        [
            str(python),
            "-c",
            "import dpa, dpa.resources as r; print(dpa.__file__); print(r.schema_dir())",
        ],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert all(p.startswith(site) for p in located), located
    script = "import sys; from dpa.cli import app; sys.argv = ['dpa', 'register', 'validate', sys.argv[1]]; app()"
    run = subprocess.run(
        [str(python), "-c", script, str(register_file)], cwd=workdir, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "valid register" in run.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(default_register_text().replace("anchor: collected", "anchor: someday", 1))
    run = subprocess.run(
        [str(python), "-c", script, str(bad)], cwd=workdir, capture_output=True, text=True
    )
    assert run.returncode == 2 and "retention.anchor" in run.stderr
