-- Credits (SPEC §11.2) on keys and on members. NULL remaining = unlimited. The balance is
-- charged here, by a conditional UPDATE (remaining >= cost), so N concurrent verifications
-- against M credits give exactly M successes on any number of nodes. `credits_refill` is JSON
-- `{"interval", "amount", "day"}`; `credits_refilled_at` is the last refill boundary applied
-- (unix seconds), so a refill happens once per boundary whichever node notices it first.
-- Keep in step with the other dialect.
ALTER TABLE api_keys ADD COLUMN credits_remaining BIGINT;
ALTER TABLE api_keys ADD COLUMN credits_refill TEXT;
ALTER TABLE api_keys ADD COLUMN credits_refilled_at BIGINT;
ALTER TABLE members ADD COLUMN credits_remaining BIGINT;
ALTER TABLE members ADD COLUMN credits_refill TEXT;
ALTER TABLE members ADD COLUMN credits_refilled_at BIGINT;
