-- Leases on background jobs: of several nodes on one database, the holder of a job's
-- lease runs it. `scope` is a tenant id, or `*` for work on the whole deployment (so
-- no foreign key to tenants).
CREATE TABLE job_leases (
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (name, scope)
) STRICT;
