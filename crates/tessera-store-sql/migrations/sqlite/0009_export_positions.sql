-- Tessera schema 9: positions for the SIEM export (issue 17). Each sign-in log
-- entry and each risk detection gets a per-tenant sequence number when it is
-- written (an aggregate a new one each time it grows), taken from the tenant's
-- counter in the same transaction. The counter's row lock orders the writers, so
-- numbers become visible in order and a reader that has seen n has seen all below
-- n. Entries from before this schema have none and are not exported.
ALTER TABLE sign_ins ADD COLUMN seq INTEGER;
CREATE INDEX sign_ins_by_seq ON sign_ins (tenant, seq) WHERE seq IS NOT NULL;
ALTER TABLE risk_detections ADD COLUMN seq INTEGER;
CREATE INDEX risk_detections_by_seq ON risk_detections (tenant, seq) WHERE seq IS NOT NULL;
