-- Start-up upgrades of rows written by earlier versions (plain tokens hashed, ledger entries
-- given their currency) are done once: each is recorded here, so a later start does not scan
-- every purchase and ledger row again (that scan cost 0.7 s per start with 100,000 groups).
-- Kept in step with the other database's 0011_upgrades.sql.
CREATE TABLE upgrades (
    name    TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL
);
