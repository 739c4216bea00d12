-- No spam cannon, no secrets at rest, people can leave (issue #14). Kept in step with
-- ../sqlite/0008_security.sql.

-- Addresses that asked never to get an invitation, campaign or reminder again, by their
-- keyed hash (HMAC-SHA-256 with the server secret, see src/secrets.rs): the list holds no
-- addresses, and it outlives `groupbuy forget` so a person who left stays unmailed.
CREATE TABLE email_suppressions (
    address_hash TEXT PRIMARY KEY,
    created_at   BIGINT NOT NULL
);

-- Each invitation email an organiser had sent, counted against email_invites_per_group and
-- email_invites_per_day. No address: only who, which group and when.
CREATE TABLE email_invites (
    id           BIGSERIAL PRIMARY KEY,
    organiser_id BIGINT NOT NULL,
    group_id     BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX email_invites_organiser ON email_invites (organiser_id, created_at);
CREATE INDEX email_invites_group ON email_invites (group_id);
