// Package service holds the rules of pvekeep: who may act on a service
// (ownership and status), one operation per VM (a running job or a Proxmox
// lock refuses every other mutating call), purchased quotas, idempotent
// requests, and the backup flows themselves. It speaks to the database
// through internal/store and to Proxmox through internal/pve, and knows
// nothing of JSON-RPC: the API edge translates its *pvekeep.Error values.
//
// Long work is a durable job: a call validates, records the job and submits
// the first Proxmox task, then returns; Tick (the panel's cron) drives every
// job forward from whatever process runs it.
//
// The VM's life — WHMCS's CreateAccount, SuspendAccount, UnsuspendAccount,
// ChangePackage and TerminateAccount — is the same kind of job
// (create.go, suspend.go, changepackage.go, terminate.go, lifecycle.go;
// docs/lifecycle.md), built from the restore's pieces: clone, the
// reconciliation, start, the client email.
//
// Page views never wait on Proxmox: backups.list, jobs.get and the admin
// overview answer from the database, with the VM's node, power state and
// Proxmox lock as cached by the last tick (one /cluster/resources per
// server) or click that asked Proxmox, and the time it answered. A tick
// writes only the facts that changed and records per server when it
// asked, which the unchanged rows then read as (facts.go). Only
// service.status asks Proxmox live, for a few seconds at most.
package service
