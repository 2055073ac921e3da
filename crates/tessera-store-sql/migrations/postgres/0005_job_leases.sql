-- Leases on background jobs: of several nodes on one database, the holder of a job's
-- lease runs it. `scope` is a tenant id, or `*` for work on the whole deployment (so
-- no foreign key to tenants).
CREATE TABLE job_leases (
    name TEXT COLLATE "C" NOT NULL,
    scope TEXT COLLATE "C" NOT NULL,
    holder TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (name, scope)
);
