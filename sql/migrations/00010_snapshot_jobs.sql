-- Snapshots as durable jobs (issue 8): a record's status follows its jobs
-- like a backup's (creating, available, removing; removed and failed are
-- history), and says why it was removed: a client's click, the cron's
-- expiry, or a restore that destroyed every snapshot in Proxmox (with that
-- job's id, so the snapshots page can say which restore took them). A
-- failed expiry leaves its error and count for the admin tab and is
-- retried by later ticks.

-- +goose Up
ALTER TABLE mod_pvekeep_snapshots
  ADD COLUMN status         VARCHAR(16)   NOT NULL DEFAULT 'available' AFTER vmstate,
  ADD COLUMN removed_reason VARCHAR(16)   NOT NULL DEFAULT '' AFTER removed_at,
  ADD COLUMN removed_job_id BIGINT        NULL AFTER removed_reason,
  ADD COLUMN last_error     VARCHAR(1024) NOT NULL DEFAULT '' AFTER job_id,
  ADD COLUMN attempts       INT           NOT NULL DEFAULT 0 AFTER last_error,
  ADD KEY ix_snapshots_service_status (service_id, status),
  ADD KEY ix_snapshots_status_expiry (status, expires_at),
  ADD CONSTRAINT ck_snapshots_status CHECK (status IN ('creating','available','removing','removed','failed'));

-- +goose Down
ALTER TABLE mod_pvekeep_snapshots
  DROP CONSTRAINT ck_snapshots_status,
  DROP KEY ix_snapshots_status_expiry,
  DROP KEY ix_snapshots_service_status,
  DROP COLUMN attempts,
  DROP COLUMN last_error,
  DROP COLUMN removed_job_id,
  DROP COLUMN removed_reason,
  DROP COLUMN status;
