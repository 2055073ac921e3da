-- Tessera schema 3: a chain's head only moves forward. SQLite has no TRUNCATE (its
-- "DELETE without WHERE" shortcut is off for tables with triggers, so the append-only
-- triggers of schema 1 hold for it). A head may only advance by one, to the event its
-- transaction just appended; it is never deleted. Someone with write access to the
-- file can drop these triggers: signed checkpoints exported outside the database then
-- show what was done (see ARCHITECTURE.md).
CREATE TRIGGER audit_heads_no_delete BEFORE DELETE ON audit_heads
BEGIN
    SELECT RAISE(ABORT, 'an audit head cannot be deleted');
END;
CREATE TRIGGER audit_heads_forward_only BEFORE UPDATE ON audit_heads
WHEN NEW.tenant <> OLD.tenant OR NEW.seq <> OLD.seq + 1
    OR NOT EXISTS (SELECT 1 FROM audit_events
                   WHERE tenant = NEW.tenant AND seq = NEW.seq AND hash = NEW.hash)
BEGIN
    SELECT RAISE(ABORT, 'an audit head only moves forward, to the event just appended');
END;
