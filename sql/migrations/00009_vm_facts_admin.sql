-- What a client page view and the admin tab read without asking Proxmox
-- (issue 7):
--   mod_pvekeep_vm_facts: the VM's node, power state and Proxmox lock as
--     Proxmox last told them (checked_at), refreshed by every cron tick (one
--     /cluster/resources per server) and by every click that asks Proxmox.
--   mod_pvekeep_services.selected_backup_id: the backup the admin picked for
--     the admin-area Restore / Remove buttons (which carry no form fields).
--   mod_pvekeep_emails: 'skipped' (the client opted out of product emails,
--     or has no address) and attempts, so the admin sees what became of
--     each email and why.

-- +goose Up
CREATE TABLE mod_pvekeep_vm_facts (
  service_id BIGINT      NOT NULL,
  -- the vmid the facts are about; facts of another vmid than the
  -- service's current one are not shown
  vmid       INT         NOT NULL,
  node       VARCHAR(64) NOT NULL DEFAULT '',
  -- running, stopped, paused, … or 'missing' (not on the cluster)
  power      VARCHAR(16) NOT NULL,
  -- Proxmox's lock on the guest (backup, migrate, snapshot, …); '' = none
  pve_lock   VARCHAR(32) NOT NULL DEFAULT '',
  checked_at DATETIME(6) NOT NULL,
  PRIMARY KEY (service_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE mod_pvekeep_services ADD COLUMN selected_backup_id BIGINT NULL AFTER vmid;

ALTER TABLE mod_pvekeep_emails ADD COLUMN attempts INT NOT NULL DEFAULT 0 AFTER status;
ALTER TABLE mod_pvekeep_emails DROP CONSTRAINT ck_emails_status;
ALTER TABLE mod_pvekeep_emails ADD CONSTRAINT ck_emails_status CHECK (status IN ('pending','sent','failed','skipped'));

-- +goose Down
ALTER TABLE mod_pvekeep_emails DROP CONSTRAINT ck_emails_status;
UPDATE mod_pvekeep_emails SET status = 'failed' WHERE status = 'skipped';
ALTER TABLE mod_pvekeep_emails ADD CONSTRAINT ck_emails_status CHECK (status IN ('pending','sent','failed'));
ALTER TABLE mod_pvekeep_emails DROP COLUMN attempts;
ALTER TABLE mod_pvekeep_services DROP COLUMN selected_backup_id;
DROP TABLE mod_pvekeep_vm_facts;
