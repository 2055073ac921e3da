-- Tessera schema 2: sessions, the sign-in log and counters (state that changes with
-- every sign-in, outside the audit chain's lock).

CREATE TABLE sessions (
    tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C",
    created BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    revoked BIGINT,
    version BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX sessions_by_user ON sessions (tenant, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX sessions_by_expiry ON sessions (expires);

CREATE TABLE sign_ins (
    tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    time BIGINT NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C",
    user_name TEXT COLLATE "C" NOT NULL,
    application TEXT COLLATE "C",
    result TEXT COLLATE "C" NOT NULL,
    failure_code TEXT COLLATE "C",
    correlation_id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, time, id)
);
CREATE INDEX sign_ins_by_user ON sign_ins (tenant, user_id, time);
CREATE INDEX sign_ins_by_name ON sign_ins (tenant, user_name, time);
CREATE INDEX sign_ins_by_result ON sign_ins (tenant, result, time);

CREATE TABLE counters (
    tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    key TEXT COLLATE "C" NOT NULL,
    value BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (tenant, key)
);
