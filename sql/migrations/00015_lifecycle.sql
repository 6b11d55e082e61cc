-- The VM's life (issue 10):
--   mod_pvekeep_vmids: every vmid the plugin ever handed to a new VM.
--     Proxmox's /cluster/nextid reserves nothing, so two creates asking at
--     once hear the same id; the primary key lets exactly one of them have
--     it. Rows are never deleted: the plugin never hands an id out twice,
--     so backups named after a terminated service's vmid are never taken
--     for a new VM's.
--   mod_pvekeep_services: when the service was terminated and when its
--     backups are removed (terminate_grace_days later); the cron's last
--     failure to remove them and how often it tried, for the admin.

-- +goose Up
CREATE TABLE mod_pvekeep_vmids (
  vmid       INT         NOT NULL,
  service_id BIGINT      NOT NULL,
  claimed_at DATETIME(6) NOT NULL,
  PRIMARY KEY (vmid),
  KEY ix_vmids_service (service_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE mod_pvekeep_services
  ADD COLUMN terminated_at       DATETIME(6)   NULL AFTER selected_backup_id,
  ADD COLUMN backups_purge_after DATETIME(6)   NULL AFTER terminated_at,
  ADD COLUMN purge_error         VARCHAR(1024) NOT NULL DEFAULT '' AFTER backups_purge_after,
  ADD COLUMN purge_attempts      INT           NOT NULL DEFAULT 0 AFTER purge_error,
  ADD KEY ix_services_purge (backups_purge_after);

-- +goose Down
ALTER TABLE mod_pvekeep_services
  DROP KEY ix_services_purge,
  DROP COLUMN purge_attempts,
  DROP COLUMN purge_error,
  DROP COLUMN backups_purge_after,
  DROP COLUMN terminated_at;
DROP TABLE mod_pvekeep_vmids;
