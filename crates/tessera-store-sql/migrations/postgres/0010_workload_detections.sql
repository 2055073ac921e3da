-- Tessera schema 10: detections of workload identities (issue 17) beside users'.
-- `user_id` holds the principal's id, `principal_type` says which kind it is
-- (`user` or `servicePrincipal`), so each API lists its own. A constant default
-- adds the column without rewriting the table.
ALTER TABLE risk_detections ADD COLUMN principal_type TEXT COLLATE "C" NOT NULL DEFAULT 'user';
