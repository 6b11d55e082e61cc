-- Idempotency keys are opaque tokens: compare them byte for byte.
-- Under the table's utf8mb4_unicode_ci, `casekey-xyz` found the job of
-- `CaseKey-XYZ` and replayed it (issue 7, 8c).

-- +goose Up
ALTER TABLE mod_pvekeep_jobs
  MODIFY idempotency_key VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;

-- +goose Down
-- Fails with a duplicate-key error when two keys of one service differ only
-- in case: remove one of those jobs first.
ALTER TABLE mod_pvekeep_jobs
  MODIFY idempotency_key VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL;
