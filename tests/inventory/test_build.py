"""What the build and the test set-up derive from the environment: the image's build steps run
with only the image's environment, and the test database is named after DATABASE_URL."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_dockerfile_runs_the_build_steps_ci_checks():
    dockerfile = (ROOT / "Dockerfile").read_text()
    runs = re.findall(r"(?m)^RUN (.+)$", dockerfile)

    assert "sh scripts/image_build.sh deps" in runs
    assert "sh scripts/image_build.sh static" in runs
    assert "bash scripts/check_image_build.sh" in (ROOT / ".ci" / "run").read_text()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


@pytest.mark.slow
def test_the_image_collects_static_files_with_only_the_image_environment(tmp_path):
    """The Dockerfile's collectstatic step, as `docker build` runs it: production settings and
    nothing but the image's ENV (no DATABASE_URL, no secrets, no .env)."""
    app = tmp_path / "app"
    shutil.copytree(
        ROOT,
        app,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            ".env",
            "staticfiles",
            "media",
            "db.sqlite3*",
            "__pycache__",
            ".pytest_cache",
            ".ruff_cache",
            ".hypothesis",
            "bench",
        ),
    )
    image_env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }

    result = subprocess.run(
        ["sh", "scripts/image_build.sh", "static"],
        cwd=app,
        env=image_env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert (app / "staticfiles" / "admin" / "css" / "base.css").is_file()


SHOW_TEST_DATABASE = (
    "import config.settings.test as s; print(s.DATABASES['default']['TEST']['NAME'])"
)


@pytest.mark.parametrize(
    "url,override,expected",
    [
        ("postgres://ci@127.0.0.1:5432/shop_ci", None, "test_shop_ci"),
        ("postgres://ci@127.0.0.1:5432/other_run", None, "test_other_run"),
        ("postgres://ci@127.0.0.1:5432/shop_ci", "test_mine", "test_mine"),
    ],
)
def test_the_test_database_is_named_after_database_url(url, override, expected):
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DJANGO_SETTINGS_MODULE", "TEST_DATABASE_NAME"}
    }
    env["DATABASE_URL"] = url
    if override:
        env["TEST_DATABASE_NAME"] = override

    result = subprocess.run(
        [sys.executable, "-c", SHOW_TEST_DATABASE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
