"""The web app and a group job: the dashboard folds the table jobs under the group; a
table job's page, its sync button and the JSON API work with the dot in its name."""

from __future__ import annotations

from typing import Any

from web_helpers import csrf_token, make_site

GROUP = '[[jobs]]\nname = "grp"\nsource = "src"\ntables = ["ord*"]\nmode = "full"\n' \
        'target = "g_{table}"\n'


def test_group_on_dashboard_and_table_job_pages(databases: Any, make_env: Any) -> None:
    site = make_site(databases, make_env, extra_jobs=(GROUP,))
    try:
        client = site.login()
        page = client.get("/").get_data(as_text=True)
        assert 'id="group-grp"' in page and "Not expanded yet" in page

        proc = site.env.syncd("run", "grp")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "run #1 grp.orders: succeeded read=20" in proc.stdout

        page = client.get("/").get_data(as_text=True)
        group = page[page.index('id="group-grp"'):page.index("</details>",
                                                               page.index('id="group-grp"'))]
        assert 'id="job-grp.orders"' in group and 'href="/jobs/grp.orders"' in group
        assert "orders → g_orders" in group

        job_page = client.get("/jobs/grp.orders")
        assert job_page.status_code == 200
        assert "#1" in job_page.get_data(as_text=True)

        token = csrf_token(job_page.get_data(as_text=True))
        queued = client.post("/jobs/grp.orders/sync", data={"csrf_token": token})
        assert queued.status_code == 303, queued.get_data(as_text=True)
        assert [r.job for r in site.runs("grp.orders")] == ["grp.orders", "grp.orders"]

        waiting = site.add_run(job="grp.orders", status="queued", waiting_slot="src")
        run_page = client.get(f"/runs/{waiting}").get_data(as_text=True)
        assert "waiting for a slot on source src" in run_page
        assert client.get("/jobs/grp.nothing").status_code == 404
    finally:
        site.state.dispose()
