-- The inbox: every Telegram update, stored before it is acknowledged (the polling offset
-- moves past it, or the webhook answers 200) and handled from here. A crash between
-- acknowledging and handling therefore loses nothing: pending rows are handled on the next
-- start. The primary key recognises a redelivered update. Handled rows are pruned after a
-- week (update ids may repeat after a week of silence, see the Bot API's Update object).
CREATE TABLE inbox (
    update_id   BIGINT PRIMARY KEY,
    body        TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    handled_at  BIGINT
);
CREATE INDEX inbox_pending ON inbox (handled_at, update_id);
