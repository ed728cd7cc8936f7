"""The SQL store of the product's business records: call records today, the number business
(issue 12) and billing tomorrow.

A top-level package, beside ``acd/`` and ``recordings/``, rather than ``cc_core/store``: it is
its own concern with its own dependency (a SQL driver) that the call flow never imports. The
call flow only appends summaries to Redis streams; this package turns them into rows, and the
commands that read the rows (export, reports) live here too. Nothing in ``cc_core/flow`` waits
on a SQL database, so a slow or unreachable store delays records, never calls.

* ``records.db``: one ``Database`` over SQLite (default: a file, nothing to start) or
  PostgreSQL (a DSN, psycopg 3), with one SQL text for both;
* ``records.migrate``: versioned schema migrations, ``records/migrations/NNNN_name.sql``, the
  one way any business adds its tables (``cc-core db migrate``);
* ``records.cdr``: the call record built from a call's summary, and its table;
* ``records.consumer``: the Redis consumer group that stores the summaries exactly once;
* ``records.report``: ``cc-core cdr export`` and ``cc-core cdr report``.
"""
