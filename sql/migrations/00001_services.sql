-- mod_pvekeep_services: the plugin's own facts about a WHMCS service
-- (tblhosting.id). A row exists for every service the plugin has acted on;
-- it is the row every mutating transaction locks (SELECT … FOR UPDATE) to
-- serialise work per service.

-- +goose Up
CREATE TABLE mod_pvekeep_services (
  service_id BIGINT      NOT NULL,
  -- vmid binds the service to a Proxmox guest; NULL = use the product
  -- custom field named "vmid".
  vmid       INT         NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (service_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE mod_pvekeep_services;
