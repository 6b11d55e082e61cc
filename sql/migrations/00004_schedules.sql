-- mod_pvekeep_schedules: one weekly backup schedule per service. Each
-- weekday has an enabled flag and a local time 'HH:MM' in the schedule's
-- IANA time zone; next_run_at (UTC) is computed by the service layer.

-- +goose Up
CREATE TABLE mod_pvekeep_schedules (
  service_id   BIGINT      NOT NULL,
  timezone     VARCHAR(64) NOT NULL DEFAULT 'UTC',
  sun_enabled  TINYINT(1)  NOT NULL DEFAULT 0,
  sun_time     CHAR(5)     NOT NULL DEFAULT '00:00',
  mon_enabled  TINYINT(1)  NOT NULL DEFAULT 0,
  mon_time     CHAR(5)     NOT NULL DEFAULT '00:00',
  tue_enabled  TINYINT(1)  NOT NULL DEFAULT 0,
  tue_time     CHAR(5)     NOT NULL DEFAULT '00:00',
  wed_enabled  TINYINT(1)  NOT NULL DEFAULT 0,
  wed_time     CHAR(5)     NOT NULL DEFAULT '00:00',
  thu_enabled  TINYINT(1)  NOT NULL DEFAULT 0,
  thu_time     CHAR(5)     NOT NULL DEFAULT '00:00',
  fri_enabled  TINYINT(1)  NOT NULL DEFAULT 0,
  fri_time     CHAR(5)     NOT NULL DEFAULT '00:00',
  sat_enabled  TINYINT(1)  NOT NULL DEFAULT 0,
  sat_time     CHAR(5)     NOT NULL DEFAULT '00:00',
  -- the next time a run is due (UTC); NULL = no day enabled
  next_run_at  DATETIME(6) NULL,
  -- the last time a scheduled run was dispatched (UTC)
  last_run_at  DATETIME(6) NULL,
  created_at   DATETIME(6) NOT NULL,
  updated_at   DATETIME(6) NOT NULL,
  PRIMARY KEY (service_id),
  KEY ix_schedules_next_run (next_run_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE mod_pvekeep_schedules;
