// Package reconcile puts a freshly restored (or reinstalled) VM back to the
// package its customer pays for, as a resumable sequence of nine steps
// (DESIGN §5): 1 CPU & RAM, 2 grow the system disk, 3 its bandwidth/IOPS
// limits, 4 create the additional disk if the package has one and the VM
// lacks it, 5 grow it, 6 its limits, 7 network (bridge, VLAN tag, rate,
// model, MAC), 8 start, 9 the "Backup restored" email.
//
// Each step reads the VM's config, acts only when the value differs, and
// is recorded as done (through the caller's Journal, under its job lease)
// before the next begins; a step that runs a Proxmox task records the task
// first and, after a crash, waits on it instead of acting again. Running a
// step twice therefore leaves the same VM, which is what lets a process be
// killed at any point and another finish the job.
//
// Disks only grow: Proxmox cannot shrink them, and a package that is
// smaller than a restored disk leaves the disk as it is (logged). An
// additional disk the package no longer includes is never deleted: it
// holds the customer's data.
package reconcile
