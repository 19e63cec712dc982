"""dlt's sql_database source into PostgreSQL (run inside bench/.venv-dlt by bench/run.py).

Usage: dlt_load.py BACKEND SOURCE_URL DEST_URL TABLE WORK_DIR
BACKEND: "sqlalchemy" (dlt's default) or "connectorx" (intermediate files uncompressed).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    backend, source_url, dest_url, table, work = sys.argv[1:6]
    os.environ["DATA_WRITER__DISABLE_COMPRESSION"] = "true"
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    import dlt
    from dlt.sources.sql_database import sql_table

    kwargs: dict[str, object] = {}
    if backend == "connectorx":
        kwargs["backend_kwargs"] = {"conn": source_url.replace("mysql+pymysql://", "mysql://")}
    resource = sql_table(credentials=source_url, table=table, backend=backend, **kwargs)
    pipeline = dlt.pipeline(pipeline_name=f"bench_{backend}", pipelines_dir=work,
                            destination=dlt.destinations.postgres(credentials=dest_url),
                            dataset_name=f"dlt_{backend}", progress=None)
    info = pipeline.run(resource, write_disposition="replace")
    info.raise_on_failed_jobs()


if __name__ == "__main__":
    main()
