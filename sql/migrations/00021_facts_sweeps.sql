-- A tick's facts refresh writes only the rows whose facts changed (issue
-- 9's Measure: an idle tick over 10,000 services rewrote every row of
-- mod_pvekeep_vm_facts, every run). What keeps a page's "checked N min
-- ago" true for the rows it leaves alone:
--   mod_pvekeep_facts_sweeps: per panel server, when its last committed
--     refresh asked Proxmox (checked_at), and a generation each refresh
--     bumps. A refresh commits only if the generation is still the one it
--     read with the rows it compared, so two ticks refreshing at once never
--     both commit (the loser writes nothing).
--   mod_pvekeep_vm_facts.server_id: the server whose refresh last wrote or
--     confirmed the row; 0 when a click wrote it, or when the server's
--     refresh no longer covers the service. A row whose server_id is its
--     service's server, and whose service is Active or Suspended, holds
--     what that server's last refresh saw: its age is the later of its own
--     checked_at and the refresh's.

-- +goose Up
CREATE TABLE mod_pvekeep_facts_sweeps (
  server_id  BIGINT      NOT NULL,
  generation BIGINT      NOT NULL,
  checked_at DATETIME(6) NOT NULL,
  PRIMARY KEY (server_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE mod_pvekeep_vm_facts
  ADD COLUMN server_id BIGINT NOT NULL DEFAULT 0 AFTER vmid,
  ADD INDEX idx_vm_facts_server (server_id);

-- +goose Down
ALTER TABLE mod_pvekeep_vm_facts
  DROP INDEX idx_vm_facts_server,
  DROP COLUMN server_id;
DROP TABLE mod_pvekeep_facts_sweeps;
