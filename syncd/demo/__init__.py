"""The demo of ``syncd up --demo``: a shop database that keeps changing, and jobs for it.

``create_demo_source`` makes a SQLite file with customers, products and orders;
``DemoWriter`` keeps inserting, updating and deleting rows in the background
so every scheduled run has work; ``write_demo_jobs`` writes the jobs file.
"""

from syncd.demo.source import DEMO_TABLES, create_demo_source, demo_counts
from syncd.demo.writer import DemoWriter, write_demo_jobs

__all__ = ["DEMO_TABLES", "DemoWriter", "create_demo_source", "demo_counts", "write_demo_jobs"]
