-- Tessera schema 1: tenants, objects, links and the audit chain.

CREATE TABLE installation (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    default_tenant TEXT NOT NULL,
    created INTEGER NOT NULL
) STRICT;

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL
) STRICT;

CREATE TABLE objects (
    tenant TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL,
    modified INTEGER NOT NULL,
    key1 TEXT,
    key2 TEXT,
    sort_key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (tenant, kind, id)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX objects_key1 ON objects (tenant, kind, key1) WHERE key1 IS NOT NULL;
CREATE INDEX objects_key2 ON objects (tenant, kind, key2, sort_key, id) WHERE key2 IS NOT NULL;
CREATE INDEX objects_sort ON objects (tenant, kind, sort_key, id);

CREATE TABLE links (
    tenant TEXT NOT NULL,
    rel TEXT NOT NULL,
    source TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (tenant, rel, source, target),
    FOREIGN KEY (tenant, source_kind, source) REFERENCES objects (tenant, kind, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, target_kind, target) REFERENCES objects (tenant, kind, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX links_target ON links (tenant, rel, target);
CREATE INDEX links_target_any ON links (tenant, target);

CREATE TABLE audit_heads (
    tenant TEXT PRIMARY KEY REFERENCES tenants (id),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
) STRICT;

CREATE TABLE audit_events (
    tenant TEXT NOT NULL REFERENCES tenants (id),
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    time INTEGER NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    target_id TEXT,
    correlation_id TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant, seq)
) STRICT;
CREATE INDEX audit_by_actor ON audit_events (tenant, actor_id, seq);
CREATE INDEX audit_by_target ON audit_events (tenant, target_id, seq);
CREATE INDEX audit_by_action ON audit_events (tenant, action, seq);
CREATE INDEX audit_by_time ON audit_events (tenant, time);

-- Defence in depth: the application never updates or deletes audit events. Someone
-- with write access to the file can drop these triggers; the hash chain then shows an
-- edit, unless every later hash and the head are recomputed too (see ARCHITECTURE.md).
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
