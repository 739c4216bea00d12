-- Several `groupbuy serve` instances may share one (PostgreSQL) database. Each registers
-- here and heartbeats; work it holds is marked with its id (claimed_by). An instance whose
-- heartbeat is older than the takeover delay is dead, and what it held is taken over.
CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE inbox ADD COLUMN claimed_by TEXT;
