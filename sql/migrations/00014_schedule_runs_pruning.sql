-- Scheduled runs are the page's "what became of the latest scheduled
-- backup" and the tick's exactly-once record; once their date is well
-- past, neither needs them. The tick prunes ended runs older than 60 days,
-- a batch at a time, by this index.

-- +goose Up
ALTER TABLE mod_pvekeep_schedule_runs ADD KEY ix_schedule_runs_date (local_date);

-- +goose Down
ALTER TABLE mod_pvekeep_schedule_runs DROP KEY ix_schedule_runs_date;
