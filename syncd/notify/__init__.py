"""Alerts: the ``[notify]`` section of the jobs file, the events worth telling someone about
(a run failed, a job recovered, failed N runs in a row, its data is stale), and their
delivery by webhook and e-mail, retried and recorded in ``syncd_alert_deliveries``.

``syncd.notify.config`` parses the section (imported by ``syncd.jobs``; it imports nothing
of syncd), ``syncd.notify.events`` decides the events, ``syncd.notify.send`` talks to the
targets and ``syncd.notify.alerts`` ties them together for the runner, housekeeping, the
``syncd notify test`` command and the deliveries page.
"""
