-- mod_pvekeep_schedule_runs: one row per scheduled backup a service owes,
-- keyed by the local date it belongs to (in the schedule's zone). The
-- primary key is what makes a date run exactly once, whatever number of
-- cron runners plan it at the same time: planning is an INSERT IGNORE.
--
-- States: waiting (due; dispatched when its node has a free slot, oldest
-- due first, first attempts before retries), running (job_id is its
-- backup.create job), rotating (the backup succeeded at a full quota and
-- the oldest unprotected backup still has to be queued for removal),
-- done, failed (attempts spent, or its day is over), skipped (reason says
-- why, e.g. every backup is protected).

-- +goose Up
CREATE TABLE mod_pvekeep_schedule_runs (
  service_id   BIGINT       NOT NULL,
  local_date   DATE         NOT NULL,
  server_id    BIGINT       NOT NULL,
  -- the instant the run became due (UTC)
  due_at       DATETIME(6)  NOT NULL,
  state        VARCHAR(16)  NOT NULL,
  -- backup.create jobs started for this run; at most max_attempts
  attempts     INT          NOT NULL DEFAULT 0,
  max_attempts INT          NOT NULL DEFAULT 1,
  job_id       BIGINT       NULL,
  -- the backup rotation queued for removal after this run succeeded
  rotated_backup_id BIGINT  NULL,
  -- not dispatched before (a retry's pause, or a service that was busy)
  next_try_at  DATETIME(6)  NOT NULL,
  -- a stable word for the page: all_protected, locked, disabled, …
  reason       VARCHAR(32)  NOT NULL DEFAULT '',
  -- the last attempt's failure, as the client reads it
  error        TEXT         NULL,
  created_at   DATETIME(6)  NOT NULL,
  updated_at   DATETIME(6)  NOT NULL,
  PRIMARY KEY (service_id, local_date),
  KEY ix_schedule_runs_dispatch (state, server_id, next_try_at),
  KEY ix_schedule_runs_job (job_id),
  CONSTRAINT ck_schedule_runs_state CHECK (state IN ('waiting','running','rotating','done','failed','skipped'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE mod_pvekeep_schedule_runs;
