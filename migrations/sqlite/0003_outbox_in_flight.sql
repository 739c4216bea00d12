-- When a send started and has not been recorded yet. A row still marked at start-up was in
-- flight when the process died: Telegram and SMTP take no idempotency key, so it goes out
-- again and may arrive twice; the worker counts these (metric and last_error).
ALTER TABLE outbox ADD COLUMN sending_since BIGINT;
