-- Tessera schema 11: revocations (issue 18, continuous access evaluation). Each
-- change that ends tokens already out is a row every node reads, in the order of
-- `seq`: numbers come from the one row of `revocation_head`, locked by the writing
-- transaction until it ends, so a reader that has seen n has seen every number
-- below it. Rows go once no token they end can still be valid (`expires`).
CREATE TABLE revocation_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO revocation_head (id, value) VALUES (1, 0);
CREATE TABLE revocations (
    seq BIGINT PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    kind TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    since BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    reason TEXT COLLATE "C" NOT NULL
);
CREATE INDEX revocations_by_expiry ON revocations (expires);
