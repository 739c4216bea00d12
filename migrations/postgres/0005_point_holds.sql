-- Points promised to an invoice between its pre-checkout and its payment, so the same points
-- cannot pay for two invoices. The payment consumes the hold; an unpaid hold lapses.
CREATE TABLE point_holds (
    payload    TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL,
    amount     BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX point_holds_user ON point_holds (user_id, expires_at);
