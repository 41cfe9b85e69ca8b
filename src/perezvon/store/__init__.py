"""Storage: the tables and their migrations, the database handle (one code path for SQLite and PostgreSQL)
and the storage services build on: the site snapshot cache, the group commit (many writers, one
transaction), the queries of a request's life (``requests``) and the webhook outbox (``outbox``). It
imports nothing above it; the queries of a feature live in ``services/`` (or here), never in ``api/`` or
``web/``.
"""
