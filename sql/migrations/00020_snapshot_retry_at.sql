-- A failed snapshot removal (the cron's expiry) is retried with a growing
-- pause instead of on every tick: retry_at is when the next try may run
-- (NULL: at once). Numbered after the ranges issues 9 and 10 took; the
-- migrator applies out-of-order numbers (store.Migrate).

-- +goose Up
ALTER TABLE mod_pvekeep_snapshots
  ADD COLUMN retry_at DATETIME(6) NULL AFTER attempts;

-- +goose Down
ALTER TABLE mod_pvekeep_snapshots
  DROP COLUMN retry_at;
