-- mod_pvekeep_backups: the plugin's record of each backup of a service
-- (pvekeep.Backup). Backups belong to the service, never to a VMID: VMIDs are
-- reused after termination. Statuses: creating, available, removing,
-- removed, failed; the first three count towards the quota.

-- +goose Up
CREATE TABLE mod_pvekeep_backups (
  id          BIGINT        NOT NULL AUTO_INCREMENT,
  service_id  BIGINT        NOT NULL,
  vmid        INT           NOT NULL DEFAULT 0,
  -- the job that created it
  job_id      BIGINT        NULL,
  node        VARCHAR(64)   NOT NULL DEFAULT '',
  storage     VARCHAR(128)  NOT NULL DEFAULT '',
  -- Proxmox volume id, '' until the vzdump task has finished
  volid       VARCHAR(255)  NOT NULL DEFAULT '',
  note        VARCHAR(1024) NOT NULL DEFAULT '',
  size_bytes  BIGINT        NOT NULL DEFAULT 0,
  status      VARCHAR(16)   NOT NULL,
  origin      VARCHAR(16)   NOT NULL,
  created_at  DATETIME(6)   NOT NULL,
  removed_at  DATETIME(6)   NULL,
  PRIMARY KEY (id),
  KEY ix_backups_service_status (service_id, status),
  KEY ix_backups_volid (volid),
  CONSTRAINT ck_backups_status CHECK (status IN ('creating','available','removing','removed','failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE mod_pvekeep_backups;
