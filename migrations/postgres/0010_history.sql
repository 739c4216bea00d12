-- Groups that buy again (issue [history]). Kept in step with ../sqlite/0010_history.sql.

-- The group a `/regroup` (or its "Buy together again" button) repeated: one open repeat per
-- group at a time, so a double tap opens one group, not two.
ALTER TABLE group_buys ADD COLUMN regroup_of BIGINT;
CREATE INDEX groups_regroup_of ON group_buys (regroup_of);

-- Buying circles (claim 13, ¶0043–0046, Fig. 7): the same people who bought together,
-- however each was invited, kept up to date in the settlement transaction. `members_key` is
-- their Telegram ids, sorted, joined by commas: one row per set of people.
CREATE TABLE circles (
    id             BIGSERIAL PRIMARY KEY,
    members_key    TEXT NOT NULL UNIQUE,
    size           BIGINT NOT NULL,
    times_bought   BIGINT NOT NULL,
    total_spent    BIGINT NOT NULL,           -- normal prices, minor units of `currency`
    last_bought_at BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE TABLE circle_members (
    circle_id BIGINT NOT NULL REFERENCES circles (id),
    user_id   BIGINT NOT NULL,
    PRIMARY KEY (circle_id, user_id)
);
CREATE INDEX circle_members_user ON circle_members (user_id);
-- What each circle bought, and how many (its top products).
CREATE TABLE circle_products (
    circle_id BIGINT NOT NULL REFERENCES circles (id),
    sku       TEXT NOT NULL,
    bought    BIGINT NOT NULL,
    PRIMARY KEY (circle_id, sku)
);
-- The circle a settled group's buyers make (none below two buyers).
ALTER TABLE group_buys ADD COLUMN circle_id BIGINT;

-- A file to send with sendDocument (`/export`): JSON of store::outbox::DocumentSpec, the
-- row's body_text being the file's content. Emptied with the words once delivered.
ALTER TABLE outbox ADD COLUMN document TEXT;
