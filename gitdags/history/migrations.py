"""The schema of the state database, as plain SQL migrations numbered by `PRAGMA user_version`
(`HistoryStore` runs the missing ones, each in the transaction that records its number).

sqlite-utils built the first two; it was dropped: its write helpers commit on their own, which
would split a sync into several transactions, and importing it cost 100 ms of start-up. These
scripts create exactly the tables it made, so older databases migrate the same way.
"""

from __future__ import annotations

_V1 = """
CREATE TABLE "sources" (
   "name" TEXT PRIMARY KEY, "url" TEXT NOT NULL, "branch" TEXT NOT NULL, "fingerprint" TEXT,
   "newest_commit" TEXT, "served_commit" TEXT, "last_sync_at" TEXT, "last_error" TEXT,
   "last_error_at" TEXT, "failures" INTEGER DEFAULT 0, "pinned_commit" TEXT, "pinned_at" TEXT
);
CREATE TABLE "files" (
   "source" TEXT, "path" TEXT, "blob" TEXT NOT NULL, "dag_id" TEXT, "issues" TEXT DEFAULT '[]',
   PRIMARY KEY ("source", "path")
);
CREATE INDEX "idx_files_dag_id" ON "files" ("dag_id");
CREATE TABLE "dags" (
   "dag_id" TEXT PRIMARY KEY, "source" TEXT NOT NULL, "path" TEXT NOT NULL,
   "status" TEXT NOT NULL, "served_version" INTEGER, "newest_version" INTEGER,
   "newest_valid" INTEGER, "enabled" INTEGER, "paused" INTEGER DEFAULT 0,
   "pinned" INTEGER DEFAULT 0, "pin_until_change" INTEGER DEFAULT 0,
   "deleted" INTEGER DEFAULT 0, "owner" TEXT, "tags" TEXT, "schedule" TEXT,
   "depends_on_dags" TEXT, "served_commit" TEXT, "created_at" TEXT, "updated_at" TEXT
);
CREATE INDEX "idx_dags_source_path" ON "dags" ("source", "path");
CREATE INDEX "idx_dags_status" ON "dags" ("status");
CREATE TABLE "versions" (
   "dag_id" TEXT, "version" INTEGER, "source" TEXT NOT NULL, "commit_sha" TEXT NOT NULL,
   "author" TEXT, "committed_at" TEXT, "message" TEXT, "path" TEXT, "content_hash" TEXT,
   "valid" INTEGER NOT NULL, "issues" TEXT, "spec" TEXT, "content" TEXT, "recorded_at" TEXT,
   PRIMARY KEY ("dag_id", "version")
);
CREATE INDEX "idx_versions_commit_sha" ON "versions" ("commit_sha");
CREATE TABLE "syncs" (
   "id" INTEGER PRIMARY KEY, "source" TEXT, "started_at" TEXT, "from_commit" TEXT,
   "to_commit" TEXT, "added" INTEGER, "changed" INTEGER, "deleted" INTEGER, "invalid" INTEGER,
   "unchanged" INTEGER, "duration_ms" REAL, "forced" INTEGER, "error" TEXT, "changes" TEXT,
   "issues" TEXT
);
CREATE INDEX "idx_syncs_source_id" ON "syncs" ("source", "id");
CREATE TABLE "audit" (
   "id" INTEGER PRIMARY KEY, "at" TEXT, "actor" TEXT, "action" TEXT, "dag_id" TEXT,
   "source" TEXT, "reason" TEXT, "detail" TEXT
);
CREATE INDEX "idx_audit_dag_id_id" ON "audit" ("dag_id", "id");
CREATE TABLE "meta" ("key" TEXT PRIMARY KEY, "value" TEXT);
"""

_V2 = """
CREATE TABLE "hooks" (
   "name" TEXT PRIMARY KEY, "last_ok_at" TEXT, "last_error" TEXT, "last_error_at" TEXT,
   "failures" INTEGER DEFAULT 0, "delivered" INTEGER DEFAULT 0
);
"""

# 3: one file, many DAGs. `file_dags` lists the DAG ids each file defines (claimed = the file
# owns the id; 0 = refused, e.g. a duplicate); `files` loses its one `dag_id`, gains the
# definition kind, the modules it imports, the blob served for it (Python files are served as
# files) and a flag asking the next sync to check it again; a version records its file's blob.
# Every file that held a DAG keeps it, so every history is kept.
_V3 = """
CREATE TABLE "file_dags" (
   "source" TEXT NOT NULL, "path" TEXT NOT NULL, "dag_id" TEXT NOT NULL,
   "claimed" INTEGER NOT NULL DEFAULT 1,
   PRIMARY KEY ("source", "path", "dag_id")
);
CREATE INDEX "idx_file_dags_dag_id" ON "file_dags" ("dag_id");
INSERT INTO file_dags (source, path, dag_id, claimed)
   SELECT source, path, dag_id, issues = '[]' FROM files WHERE dag_id IS NOT NULL;
CREATE TABLE "files_v3" (
   "source" TEXT, "path" TEXT, "blob" TEXT NOT NULL, "kind" TEXT NOT NULL DEFAULT 'v1',
   "issues" TEXT NOT NULL DEFAULT '[]', "recheck" INTEGER NOT NULL DEFAULT 0,
   "imports" TEXT NOT NULL DEFAULT '[]', "served_blob" TEXT,
   PRIMARY KEY ("source", "path")
);
INSERT INTO files_v3 (source, path, blob, kind, issues)
   SELECT source, path, blob, 'v1', COALESCE(issues, '[]') FROM files;
DROP TABLE files;
ALTER TABLE files_v3 RENAME TO files;
CREATE INDEX "idx_files_recheck" ON "files" ("source") WHERE recheck = 1;
CREATE INDEX "idx_dags_live" ON "dags" ("source") WHERE deleted = 0;
CREATE INDEX "idx_dags_with_deps" ON "dags" ("source") WHERE depends_on_dags != '[]';
CREATE INDEX "idx_dags_newest_invalid" ON "dags" ("source") WHERE newest_valid = 0;
ALTER TABLE sources ADD COLUMN "last_attempt_at" TEXT;
ALTER TABLE versions ADD COLUMN "blob" TEXT;
ALTER TABLE syncs ADD COLUMN "note" TEXT;
"""

# Hook deliveries are written in the transaction that makes the change and removed once
# delivered: a process killed in between delivers them later (at least once).
_V4 = """
CREATE TABLE "outbox" ("id" INTEGER PRIMARY KEY, "body" TEXT NOT NULL, "created_at" TEXT NOT NULL);
"""

# What each consumer (an orchestrator's API) has of each served DAG, as its last poll found it,
# and each consumer's last poll.
_V5 = """
CREATE TABLE "consumer_dags" (
   "consumer" TEXT NOT NULL, "dag_id" TEXT NOT NULL, "state" TEXT NOT NULL, "version" INTEGER,
   "since" TEXT NOT NULL, "parsed_at" TEXT, "bundle_version" TEXT, "paused" INTEGER,
   "error" TEXT NOT NULL DEFAULT '', "checked_at" TEXT NOT NULL,
   PRIMARY KEY ("consumer", "dag_id")
);
CREATE TABLE "consumers" (
   "name" TEXT PRIMARY KEY, "api_url" TEXT NOT NULL, "checked_at" TEXT, "error" TEXT,
   "requests" INTEGER NOT NULL DEFAULT 0
);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)
