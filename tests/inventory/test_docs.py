"""The project carries its own documentation: docs/ exists, README and CONTRIBUTING point at it,
nothing points outside the repository, and the files the docs name exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("architecture.md", "domain.md", "operations.md", "scaling.md")
# Spelled in pieces so this file does not match itself.
OUTSIDE = ("../" + "shared", "DESIGN" + ".md", "STYLE" + ".md", "DOMAIN" + ".md")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = []
    for name in names:
        path = ROOT / name
        if (
            path.suffix in {".py", ".md", ".yml", ".toml", ".txt", ".sh", ".example", ""}
            and path.is_file()
        ):
            files.append(path)
    return files


@pytest.mark.parametrize("name", DOCS)
def test_docs_exist_and_readme_and_contributing_point_at_them(name):
    text = (ROOT / "docs" / name).read_text()
    assert len(text.split()) > 300, f"docs/{name} is a stub"
    assert f"docs/{name}" in (ROOT / "README.md").read_text()
    if name in {"architecture.md", "domain.md"}:
        assert f"docs/{name}" in (ROOT / "CONTRIBUTING.md").read_text()


def test_nothing_points_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}: {needle}"
        for path in tracked_text_files()
        for needle in OUTSIDE
        if needle in path.read_text(errors="replace")
    ]
    assert offenders == []


@pytest.mark.parametrize("name", DOCS)
def test_files_and_links_the_docs_name_exist(name):
    text = (ROOT / "docs" / name).read_text()
    paths = set(re.findall(r"`((?:[\w.-]+/)+[\w.-]+\.(?:py|md|yml|sh|txt))`", text))
    paths |= {f"docs/{link}" for link in re.findall(r"\]\(([\w.-]+\.md)\)", text)}
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert missing == []
