-- A terminated service's backup purge removes every backup it can and
-- retries the ones Proxmox would not remove with a growing pause, instead
-- of trying the same one on every tick. purge_next_at is when the cron
-- may look at the service again (NULL: at once) and orders the services
-- it looks at, so stuck ones cannot starve the rest; purge_round_at is
-- when the current round began (NULL: backups_purge_after): a removal
-- that failed since then is skipped until the next round.

-- +goose Up
ALTER TABLE mod_pvekeep_services
  ADD COLUMN purge_next_at  DATETIME(6) NULL AFTER purge_attempts,
  ADD COLUMN purge_round_at DATETIME(6) NULL AFTER purge_next_at,
  ADD KEY ix_services_purge_next (purge_next_at);

-- +goose Down
ALTER TABLE mod_pvekeep_services
  DROP KEY ix_services_purge_next,
  DROP COLUMN purge_round_at,
  DROP COLUMN purge_next_at;
