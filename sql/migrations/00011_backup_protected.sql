-- mod_pvekeep_backups.protected mirrors Proxmox's `protected` flag on the
-- volume (backups.protect, the page's "Keep" toggle): rotation never
-- removes a protected backup, and it still counts towards the quota.

-- +goose Up
ALTER TABLE mod_pvekeep_backups ADD COLUMN protected TINYINT(1) NOT NULL DEFAULT 0 AFTER origin;

-- +goose Down
ALTER TABLE mod_pvekeep_backups DROP COLUMN protected;
