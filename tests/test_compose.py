"""The production shape: docker-compose.yml parses, has the documented services, and runs
the commands the README documents; the systemd units run the same commands."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest
import yaml

from syncd.jobs import load_jobs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def readme_commands() -> list[list[str]]:
    """Commands in the code blocks of the README section "Running as services"."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Running as services", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def command_of(service: dict) -> list[str]:  # type: ignore[type-arg]
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_compose_has_the_production_services(compose):
    services = compose["services"]
    assert set(services) == {"rabbitmq", "postgres", "source-db", "migrate", "web", "worker",
                             "beat"}
    for name in ("migrate", "web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["CELERY_BROKER_URL"].startswith("amqp://")
        assert env["SYNCD_DATABASE_URL"].startswith("postgresql+psycopg2://")
        assert "${SYNCD_SECRET_KEY:?" in env["SYNCD_SECRET_KEY"]  # refuses to start without
    for name in ("web", "worker", "beat"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["rabbitmq"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"


def test_compose_commands_are_the_readme_commands(compose):
    documented = readme_commands()
    services = compose["services"]
    assert command_of(services["worker"]) == shlex.split(
        "celery -A syncd.worker worker --loglevel=info")
    assert command_of(services["beat"]) == shlex.split(
        "celery -A syncd.worker beat --loglevel=info")
    assert command_of(services["migrate"]) == ["syncd", "db", "upgrade"]
    assert command_of(services["web"])[0] == "gunicorn"
    for name in ("migrate", "web", "worker", "beat"):
        assert command_of(services[name]) in documented, name


def test_systemd_units_run_the_readme_commands():
    documented = readme_commands()
    for unit, command in (("syncd-worker", "worker"), ("syncd-beat", "beat")):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read(ROOT / "deploy" / f"{unit}.service")
        words = shlex.split(parser["Service"]["ExecStart"])
        assert Path(words[0]).name == "celery"
        assert ["celery", *words[1:]] in documented
        assert words[3] == command
        assert parser["Service"]["EnvironmentFile"] == "/etc/syncd/syncd.env"
    web = configparser.ConfigParser(strict=False, interpolation=None)
    web.read(ROOT / "deploy" / "syncd-web.service")
    words = shlex.split(web["Service"]["ExecStart"])
    assert Path(words[0]).name == "gunicorn" and words[-1] == "syncd.web:create_web_app()"


def test_compose_files_it_mounts_exist_and_jobs_file_validates(compose):
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    jobs = load_jobs(ROOT / "deploy" / "jobs.compose.toml", {"SHOP_DB_PASSWORD": "x"})
    assert {"orders", "customers", "products"} <= set(jobs.jobs)
    assert "consumer_timeout = " in (ROOT / "deploy" / "rabbitmq.conf").read_text()


def test_example_jobs_file_validates():
    jobs = load_jobs(ROOT / "jobs.example.toml",
                     {"CRM_DB_PASSWORD": "x", "BILLING_DB_PASSWORD": "y"})
    assert jobs.jobs["plans"].schedule is None
    assert jobs.jobs["customers"].schedule is not None
