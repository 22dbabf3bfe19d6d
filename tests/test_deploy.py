"""Production configuration: the compose file, `check --deploy`, security headers.

Docker cannot run on these machines, so the compose file is checked as data: it parses, names the
services the README documents, and runs exactly the commands the README shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.test import Client

ROOT = Path(settings.BASE_DIR)
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
README = (ROOT / "README.md").read_text()


def test_compose_names_the_production_services() -> None:
    services = COMPOSE["services"]
    assert set(services) >= {"db", "redis", "migrate", "web", "worker", "worker-embed", "proxy"}
    assert services["db"]["image"].startswith("pgvector/pgvector:")
    for name in ("db", "redis", "web", "worker", "worker-embed"):
        assert "healthcheck" in services[name], name
    gpu = services["worker-embed"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert services["worker-embed"]["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    assert "media:/data/media" in services["web"]["volumes"]
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


@pytest.mark.parametrize("service", ["migrate", "web", "worker", "worker-embed"])
def test_compose_runs_the_commands_the_readme_documents(service: str) -> None:
    command = " ".join(COMPOSE["services"][service]["command"])
    assert command in " ".join(README.split()), f"{service}: `{command}` is not in the README"


def test_embed_worker_takes_one_task_at_a_time_from_the_embed_queue() -> None:
    command = COMPOSE["services"]["worker-embed"]["command"]
    assert command[command.index("--queues") + 1] == "embed"
    assert command[command.index("--prefetch-multiplier") + 1] == "1"
    assert command[command.index("--concurrency") + 1] == "1"


def test_example_env_has_no_real_secret() -> None:
    text = (ROOT / "docker" / "example.env").read_text()
    assert "DJANGO_SECRET_KEY=change-me" in text

    def ignored(path: str) -> bool:
        check = ["git", "check-ignore", "--quiet", "--no-index", path]
        return subprocess.run(check, cwd=ROOT, timeout=30).returncode == 0

    # The real env file the README has people copy it to never reaches git, existing yet or not.
    assert ignored("docker/.env")
    assert not ignored("docker/example.env")


def _production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_SETTINGS_MODULE="gallery.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x7!" + "k" * 30 + "Q9#" + "z" * 20,
        ALLOWED_HOSTS="gallery.example.org",
        **extra,
    )
    return env


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = _production_env()
    del env["DJANGO_SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_pages_carry_security_headers(client: Client) -> None:
    response = client.get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


GUNICORN = ["gunicorn", "--config", "python:gallery.gunicorn_conf", "gallery.wsgi"]


def test_web_processes_take_their_settings_from_one_gunicorn_module() -> None:
    from gallery import gunicorn_conf

    assert COMPOSE["services"]["web"]["command"] == GUNICORN
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert f"CMD {json.dumps(GUNICORN)}" in dockerfile
    assert (gunicorn_conf.workers, gunicorn_conf.threads, gunicorn_conf.timeout) == (3, 2, 60)
    assert gunicorn_conf.preload_app is True  # one model copy shared by the workers
    assert gunicorn_conf.control_socket_disable is True


def test_container_health_checks_ask_for_readiness() -> None:
    """Traffic goes to a web container once its database answers and its encoder is warm."""
    test = COMPOSE["services"]["web"]["healthcheck"]["test"]
    assert test[-1] == "http://127.0.0.1:8000/healthz/ready"
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "curl -fsS http://127.0.0.1:8000/healthz/ready" in dockerfile
