-- The instance verifier (SPEC §5.1), SQLite dialect; keep in step with migrations/postgres.
--
-- A user's instance role is admin, verifier or none. It is stored as a second flag beside
-- `is_instance_admin` rather than as one `instance_role` text column, because
-- `is_instance_admin` is read as it is in many places (visibility rules such as
-- `owner_id NOT IN (SELECT id FROM users WHERE is_instance_admin = 1)`): a new text column would
-- either duplicate that fact, two columns for one truth that every writer must keep in step,
-- or replace it and break those readers. Two flags keep each fact in one place; the CHECK makes
-- them exclusive, so the pair still has exactly three states. Existing users are neither
-- (the default), which is what they were.
ALTER TABLE users ADD COLUMN is_instance_verifier INTEGER NOT NULL DEFAULT 0
    CHECK (is_instance_verifier IN (0, 1) AND NOT (is_instance_verifier = 1 AND is_instance_admin = 1));
