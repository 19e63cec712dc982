"""Fuzzing the jobs file: whatever a mutation of a valid file says, `syncd check` exits 0,
2 or 3 with one line per problem naming the file (and the job and field where there is
one), values cut to 200 characters, and never a traceback.

Fixed seed (derandomize) and a bounded number of examples: the same cases every run.
Most examples call the command in-process (click's runner); a few run the real command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_tables import create_orders

from syncd.jobs import JOB_KEYS

INTERESTING = [
    "", " ", "orders", "orders ", "nope.items", "a.b.c", "x" * 100_000, "y " * 50_000,
    "99999999999h", "9" * 5000 + "s", "0s", "1s", "1d", "*/5 * * * *", "99 * * * *",
    "* * * * * *", "${SYNCD_FUZZ_UNSET}", "sqlite:////nope/x.db", "foo://x/y", "mysql://h/d",
    "mysql+pymysql://u:secret@127.0.0.1:1/x", "postgresql+psycopg2://u@127.0.0.1:1/x",
    "id", "qty", "updated_at", "note", "syncd_runs", "t" * 70, "line\nbreak", "tab\there",
    "quote\"q", "UTC", "Mars/Phobos", "../../etc", "full", "incremental", "reconcile",
    "evolve", "fail", "ignore", "ünïcødé ✓", "\x00", "\x7f",
]
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SCALARS = st.one_of(
    st.sampled_from(INTERESTING), st.text(max_size=40), INT64,
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.datetimes(min_value=datetime(1, 1, 1)), st.dates(), st.times(),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.dictionaries(st.sampled_from(["a", "url", "name", "x y"]), SCALARS, max_size=3),
)
FIELDS = sorted(JOB_KEYS) + ["colour", "tables", "overrides"]


def base_document(source_url: str) -> dict[str, Any]:
    """A valid jobs file: two jobs on a SQLite source."""
    return {
        "sources": {"src": {"url": source_url, "timezone": "UTC"}},
        "jobs": [
            {"name": "orders", "source": "src", "table": "orders", "cursor": "updated_at",
             "primary_key": ["id"], "schedule": "*/5 * * * *", "batch_size": 500,
             "lookback": "1m", "timeout": "30m"},
            {"name": "orders-full", "source": "src", "table": "orders", "target": "orders_copy",
             "mode": "full", "columns": ["id", "qty"], "schedule": "1h",
             "deletes": "ignore", "max_delete_ratio": 0.5, "on_schema_change": "fail"},
        ],
    }


# -- a small TOML writer (the standard library only reads TOML) ---------------------------

def toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(value)


def to_toml(doc: dict[str, Any]) -> str:
    """The document as TOML: sources as [sources.x] tables, jobs as [[jobs]] blocks."""
    head: list[str] = []
    tables: list[str] = []
    for key, value in doc.items():
        if key == "sources" and isinstance(value, dict):
            plain = {k: v for k, v in value.items() if not isinstance(v, dict)}
            if plain:
                tables.append("[sources]\n" + "".join(
                    f"{toml_key(k)} = {toml_value(v)}\n" for k, v in plain.items()))
            for name, source in value.items():
                if isinstance(source, dict):
                    tables.append(f"[sources.{toml_key(name)}]\n" + "".join(
                        f"{toml_key(k)} = {toml_value(v)}\n" for k, v in source.items()))
        elif key == "jobs" and isinstance(value, list) and value and all(
                isinstance(job, dict) for job in value):
            for job in value:
                tables.append("[[jobs]]\n" + "".join(
                    f"{toml_key(k)} = {toml_value(v)}\n" for k, v in job.items()))
        else:
            head.append(f"{toml_key(key)} = {toml_value(value)}\n")
    return "".join(head) + "\n" + "\n".join(tables)


# -- mutations ----------------------------------------------------------------------------

NAMES = st.one_of(st.sampled_from(["id", "qty", "updated_at", "note", "customer", "orders",
                                    "nope.orders", "main.orders", "ID", "t" * 70, "x" * 100_000,
                                    "orders ", "a.b.c", "", "syncd_runs"]), st.text(max_size=20))
DURATIONS = st.sampled_from(["0s", "1s", "59s", "5m", "2h", "3650d", "3651d", "99999999999h",
                             "9" * 5000 + "s", "-1m", "1 m", "1w", "*/5 * * * *", "0 0 31 2 *",
                             "99 * * * *", "* * * * * *", "@daily", "x" * 100_000])


def field_values(field: str) -> Any:
    """Values worth trying for one job field: plausible ones and anything at all."""
    plausible = {
        "name": st.one_of(NAMES, st.from_regex(r"[a-z0-9_-]{1,120}", fullmatch=True)),
        "source": st.sampled_from(["src", "other", "SRC", ""]),
        "table": NAMES, "target": NAMES, "cursor": NAMES,
        "primary_key": st.lists(NAMES, max_size=3), "columns": st.lists(NAMES, max_size=4),
        "schedule": DURATIONS, "lookback": DURATIONS, "timeout": DURATIONS,
        "batch_size": INT64, "max_delete_ratio": st.floats(),
        "mode": st.sampled_from(["full", "incremental", "Full"]),
        "deletes": st.sampled_from(["ignore", "reconcile", "all"]),
        "on_schema_change": st.sampled_from(["evolve", "fail", "ignore"]),
    }.get(field, VALUES)
    return st.one_of(plausible, plausible, plausible, VALUES)


def url_values(source_url: str) -> Any:
    """Source URLs: the good one changed a little, unreachable ones, broken ones, anything."""
    return st.one_of(st.sampled_from([
        source_url, source_url + "?timeout=x", source_url + "?mode=ro", source_url.upper(),
        "sqlite:////nope/x.db", "sqlite://", "sqlite:///", "sqlite:///relative.sqlite",
        "mysql+pymysql://u:secret@127.0.0.1:1/x", "postgresql+psycopg2://u:secret@127.0.0.1:1/x",
        "postgresql+psycopg2://u:secret@127.0.0.1:notaport/x", "mysql+pymysql:///",
        "mysql://h/d", "foo://x/y", "${SYNCD_FUZZ_UNSET}", "${PATH}", "://", "sqlite",
        source_url.replace("sqlite:///", "sqlite:////"),
    ]), st.sampled_from(["sqlite:////nope/x.db", "mysql+pymysql://u:secret@127.0.0.1:1/x",
                         "postgresql+psycopg2://u:secret@127.0.0.1:1/x"]),
        st.text(max_size=30), VALUES)


@st.composite
def mutated_documents(draw: Any, source_url: str) -> tuple[str, list[str]]:
    """(TOML text, the long strings it holds) after 1-3 mutations of the base document."""
    doc = base_document(source_url)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["job"] * 12 + ["source"] * 6 + ["top", "delete-job"]))
        jobs = doc.get("jobs")
        if kind == "job" and isinstance(jobs, list) and jobs and isinstance(jobs[0], dict):
            job = jobs[draw(st.integers(0, len(jobs) - 1))]
            field = draw(st.sampled_from(FIELDS + ["table", "cursor", "primary_key", "columns",
                                                   "schedule", "name"]))
            if isinstance(job, dict):
                if field in job and draw(st.integers(0, 4)) == 0:
                    del job[field]
                else:
                    job[field] = draw(field_values(field))
        elif kind == "source" and isinstance(doc.get("sources"), dict):
            sources = doc["sources"]
            name = draw(st.sampled_from(["src"] * 8 + ["other", "x\ny", "s" * 300]))
            source = sources.setdefault(name, {})
            if isinstance(source, dict):
                field = draw(st.sampled_from(["url"] * 6 + ["timezone", "password"]))
                source[field] = draw(url_values(source_url) if field == "url" else
                                     st.one_of(st.sampled_from(["UTC", "Europe/Berlin",
                                                                "Mars/Phobos", "../../etc",
                                                                "\x00", "z" * 300]), VALUES))
            if draw(st.integers(0, 19)) == 0:
                sources[name] = draw(VALUES)
        elif kind == "delete-job" and isinstance(jobs, list) and jobs:
            jobs.pop()
        else:
            doc[draw(st.sampled_from(["sources", "jobs", "notify", "extra"]))] = draw(VALUES)
    text = to_toml(doc)
    long_strings = [s for s in _strings(doc) if len(s) > 200]
    return text, long_strings


@st.composite
def single_changes(draw: Any, source_url: str) -> tuple[str, list[str]]:
    """One plausible change (a job field or the source's URL): the checks at the source."""
    doc = base_document(source_url)
    if draw(st.integers(0, 3)) == 0:
        doc["sources"]["src"]["url"] = draw(url_values(source_url))
    else:
        job = doc["jobs"][draw(st.integers(0, 1))]
        field = draw(st.sampled_from(["table", "cursor", "primary_key", "columns", "target",
                                      "schedule", "lookback", "timeout", "name", "mode"]))
        job[field] = draw(field_values(field))
    return to_toml(doc), [s for s in _strings(doc) if len(s) > 200]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@st.composite
def garbled_texts(draw: Any, source_url: str) -> tuple[str, list[str]]:
    """The valid file's text with a few characters inserted, deleted or replaced."""
    text = to_toml(base_document(source_url))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(['"', "'", "[", "]", "=", "\n", ".", "#", "{", "\\", "x",
                                      "0", " ", "é"]))
        if op == "insert":
            text = text[:at] + piece + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + 1:]
        else:
            text = text[:at] + piece + text[at + 1:]
    return text, []


# -- the checks ---------------------------------------------------------------------------

LINE = re.compile(
    r'^error: (?P<file>[^:]+): (?:'
    r'not valid TOML: |unknown top-level key|\[sources\] must be|jobs must be|'
    r'source "(?:[^"\\]|\\.)*(?:\.\.\.\(\d+ characters\))?"(?: \([^)]*\))?: |'
    r'job "[a-z0-9_-]+": (?:field "[a-z_]+": |unknown field)|'
    r'job #\d+: (?:field "name": |must be a table)|'
    r'\[notify\]: )')


class Fuzz:
    """A syncd installation whose jobs file each example rewrites."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.source_url = f"sqlite:///{workdir / 'source.sqlite'}"
        create_orders(self.source_url, 20)
        self.jobs_file = workdir / "jobs.toml"
        self.env = {
            "SYNCD_DATABASE_URL": f"sqlite:///{workdir / 'local.sqlite'}",
            "SYNCD_JOBS_FILE": str(self.jobs_file),
            "SYNCD_VAR_DIR": str(workdir / "var"),
            "SYNCD_RETRY_ATTEMPTS": "1",
        }

    def check_in_process(self, text: str) -> tuple[int, str, str]:
        from click.testing import CliRunner

        from syncd.cli import cli

        self.jobs_file.write_text(text, encoding="utf-8")
        result = CliRunner(env=self.env).invoke(cli, ["check"], catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            import traceback

            pytest.fail("traceback from syncd check:\n" + "".join(traceback.format_exception(
                result.exception)) + "\n--- jobs file ---\n" + text[:3000])
        return result.exit_code, result.stdout, result.stderr

    def check_command(self, text: str) -> tuple[int, str, str]:
        self.jobs_file.write_text(text, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "CELERY_"))}
        env.update(self.env)
        proc = subprocess.run([sys.executable, "-m", "syncd", "check"], env=env, cwd=self.dir,
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr


def assert_clean(fuzz: Fuzz, text: str, long_strings: list[str],
                 outcome: tuple[int, str, str]) -> None:
    code, out, err = outcome
    shown = f"exit {code}\n--- stdout ---\n{out[:2000]}\n--- stderr ---\n{err[:2000]}\n" \
            f"--- jobs file ---\n{text[:2000]}"
    assert code in (0, 2, 3), shown
    assert "Traceback" not in out + err, shown
    if code == 0:  # warnings (e.g. SQLAlchemy's about a URL option it ignores) may remain
        assert "error:" not in err and out.rstrip().endswith("job(s) ok"), shown
    else:
        lines = err.rstrip("\n").split("\n")
        assert lines and all(LINE.match(line) for line in lines), shown
        assert all(LINE.match(line).group("file") == str(fuzz.jobs_file)  # type: ignore[union-attr]
                   for line in lines), shown
    for line in (out + err).splitlines():
        assert len(line) < 1500, shown
    for value in long_strings:  # no value longer than 200 characters is echoed whole
        assert value not in out + err, shown
    in_urls = sum(line.count("secret") for line in text.splitlines() if line.startswith("url ="))
    if in_urls and in_urls == text.count("secret"):  # a password only ever shows masked
        assert "secret" not in out + err, shown


@pytest.fixture(scope="module")
def fuzz() -> Iterator[Fuzz]:
    with tempfile.TemporaryDirectory(prefix="syncd-fuzz-") as workdir:
        here = os.getcwd()
        os.chdir(workdir)  # a relative sqlite:/// URL in a mutation lands here
        try:
            yield Fuzz(Path(workdir))
        finally:
            os.chdir(here)


SETTINGS = settings(derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_the_base_file_is_valid(fuzz: Fuzz) -> None:
    code, out, err = fuzz.check_in_process(to_toml(base_document(fuzz.source_url)))
    assert (code, err) == (0, ""), out + err
    assert "2 job(s) ok" in out


@settings(SETTINGS, max_examples=600)
@given(data=st.data())
def test_mutated_jobs_file_never_gives_a_traceback(fuzz: Fuzz, data: Any) -> None:
    text, long_strings = data.draw(mutated_documents(fuzz.source_url))
    assert_clean(fuzz, text, long_strings, fuzz.check_in_process(text))


@settings(SETTINGS, max_examples=400)
@given(data=st.data())
def test_one_change_checked_at_the_source_never_gives_a_traceback(fuzz: Fuzz, data: Any) -> None:
    text, long_strings = data.draw(single_changes(fuzz.source_url))
    assert_clean(fuzz, text, long_strings, fuzz.check_in_process(text))


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_garbled_jobs_file_never_gives_a_traceback(fuzz: Fuzz, data: Any) -> None:
    text, long_strings = data.draw(garbled_texts(fuzz.source_url))
    assert_clean(fuzz, text, long_strings, fuzz.check_in_process(text))


@settings(SETTINGS, max_examples=4)
@given(data=st.data())
def test_mutated_jobs_file_through_the_real_command(fuzz: Fuzz, data: Any) -> None:
    text, long_strings = data.draw(mutated_documents(fuzz.source_url))
    assert_clean(fuzz, text, long_strings, fuzz.check_command(text))
