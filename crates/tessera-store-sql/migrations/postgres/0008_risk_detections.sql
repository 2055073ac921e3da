-- Identity Protection's detections (issue 17): kept like the sign-in log,
-- outside the audit chain, appended in batches, newest first by tenant and by
-- user. The body holds the rest (evidence, user name, location) as JSON.
CREATE TABLE risk_detections (
    tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    detected BIGINT NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C",
    event_type TEXT COLLATE "C" NOT NULL,
    level TEXT COLLATE "C" NOT NULL,
    timing TEXT COLLATE "C" NOT NULL,
    sign_in_id TEXT COLLATE "C",
    ip TEXT COLLATE "C",
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, detected, id)
);
CREATE INDEX risk_detections_by_user ON risk_detections (tenant, user_id, detected)
    WHERE user_id IS NOT NULL;
