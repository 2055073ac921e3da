-- The console finds a sign-in by its correlation id (what a user reads off an error
-- page) and filters the log by application.
CREATE INDEX sign_ins_by_correlation ON sign_ins (tenant, correlation_id);
CREATE INDEX sign_ins_by_application ON sign_ins (tenant, application, time);
