-- SQLite now numbers a tenant's sign-in log and risk detections from the highest
-- number in the log (see numbering.rs): the `seq:*` counters are only a floor,
-- raised by a purge before it deletes. A build from before this would number from
-- the counter alone and give numbers twice; this migration makes it refuse to
-- start on this database. Each counter is brought up to its log's head first.
UPDATE counters SET value = MAX(value, COALESCE(
    (SELECT MAX(seq) FROM sign_ins WHERE sign_ins.tenant = counters.tenant), 0))
WHERE key = 'seq:signIns';
UPDATE counters SET value = MAX(value, COALESCE(
    (SELECT MAX(seq) FROM risk_detections WHERE risk_detections.tenant = counters.tenant), 0))
WHERE key = 'seq:riskDetections';
