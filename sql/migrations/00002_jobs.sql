-- mod_pvekeep_jobs: durable jobs (pvekeep.Job). States: queued, running
-- (active) and succeeded, failed, cancelled (terminal).

-- +goose Up
CREATE TABLE mod_pvekeep_jobs (
  id                BIGINT        NOT NULL AUTO_INCREMENT,
  service_id        BIGINT        NOT NULL,
  vmid              INT           NOT NULL DEFAULT 0,
  server_id         BIGINT        NOT NULL DEFAULT 0,
  node              VARCHAR(64)   NOT NULL DEFAULT '',
  kind              VARCHAR(32)   NOT NULL,
  state             VARCHAR(16)   NOT NULL,
  step              VARCHAR(64)   NOT NULL DEFAULT '',
  progress_pct      SMALLINT      NOT NULL DEFAULT 0,
  upid              VARCHAR(255)  NOT NULL DEFAULT '',
  -- the backup a backup.* job creates or removes
  backup_id         BIGINT        NULL,
  error             TEXT          NOT NULL,
  -- kind-specific facts recorded at creation (JSON text)
  params            LONGTEXT      NULL,
  -- NULL when the request carried no key (NULLs never collide in a UNIQUE index)
  idempotency_key   VARCHAR(128)  NULL,
  actor_type        VARCHAR(16)   NOT NULL,
  actor_id          BIGINT        NOT NULL DEFAULT 0,
  attempt           INT           NOT NULL DEFAULT 0,
  lease_owner       VARCHAR(128)  NOT NULL DEFAULT '',
  lease_until       DATETIME(6)   NULL,
  -- = service_id while the job is queued or running, NULL once terminal:
  -- the database-level guarantee of one operation per VM.
  active_service_id BIGINT        NULL,
  created_at        DATETIME(6)   NOT NULL,
  updated_at        DATETIME(6)   NOT NULL,
  started_at        DATETIME(6)   NULL,
  finished_at       DATETIME(6)   NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_jobs_active_service (active_service_id),
  UNIQUE KEY uq_jobs_idempotency (service_id, idempotency_key),
  KEY ix_jobs_claim (state, lease_until),
  KEY ix_jobs_service (service_id, id),
  CONSTRAINT ck_jobs_state CHECK (state IN ('queued','running','succeeded','failed','cancelled')),
  CONSTRAINT ck_jobs_active CHECK (
    (state IN ('queued','running') AND active_service_id <=> service_id) OR
    (state IN ('succeeded','failed','cancelled') AND active_service_id IS NULL))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE mod_pvekeep_jobs;
