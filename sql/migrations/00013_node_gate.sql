-- The per-node limit on backups (vzdump holds a node-global lock, so
-- extra backups wait in the database, never in Proxmox's lock queue):
--   mod_pvekeep_node_gates: one row per Proxmox node, locked FOR UPDATE
--     while a backup job asks to submit its vzdump there, which
--     serialises the count of the node's admitted jobs across processes.
--   mod_pvekeep_jobs.admitted_at: when the gate let the job submit; an
--     active backup job holds one of its node's slots from then on.

-- +goose Up
CREATE TABLE mod_pvekeep_node_gates (
  server_id BIGINT      NOT NULL,
  node      VARCHAR(64) NOT NULL,
  PRIMARY KEY (server_id, node)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE mod_pvekeep_jobs ADD COLUMN admitted_at DATETIME(6) NULL AFTER submitting_at;
ALTER TABLE mod_pvekeep_jobs ADD KEY ix_jobs_node (server_id, node, kind, state);

-- +goose Down
ALTER TABLE mod_pvekeep_jobs DROP KEY ix_jobs_node;
ALTER TABLE mod_pvekeep_jobs DROP COLUMN admitted_at;
DROP TABLE mod_pvekeep_node_gates;
