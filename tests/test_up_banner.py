"""The first ``syncd up`` prints the admin password again once the services' start-up banners
are out, with the command that sets another one."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from typing import Any

from celery_helpers import wait_for
from test_services import free_port, group_alive


def test_admin_password_is_repeated_after_the_start_up_banners(databases: Any,
                                                                make_env: Any) -> None:
    env = make_env(databases.sqlite("local"), migrate=False)  # an empty jobs file: no jobs
    out = env.tmp_path / "up.out"
    port = free_port()
    with open(out, "wb") as sink:
        up = subprocess.Popen([sys.executable, "-m", "syncd", "up", "--port", str(port),
                               "--concurrency", "1"], env=env.env, cwd=env.tmp_path,
                              stdout=sink, stderr=subprocess.STDOUT, process_group=0)
    try:
        wait_for(lambda: "follow the syncs with" in out.read_text(errors="replace"), 90,
                 lambda: f"syncd up never announced the admin page:\n{out.read_text()}")
        up.send_signal(signal.SIGINT)
        up.wait(timeout=90)
    finally:
        if group_alive(up.pid):
            up.kill()
    text = out.read_text(errors="replace")
    created = re.search(r"created the web user admin with password (\S+)", text)
    assert created, text
    password = created.group(1)
    again = text.index(f"log in as admin with password {password} "
                       "(set another with: syncd users passwd admin)")
    assert text.index("[tasks]") < again  # the worker's banner came first
    assert text.index("celery@") < again
    assert text.index(" ready.") < again  # the worker consumes
    assert text.index("Listening at:") < again  # gunicorn's
    assert text.index(f"admin page: http://127.0.0.1:{port}/") < again
    assert up.returncode == 0, text
