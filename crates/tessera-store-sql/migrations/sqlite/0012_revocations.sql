-- Tessera schema 12: revocations (issue 18, continuous access evaluation). Each
-- change that ends tokens already out is a row every node reads, in the order of
-- `seq`, numbered from the one row of `revocation_head` by the one writer. Rows go
-- once no token they end can still be valid (`expires`).
CREATE TABLE revocation_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
) STRICT;
INSERT INTO revocation_head (id, value) VALUES (1, 0);
CREATE TABLE revocations (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    since INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    reason TEXT NOT NULL
) STRICT;
CREATE INDEX revocations_by_expiry ON revocations (expires);
