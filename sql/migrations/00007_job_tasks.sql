-- A job's submissions, so that a job resumed after a crash or a lost
-- answer adopts only a task it really submitted (docs/adr/004):
-- submitting_at is written just before a task is requested and cleared
-- once its UPID is known; mod_pvekeep_job_tasks keeps every UPID a job
-- ever followed, so a task already claimed is never adopted again.

-- +goose Up
ALTER TABLE mod_pvekeep_jobs ADD COLUMN submitting_at DATETIME(6) NULL AFTER upid;

CREATE TABLE mod_pvekeep_job_tasks (
  id         BIGINT       NOT NULL AUTO_INCREMENT,
  job_id     BIGINT       NOT NULL,
  upid       VARCHAR(255) NOT NULL,
  created_at DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_job_tasks_upid (upid),
  KEY ix_job_tasks_job (job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE mod_pvekeep_job_tasks;
ALTER TABLE mod_pvekeep_jobs DROP COLUMN submitting_at;
