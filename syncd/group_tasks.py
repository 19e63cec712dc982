"""The scheduled tick of a group job: expand the group, then one tick per table job.

Beat sends ``syncd.sync_group`` with the group's name on the group's schedule. The
worker that takes it expands the group at its source (a table that appeared is
picked up now, one that disappeared is reported) and sends an ordinary scheduled
tick (``syncd.sync``) for each table job, so the tables spread over every worker;
the source's slots keep at most ``max_connections`` of them reading at once.
"""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)

SYNC_GROUP_TASK = "syncd.sync_group"


@shared_task(name=SYNC_GROUP_TASK, ignore_result=True)
def sync_group(group: str) -> list[str]:
    """A scheduled tick of the group ``group``: the table jobs it sent a tick for."""
    from celery import current_app

    from syncd import get_state
    from syncd.engine.errors import ConfigError, SourceRefused, SourceUnavailable
    from syncd.group_tables import expand_group
    from syncd.runner import is_paused
    from syncd.tasks import SYNC_TASK, time_limits

    state = get_state()
    try:
        jobs = state.jobs()
        spec = jobs.groups[group]
    except (ConfigError, KeyError):
        log.error("job %s: scheduled tick not started: no such group in the jobs file", group)
        return []
    if is_paused(state, group):
        log.info("job %s is paused: scheduled tick not started", group)
        return []
    try:
        expansion = expand_group(state, jobs, spec)
    except (SourceUnavailable, SourceRefused, ConfigError) as exc:
        log.error("job %s: scheduled tick not started: %s", group, exc)
        return []
    for problem in expansion.problems:
        log.error("%s", problem)
    limit = float(state.config.SYNCD_MAX_RUN_SECONDS)
    sent = []
    for table_job in expansion.jobs:
        current_app.send_task(SYNC_TASK, kwargs={"job": table_job.name},
                              **time_limits(table_job, limit, waits=True))
        sent.append(table_job.name)
    log.info("job %s: %d table job(s) ticked: %s", group, len(sent), ", ".join(sent))
    return sent
