-- Tessera schema 7: group commit writes a batch's head once, after the batch's
-- events. A head still only moves forward, and only to an event that is there,
-- now possibly past several: every event between the old head and the new one
-- must be there too (each event's own hash links it to the one before, which the
-- chain check verifies).
CREATE OR REPLACE FUNCTION tessera_audit_head_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.tenant = OLD.tenant AND NEW.seq > OLD.seq
        AND EXISTS (SELECT 1 FROM audit_events
                    WHERE tenant = NEW.tenant AND seq = NEW.seq AND hash = NEW.hash)
        AND (SELECT count(*) FROM audit_events
             WHERE tenant = NEW.tenant AND seq > OLD.seq AND seq <= NEW.seq) = NEW.seq - OLD.seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'an audit head only moves forward, to the event just appended';
END;
$$ LANGUAGE plpgsql;
