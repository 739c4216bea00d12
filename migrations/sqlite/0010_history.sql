-- Groups that buy again (issue [history]). Kept in step with ../postgres/0010_history.sql.

-- The group a `/regroup` (or its "Buy together again" button) repeated: one open repeat per
-- group at a time, so a double tap opens one group, not two.
ALTER TABLE group_buys ADD COLUMN regroup_of BIGINT;
CREATE INDEX groups_regroup_of ON group_buys (regroup_of);
