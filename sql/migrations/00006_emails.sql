-- mod_pvekeep_emails: emails a job sends (e.g. "Backup restored"), at most
-- one per (job, kind), so a retried step never mails twice.

-- +goose Up
CREATE TABLE mod_pvekeep_emails (
  id           BIGINT        NOT NULL AUTO_INCREMENT,
  job_id       BIGINT        NOT NULL,
  kind         VARCHAR(64)   NOT NULL,
  -- "to" is a reserved word: the recipient's address
  recipient    VARCHAR(255)  NOT NULL DEFAULT '',
  subject      VARCHAR(255)  NOT NULL DEFAULT '',
  -- pending, sent, failed
  status       VARCHAR(16)   NOT NULL,
  error        TEXT          NULL,
  sent_at      DATETIME(6)   NULL,
  -- tblemails.id of the copy logged in WHMCS, when one was written
  tblemails_id BIGINT        NULL,
  created_at   DATETIME(6)   NOT NULL,
  updated_at   DATETIME(6)   NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_emails_job_kind (job_id, kind),
  CONSTRAINT ck_emails_status CHECK (status IN ('pending','sent','failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE mod_pvekeep_emails;
