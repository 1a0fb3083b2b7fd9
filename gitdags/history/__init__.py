"""History: the SQLite store (DAGs and their versions, sources and syncs, audit log and hooks'
outbox, files), its migrations, and the operator actions (rollback, pin, pause) that change what
is served. The only package that runs SQL. Imports the vocabulary and git."""
