"""The configuration: declared once (gallery/config.py), documented by the README's table, read as
Django settings only, and read without side effects."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from gallery.config import Config, declared, markdown_table

ROOT = Path(__file__).resolve().parent.parent


def _readme_configuration() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|")) + "\n"


def test_readme_table_is_the_declaration() -> None:
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", _readme_configuration(), re.M))
    names = set(declared())
    assert not names - documented, f"declared, missing from the README: {names - documented}"
    assert not documented - names, f"in the README, never declared: {documented - names}"
    # Meanings and defaults too: regenerate with `python -m gallery.config`.
    assert _readme_configuration() == markdown_table()


def test_every_declaration_is_documented() -> None:
    for name, field in declared().items():
        assert field.description, name


def test_production_files_set_declared_variables_only() -> None:
    """docker/example.env and the application services of docker/compose.yaml name no variable
    the application would silently ignore (the database and broker containers have their own)."""
    names = set(declared())
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    used = {
        variable
        for service in compose["services"].values()
        for variable in service.get("environment") or {}
    }
    example = (ROOT / "docker" / "example.env").read_text()
    used |= set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example, re.M))
    containers = {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"} | {
        "RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS", "RABBITMQ_PASSWORD"
    }  # fmt: skip
    assert used - containers <= names, used - containers - names


def _environment_reads(path: Path) -> list[str]:
    """`os.environ[...]`, `os.environ.get(...)`, `os.getenv(...)`, and `getattr(settings, ...)`
    with a default, as 'file:line'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Subscript):
            reads = ast.unparse(node.value) == "os.environ"
        elif isinstance(node, ast.Call):
            function = ast.unparse(node.func)
            reads = function in {"os.getenv", "os.environ.get"} or (
                function == "getattr"
                and len(node.args) == 3
                and ast.unparse(node.args[0]) == "settings"
            )
        else:
            reads = False
        if reads:
            found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}")
    return found


def test_code_reads_django_settings_only() -> None:
    """Only the declaration reads the environment; the rest reads `settings.X`, whose default
    the declaration holds (no `getattr(settings, name, default)` writing it again)."""
    reads = []
    for package in ("gallery", "search"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path != ROOT / "gallery" / "config.py":
                reads += _environment_reads(path)
    assert reads == []


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALLERY_PAGE_SIZE", "twenty")
    with pytest.raises(ValidationError, match="GALLERY_PAGE_SIZE"):
        Config()


def test_values_and_derived_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in declared():
        monkeypatch.delenv(name, raising=False)
    production = Config()
    assert production.DJANGO_DEBUG is False and production.ALLOWED_HOSTS == []
    assert production.SECURE_SSL_REDIRECT is True and production.SECURE_HSTS_SECONDS == 31_536_000
    assert production.GALLERY_EMBEDDING_FALLBACK is False
    assert production.GALLERY_PAGE_RATE_LIMIT_PER_MINUTE == 5 * 120

    monkeypatch.setenv("DJANGO_DEBUG", "1")
    monkeypatch.setenv("ALLOWED_HOSTS", "a.example, b.example")
    monkeypatch.setenv("GALLERY_RATE_LIMIT_PER_MINUTE", "10")
    monkeypatch.setenv("GALLERY_QUERY_UPLOAD_DIR", "")  # empty is unset
    monkeypatch.setenv("SECURE_HSTS_SECONDS", "60")
    development = Config()
    assert development.ALLOWED_HOSTS == ["a.example", "b.example"]
    assert development.SECURE_SSL_REDIRECT is False and development.SECURE_HSTS_SECONDS == 60
    assert development.GALLERY_EMBEDDING_FALLBACK is True
    assert development.GALLERY_PAGE_RATE_LIMIT_PER_MINUTE == 50
    assert development.GALLERY_QUERY_UPLOAD_DIR is None


def test_loading_settings_starts_and_changes_nothing(tmp_path: Path) -> None:
    """Settings, the app registry and the image module load without starting the embedded
    server (no data folder appears) or changing Pillow's pixel limit at import."""
    pgdata = tmp_path / "pg"
    script = (
        "from PIL import Image; default = Image.MAX_IMAGE_PIXELS\n"
        "import gallery.settings, gallery.images\n"
        "assert Image.MAX_IMAGE_PIXELS == default, 'gallery.images changed Pillow at import'\n"
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "assert Image.MAX_IMAGE_PIXELS == settings.GALLERY_MAX_IMAGE_PIXELS != default\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="gallery.settings", DJANGO_DEBUG="1", GALLERY_PGDATA=str(pgdata)
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert not pgdata.exists()
