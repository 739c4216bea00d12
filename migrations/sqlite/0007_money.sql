-- Money that cannot count comes back (issue [money]).

-- How each product is paid for: physical goods through the payment provider, in the catalog
-- currency, with a shipping address; digital goods in Telegram Stars at `stars` each.
ALTER TABLE products ADD COLUMN kind TEXT NOT NULL DEFAULT 'physical' CHECK (kind IN ('physical', 'digital'));
ALTER TABLE products ADD COLUMN stars BIGINT CHECK (stars IS NULL OR stars > 0);

-- A seat held for one invoice from its approved pre-checkout until its payment (or until it
-- lapses): nobody else is approved for that seat meanwhile, and the sweep does not settle
-- the group while a hold on it is unlapsed.
CREATE TABLE seat_holds (
    payload    TEXT PRIMARY KEY,
    group_id   BIGINT NOT NULL,
    buyer_id   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX seat_holds_group ON seat_holds (group_id, expires_at);

-- Every payment that does not (or no longer) count: the money goes back. `method` says how:
-- 'stars' through refundStarPayment (the refund worker; `attempts`, `next_attempt_at`,
-- `last_error` track its tries), 'provider' by the operator through the provider's dashboard
-- (`groupbuy refunds`, closed with `groupbuy refunds done CHARGE_ID`). One row per charge.
CREATE TABLE refunds (
    charge_id       TEXT PRIMARY KEY,
    purchase_id     BIGINT NOT NULL UNIQUE REFERENCES purchases (id),
    user_id         BIGINT NOT NULL,
    amount          BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    method          TEXT NOT NULL CHECK (method IN ('stars', 'provider')),
    reason          TEXT NOT NULL CHECK (reason IN ('late', 'full', 'repeat', 'points', 'closed', 'reversed')),
    status          TEXT NOT NULL DEFAULT 'due' CHECK (status IN ('due', 'done')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    done_at         BIGINT
);
CREATE INDEX refunds_due ON refunds (status, method, next_attempt_at);

-- Every ledger entry carries its currency: Stars and the catalog currency are never summed
-- together, and each transaction balances in each currency. '' = the catalog currency of
-- entries written before this column (filled in at start-up from the configuration).
ALTER TABLE ledger ADD COLUMN currency TEXT NOT NULL DEFAULT '';
UPDATE ledger SET currency = 'XTR'
 WHERE txn IN (SELECT 'purchase:' || charge_id FROM purchases WHERE currency = 'XTR')
   AND account IN ('cash', 'sales');

-- A group whose settlement fails is set aside (with the reason) until `settle_retry_at`, so
-- it never holds up the groups behind it.
ALTER TABLE group_buys ADD COLUMN settle_error TEXT;
ALTER TABLE group_buys ADD COLUMN settle_retry_at BIGINT;

-- Payments recorded before this migration that did not count kept the buyer's money: they
-- are owed back, through the operator.
INSERT INTO refunds (charge_id, purchase_id, user_id, amount, currency, method, reason, status, next_attempt_at, created_at)
SELECT charge_id, id, buyer_id, amount_paid, currency,
       CASE WHEN currency = 'XTR' THEN 'stars' ELSE 'provider' END,
       COALESCE(flag, 'late'), 'due', created_at, created_at
  FROM purchases WHERE counted = 0;
