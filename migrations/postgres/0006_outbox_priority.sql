-- Replies go through the outbox too (issue 18): `priority` 0 is a person waiting for the
-- answer to their own update (a reply, an error, an invoice), served before 1, bulk notices.
ALTER TABLE outbox ADD COLUMN priority BIGINT NOT NULL DEFAULT 1;
-- An invoice to send with sendInvoice instead of body_text: JSON of app::purchase::InvoiceSpec.
ALTER TABLE outbox ADD COLUMN invoice TEXT;
CREATE INDEX outbox_due_by_priority ON outbox (status, priority, next_attempt_at);
