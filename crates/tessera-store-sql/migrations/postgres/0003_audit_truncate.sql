-- Tessera schema 3: the audit trail cannot be emptied, and a chain's head only moves
-- forward. TRUNCATE skips row triggers, so statement triggers refuse it on both audit
-- tables. A head may only advance by one, to the event its transaction just appended;
-- it is never deleted. Someone with enough database rights can drop these triggers:
-- signed checkpoints exported outside the database then show what was done (see
-- ARCHITECTURE.md).
CREATE FUNCTION tessera_audit_no_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail cannot be truncated';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_audit_no_truncate();
CREATE TRIGGER audit_heads_no_truncate BEFORE TRUNCATE ON audit_heads
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_audit_no_truncate();

CREATE FUNCTION tessera_audit_head_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.tenant = OLD.tenant AND NEW.seq = OLD.seq + 1
        AND EXISTS (SELECT 1 FROM audit_events
                    WHERE tenant = NEW.tenant AND seq = NEW.seq AND hash = NEW.hash) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'an audit head only moves forward, to the event just appended';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_heads_forward_only BEFORE UPDATE OR DELETE ON audit_heads
    FOR EACH ROW EXECUTE FUNCTION tessera_audit_head_forward_only();
