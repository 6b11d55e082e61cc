// Package pvesim is a Proxmox VE simulator: an HTTPS server that speaks the
// PVE API for every endpoint pvekeep calls, closely enough that a client
// cannot tell it from a real cluster. Tests, `pvekeep sim` and `pvekeep
// demo` run it; it imports nothing from the rest of pvekeep, so a bug
// shared with the client cannot hide.
//
// What it reproduces (each checked against the PVE sources: pve-manager,
// qemu-server, pve-storage, pve-common, pve-http-server, pve-guest-common):
//
//   - Authentication: API tokens ("Authorization: PVEAPIToken=ID=SECRET")
//     and tickets (POST /access/ticket, cookie PVEAuthCookie, the
//     CSRFPreventionToken header on every non-GET). Failures answer 401
//     with PVE's status line ("No ticket", "Authentication failed!") after
//     PVE's 3-second delay, divided by Speed.
//
//   - Permissions: GET /access/permissions answers the caller's effective
//     privileges per path as pve-access-control does. The token is
//     root@pam's without privilege separation (everything) unless given
//     an ACL (Options.TokenPrivileges, SetTokenPrivileges): then the most
//     specific path wins, storage lists and /cluster/resources hide what
//     it may not audit, and storage content answers 403 "Permission check
//     failed (path, privs)"; the snapshot endpoints check VM.Audit,
//     VM.Snapshot, VM.Snapshot.Rollback and (rollback with start)
//     VM.PowerMgmt as qemu-server does. Only those checks are enforced; other
//     endpoints let a restricted token through. SetTokenSecret regenerates
//     (or revokes) the token's secret. Connections counts the TCP/TLS
//     connections clients opened.
//
//   - Answers: {"data":…}; errors carry their text in the HTTP reason
//     phrase and as "message" in the body; parameter errors are 400
//     "Parameter verification failed." with {"errors":{param:reason}}.
//
//   - Validation of every request against the official API schema
//     (testdata/schema.json.gz, trimmed to the served endpoints) with
//     PVE's rules and messages: unknown parameters, types (booleans only
//     0/1 or JSON booleans, as PVE), enums, patterns, ranges, lengths,
//     "requires", named formats (pve-vmid, pve-node, pve-storage-id,
//     pve-configid, lists) and inline property strings. Named hash formats
//     not described in the schema (prune-backups, backup-fleecing, …) are
//     accepted loosely.
//
//   - Tasks with real UPIDs, logs with {n,t} lines and a final "TASK OK" /
//     "TASK ERROR: …" / "TASK WARNINGS: N" line, status running|stopped
//     with exitstatus, a 400 "no such task" for a just-forked UPID
//     (Options.TaskVisibleAfter).
//
//   - vzdump as pve-manager's VZDump.pm and qemu-server's VZDump/QemuServer.pm
//     log it, one job per node at a time (the global lock, with its
//     "trying to get global lock - waiting..." lines and lockwait), the
//     guest's "lock: backup" only while its turn runs, "OK" instead of a
//     UPID on a node that owns none of the guests, "job errors" as the exit
//     status of a failed job, notes-template expansion, protected, and
//     keep-last pruning. The archive keeps the guest config of backup time,
//     readable through vzdump/extractconfig.
//
//   - Storage content listing, volume attributes, imgdel tasks (a protected
//     volume fails the task).
//
//   - Restore over an existing VM (POST /nodes/{node}/qemu with archive and
//     force, task qmrestore) as qemu-server's create_vm and
//     restore_vma_archive do it: "lock: create" until the archive header
//     is read, then "memory: 128" while data is written, the replaced old
//     disks freed, snapshots dropped, new disks allocated, vma's progress
//     lines, the archived config merged with the options passed along,
//     left-over volumes rescanned as unusedN. A failed restore leaves the
//     VM unusable, as PVE does.
//
//   - Config updates with a [PENDING] section: on a running VM only what
//     the default "hotplug: network,disk,usb" allows goes live (network,
//     new disks, drive bandwidth/IOPS limits, name and the like), the rest
//     (cores, sockets, memory, cold drive options) waits for stop/start;
//     GET …/pending (values typed as check_type leaves them: integers
//     and booleans are numbers), GET config merged unless current=1. New disks
//     ("local-lvm:4"), deleted disks kept as unusedN, deleting unusedN
//     frees the volume, MACs generated, bridges vmbr0 and vmbr1 on every
//     node. Resize (task "resize", grow only).
//
//   - Clone (task qmclone, full or linked, "lock: clone" on the new VM,
//     new MACs) as clone_vm checks it: a linked clone only of a
//     template's base volumes on lvmthin ("Linked clone feature is not
//     supported for …"), never with a storage; another node (target) only
//     when every disk ends on shared storage. The storage "san" is plain
//     LVM shared by all nodes (full clones across nodes, no linked ones).
//     Destroy (task qmdestroy, refused while running, protected or
//     locked; purge, destroy-unreferenced-disks).
//
//   - GET /cluster/nextid as pve-manager answers it: the lowest free id
//     from 100 as a string, or with vmid that id when free, else a 400
//     "VM N already exists". It reserves nothing.
//
//   - Cloud-init options with qemu-server's and pve-common's checks and
//     messages: ipconfigN (ip=CIDR|dhcp|manual, gw requires ip, ip6/gw6),
//     nameserver (address-list), searchdomain, ciuser, sshkeys
//     (urlencoded; each decoded line must be an OpenSSH public key, else
//     "SSH public key validation error"), cipassword (hashed unless it is
//     a crypt hash already, written at once, shown as "**********").
//     "storage:cloudinit" makes the VM's cloud-init image
//     (vm-N-cloudinit, a CD-ROM drive); a clone gets its own, destroy
//     frees it.
//
//   - Snapshots as qemu-server's API and pve-guest-common's AbstractConfig
//     make them: the list with a "current" entry (parent, running, digest,
//     "You are here!") and per snapshot name, description, snaptime,
//     vmstate 0/1, parent and, mid-task, snapstate; snapname a
//     pve-configid of 2–40 characters, "current" and "pending" reserved.
//     qmsnapshot takes lock "snapshot" (the RAM state only of a running
//     VM, a state volume on local-lvm), qmrollback lock "rollback" (a
//     running VM is hard-stopped; the snapshot's config comes back with
//     the VM's current description and unusedN kept, disks added since
//     become unusedN, pending changes dropped, a new vmgenid; a RAM
//     snapshot resumes, start=1 starts), qmdelsnapshot lock
//     "snapshot-delete" (children re-parented). A locked VM ends these
//     tasks with "VM is locked (<lock>)", and their locks keep vzdump out.
//     The task logs carry qemu-server's lines and LvmThinPlugin's lvcreate
//     and lvremove output. Options.NewestOnlyRollback (pvekeep sim
//     --newest-only-rollback, /_sim/storages/{id}/rollback) and
//     SetNewestOnlyRollback make a disk storage ZFS-like: an older target fails with ZFSPoolPlugin's "can't
//     rollback, 'X' is not most recent snapshot on 'volid'" before
//     anything changes.
//
//   - One template per node (9000 on pve1, 9001 on pve2, …), see
//     Options.NoTemplates.
//
// Durations are simulated and divided by Options.Speed; timestamps come
// from Options.Clock. The fault injector (HTTPFault, TaskFault, SetLock)
// and AddVolume are reachable from Go and over HTTP under /_sim/ (see
// control.go).
//
// Known gaps: only keep-last pruning, no VM creation without an archive,
// no cloud-init ISO content (the options and the image are kept; nothing
// is generated from them), "hotplug" is always the default, and nodes do not
// proxy to each other (a request is answered for the node named in its
// path).
package pvesim
