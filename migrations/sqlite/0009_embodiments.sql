-- The patent's other embodiments, chosen per group and per product (issue #17). Kept in
-- step with ../postgres/0009_embodiments.sql.

-- A product sold without a group discount (¶0146: scarce goods). Its groups still share a
-- page, seats and shipping; settlement credits nothing.
ALTER TABLE products ADD COLUMN discount BIGINT NOT NULL DEFAULT 1 CHECK (discount IN (0, 1));

-- The product's flag as it was when the group opened: what the organiser and the members
-- were told holds even if the catalog changes later.
ALTER TABLE group_buys ADD COLUMN discount BIGINT NOT NULL DEFAULT 1 CHECK (discount IN (0, 1));

-- An open head count (¶0144): anyone with the key may join until expiry, the tier is that
-- of the buyers at expiry. head_count then holds the operator's maximum, the most it can take.
ALTER TABLE group_buys ADD COLUMN open_count BIGINT NOT NULL DEFAULT 0 CHECK (open_count IN (0, 1));

-- A group without expiry (¶0145) stores expires_at = 253402300799 (9999-12-31 23:59:59 UTC,
-- domain::group::NO_EXPIRY_AT), so every "has it expired" comparison stays false; it
-- settles when it fills or when its organiser sends /close.
