// Package store is the plugin's only door to MySQL/MariaDB: it reads the
// WHMCS tables a service's facts come from (tblhosting, tblclients,
// tblproducts, configurable options, custom fields) and owns the plugin's
// mod_pvekeep_* tables (services, jobs, backups, schedules, snapshots,
// emails, and vm_facts: what Proxmox last said about each service's VM,
// with facts_sweeps: when each server's last refresh asked). It is the only package that imports sqlx and the MySQL driver.
//
// Rules the code keeps:
//
//   - Every time is given by the caller (an injected clock); nothing here
//     calls time.Now. Times are written as UTC, truncated to microseconds
//     (DATETIME(6)), so what a caller wrote is what it reads back.
//   - Everything that changes a service's jobs or backups runs in one
//     READ COMMITTED transaction that first locks the service's row in
//     mod_pvekeep_services (SELECT … FOR UPDATE). That row serialises
//     per-service decisions (one active job, quota counting jobs in flight,
//     idempotency keys) across any number of processes.
//   - The unique index on mod_pvekeep_jobs.active_service_id (service_id
//     while queued/running, NULL once terminal) is the database-level
//     guarantee of one operation per VM, even for a writer that forgot the
//     lock.
//   - Workers claim jobs with SELECT … FOR UPDATE SKIP LOCKED and then write
//     only through guards on (id, lease_owner, attempt, active state); a
//     guard that matches no row is ErrLeaseLost and changes nothing.
//   - Connection-level failures are classified here, at the bottom, as
//     ErrUnavailable (wrapped together with the driver's error), so callers
//     can answer "unavailable, retry" without knowing the driver.
//
// The DSN is go-sql-driver/mysql's; Open forces parseTime=true, loc=UTC and
// clientFoundRows=true (so a guarded UPDATE that writes identical values
// still counts its row).
package store
