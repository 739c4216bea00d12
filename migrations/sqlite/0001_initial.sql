-- groupbuy schema, SQLite flavour. Kept in step with ../postgres/0001_initial.sql: same
-- tables, same columns, same meaning. Times are Unix seconds, money and points are integers
-- in minor currency units, flags are 0/1.

-- Everyone who has talked to the bot. `started` = 1 once they wrote to it in private, which
-- is what lets the bot message them (bots cannot open a chat).
CREATE TABLE users (
    id           BIGINT PRIMARY KEY,          -- Telegram user id
    username     TEXT,                        -- lower-case, without '@'
    first_name   TEXT NOT NULL,
    started      BIGINT NOT NULL DEFAULT 0,
    unreachable  BIGINT NOT NULL DEFAULT 0,   -- blocked the bot: use email instead
    email        TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX users_username ON users (username);

-- The catalog. Prices at the time of purchase are copied into purchases.
CREATE TABLE products (
    sku        TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    price      BIGINT NOT NULL CHECK (price > 0),
    active     BIGINT NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL
);

-- One group purchase (claim 1). `group_key` is the unguessable identification information;
-- a settled or cancelled group's key no longer admits purchases (S1410).
CREATE TABLE group_buys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    group_key    TEXT NOT NULL UNIQUE,
    sku          TEXT NOT NULL REFERENCES products (sku),
    head_count   BIGINT NOT NULL CHECK (head_count >= 2),
    organiser_id BIGINT NOT NULL REFERENCES users (id),
    chat_id      BIGINT NOT NULL,             -- the chat /newgroup was typed in
    policy       TEXT NOT NULL CHECK (policy IN ('all_or_nothing', 'partial')),
    status       TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'settled', 'cancelled')),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    closed_at    BIGINT
);
CREATE INDEX groups_due ON group_buys (status, expires_at);
CREATE INDEX groups_organiser ON group_buys (organiser_id);

-- Members named by the organiser (claim 11). `user_id` is filled in when the person is
-- recognised in Telegram; `prompted_at` when their purchase prompt was queued.
CREATE TABLE members (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id    BIGINT NOT NULL REFERENCES group_buys (id),
    kind        TEXT NOT NULL CHECK (kind IN ('username', 'user_id', 'email')),
    value       TEXT NOT NULL,
    invite_code TEXT UNIQUE,                  -- email invitees: carried in their deep link
    user_id     BIGINT,
    prompted_at BIGINT,
    UNIQUE (group_id, kind, value)
);
CREATE INDEX members_lookup ON members (kind, value);
CREATE INDEX members_user ON members (user_id);

-- Every payment Telegram confirmed, exactly once per charge id. `counted` = 1 makes the
-- buyer an object user of the group; a payment that could not count (group closed, full,
-- or a second purchase) is kept with a flag: the money was taken, the goods still ship.
CREATE TABLE purchases (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id           BIGINT NOT NULL REFERENCES group_buys (id),
    buyer_id           BIGINT NOT NULL REFERENCES users (id),
    sku                TEXT NOT NULL,
    price              BIGINT NOT NULL,
    points_redeemed    BIGINT NOT NULL,
    amount_paid        BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    charge_id          TEXT NOT NULL UNIQUE,
    provider_charge_id TEXT NOT NULL,
    counted            BIGINT NOT NULL,
    flag               TEXT CHECK (flag IN ('late', 'full', 'repeat')),
    region             TEXT,
    receipt_token      TEXT NOT NULL UNIQUE,
    created_at         BIGINT NOT NULL
);
CREATE INDEX purchases_group ON purchases (group_id);
CREATE INDEX purchases_buyer ON purchases (buyer_id);
-- One counted seat per buyer and group, whatever races happen.
CREATE UNIQUE INDEX purchases_one_seat ON purchases (group_id, buyer_id) WHERE counted = 1;

-- Shipping requests handed to fulfilment (claim 5).
CREATE TABLE shipping_requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    purchase_id BIGINT NOT NULL UNIQUE REFERENCES purchases (id),
    recipient   TEXT NOT NULL,
    address     TEXT NOT NULL,
    region      TEXT,
    created_at  BIGINT NOT NULL
);

-- The one ledger: double entry, every transaction's rows sum to zero. Debits are positive.
-- Accounts: cash (money received), sales (revenue), discounts (points granted),
-- points:<user id> (what we owe a user; its balance is minus the sum).
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    txn         TEXT NOT NULL,
    account     TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    user_id     BIGINT,
    group_id    BIGINT,
    purchase_id BIGINT,
    memo        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (txn, account)
);
CREATE INDEX ledger_user ON ledger (user_id);

-- One row per settled group: the primary key makes a second settlement impossible.
CREATE TABLE settlements (
    group_id     BIGINT PRIMARY KEY REFERENCES group_buys (id),
    buyers       BIGINT NOT NULL,
    filled       BIGINT NOT NULL,
    rate_bp      BIGINT NOT NULL,
    total_points BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Updates already handled, so a redelivered update changes nothing.
CREATE TABLE processed_updates (
    update_id    BIGINT PRIMARY KEY,
    processed_at BIGINT NOT NULL
);

-- Every bot message and email the service owes someone, written in the same transaction as
-- the change that causes it and delivered by the outbox worker.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key      TEXT NOT NULL UNIQUE,
    channel         TEXT NOT NULL CHECK (channel IN ('telegram', 'email')),
    chat_id         BIGINT,
    email_to        TEXT,
    subject         TEXT NOT NULL DEFAULT '',
    body_text       TEXT NOT NULL,
    body_html       TEXT,
    keyboard        TEXT,                     -- JSON inline keyboard for Telegram
    fallback_email  TEXT,                     -- where to send instead if the chat is unreachable
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    remote_id       TEXT,                     -- Telegram message id once sent
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
