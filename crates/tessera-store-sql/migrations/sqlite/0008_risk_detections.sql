-- Identity Protection's detections (issue 17): kept like the sign-in log,
-- outside the audit chain, appended in batches, newest first by tenant and by
-- user. The body holds the rest (evidence, user name, location) as JSON.
CREATE TABLE risk_detections (
    tenant TEXT NOT NULL REFERENCES tenants (id),
    detected INTEGER NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT,
    event_type TEXT NOT NULL,
    level TEXT NOT NULL,
    timing TEXT NOT NULL,
    sign_in_id TEXT,
    ip TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, detected, id)
);
CREATE INDEX risk_detections_by_user ON risk_detections (tenant, user_id, detected)
    WHERE user_id IS NOT NULL;
