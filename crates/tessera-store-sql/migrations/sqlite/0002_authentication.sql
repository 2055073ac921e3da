-- Tessera schema 2: sessions, the sign-in log and counters (state that changes with
-- every sign-in, outside the audit chain's lock).

CREATE TABLE sessions (
    tenant TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    user_id TEXT,
    created INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    revoked INTEGER,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) STRICT;
CREATE INDEX sessions_by_user ON sessions (tenant, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX sessions_by_expiry ON sessions (expires);

CREATE TABLE sign_ins (
    tenant TEXT NOT NULL REFERENCES tenants (id),
    time INTEGER NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT,
    user_name TEXT NOT NULL,
    application TEXT,
    result TEXT NOT NULL,
    failure_code TEXT,
    correlation_id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, time, id)
) STRICT;
CREATE INDEX sign_ins_by_user ON sign_ins (tenant, user_id, time);
CREATE INDEX sign_ins_by_name ON sign_ins (tenant, user_name, time);
CREATE INDEX sign_ins_by_result ON sign_ins (tenant, result, time);

CREATE TABLE counters (
    tenant TEXT NOT NULL REFERENCES tenants (id),
    key TEXT NOT NULL,
    value INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
) STRICT;
