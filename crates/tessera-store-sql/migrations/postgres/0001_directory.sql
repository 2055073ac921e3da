-- Tessera schema 1: tenants, objects, links and the audit chain.
-- Text keys use the "C" collation so that ordering is bytewise, as on SQLite.

CREATE TABLE installation (
    singleton BIGINT PRIMARY KEY CHECK (singleton = 1),
    default_tenant TEXT COLLATE "C" NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE tenants (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE objects (
    tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    kind TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created BIGINT NOT NULL,
    modified BIGINT NOT NULL,
    key1 TEXT COLLATE "C",
    key2 TEXT COLLATE "C",
    sort_key TEXT COLLATE "C" NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (tenant, kind, id)
);
CREATE UNIQUE INDEX objects_key1 ON objects (tenant, kind, key1) WHERE key1 IS NOT NULL;
CREATE INDEX objects_key2 ON objects (tenant, kind, key2, sort_key, id) WHERE key2 IS NOT NULL;
CREATE INDEX objects_sort ON objects (tenant, kind, sort_key, id);

CREATE TABLE links (
    tenant TEXT COLLATE "C" NOT NULL,
    rel TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    source_kind TEXT COLLATE "C" NOT NULL,
    target TEXT COLLATE "C" NOT NULL,
    target_kind TEXT COLLATE "C" NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (tenant, rel, source, target),
    FOREIGN KEY (tenant, source_kind, source) REFERENCES objects (tenant, kind, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, target_kind, target) REFERENCES objects (tenant, kind, id) ON DELETE CASCADE
);
CREATE INDEX links_target ON links (tenant, rel, target);
CREATE INDEX links_target_any ON links (tenant, target);

CREATE TABLE audit_heads (
    tenant TEXT COLLATE "C" PRIMARY KEY REFERENCES tenants (id),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE audit_events (
    tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    seq BIGINT NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    time BIGINT NOT NULL,
    actor_id TEXT COLLATE "C",
    action TEXT COLLATE "C" NOT NULL,
    target_id TEXT COLLATE "C",
    correlation_id TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant, seq)
);
CREATE INDEX audit_by_actor ON audit_events (tenant, actor_id, seq);
CREATE INDEX audit_by_target ON audit_events (tenant, target_id, seq);
CREATE INDEX audit_by_action ON audit_events (tenant, action, seq);
CREATE INDEX audit_by_time ON audit_events (tenant, time);

-- Defence in depth: the application never updates or deletes audit events. Someone
-- with enough database rights can drop this trigger; the hash chain then shows an edit,
-- unless every later hash and the head are recomputed too (see ARCHITECTURE.md).
CREATE FUNCTION tessera_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION tessera_audit_append_only();
