-- The sign-in log, smaller: repeated failures are one entry with a count (an
-- aggregate, found by its key; its time is its latest attempt's), and fewer index entries per entry: none by result
-- (a result filter reads the tenant's entries newest first, like an unfiltered
-- page), and by user only for entries of a known user.
ALTER TABLE sign_ins ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sign_ins ADD COLUMN aggregate_key TEXT;
CREATE UNIQUE INDEX sign_ins_by_aggregate ON sign_ins (tenant, aggregate_key)
    WHERE aggregate_key IS NOT NULL;
DROP INDEX sign_ins_by_result;
DROP INDEX sign_ins_by_user;
CREATE INDEX sign_ins_by_user ON sign_ins (tenant, user_id, time) WHERE user_id IS NOT NULL;
