"""The README stands alone: it points only to files of the repository and to its own
sections, never to documents a user of the project does not have."""

from __future__ import annotations

import re

from conftest import PROJECT_DIR

README = (PROJECT_DIR / "README.md").read_text()
RUNTIME = ("var/",)  # written by syncd itself when it runs


def test_readme_names_no_document_outside_the_repository() -> None:
    for word in ("DESIGN", "STYLE.md"):
        assert word not in README, word


def test_every_file_the_readme_names_is_in_the_repository() -> None:
    names = set(re.findall(r"`((?:\.ci|bench|deploy|docs|migrations|syncd|tests)/[\w./-]*"
                           r"|[\w.-]+\.(?:toml|py|yml|md|ini)|Dockerfile)`", README))
    assert "jobs.example.toml" in names and "docker-compose.yml" in names
    missing = [n for n in names if not n.startswith(RUNTIME) and n != "jobs.toml"
               and not (PROJECT_DIR / n).exists()]
    assert not missing, missing


def test_sections_the_readme_refers_to_exist() -> None:
    headings = set(re.findall(r"^## (.+)$", README, re.M))
    for ref in re.findall(r'see "([^"]+)"', README):
        assert ref in headings, ref
