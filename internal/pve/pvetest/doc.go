// Package pvetest is the conformance suite of the pve gateway (restic's
// backend/test style): a Suite with a connection hook whose Test* methods
// exercise the real gateway against something that speaks the PVE API.
//
// internal/pve runs it against internal/pvesim on every build, and against
// a live Proxmox VE when PVEKEEP_TEST_PVE_URL and a token are set (LiveEnv):
//
//	PVEKEEP_TEST_PVE_URL           https://pve.example.net:8006 (an /api2/json suffix is fine)
//	PVEKEEP_TEST_PVE_TOKEN_ID      user@realm!name
//	PVEKEEP_TEST_PVE_TOKEN_SECRET  the token's secret
//	PVEKEEP_TEST_PVE_FINGERPRINT   optional pin of the node certificate ("AB:CD:…")
//	PVEKEEP_TEST_PVE_VERIFY_TLS    optional, 1 to verify the chain
//	PVEKEEP_TEST_PVE_VMID          a QEMU guest the suite may back up (default 100)
//	PVEKEEP_TEST_PVE_STORAGE       a storage with content "backup" (default "local")
//	PVEKEEP_TEST_PVE_OTHER_NODE    optional node that does not hold the guest
//	PVEKEEP_TEST_PVE_TEMPLATE      optional template the lifecycle tests clone
//	PVEKEEP_TEST_PVE_SCRATCH_VMID  optional free vmid for that clone (created and destroyed)
//	PVEKEEP_TEST_PVE_IMAGE_STORAGE optional storage (content images) for its disks
//
// The live run creates backups of that guest and removes them again; the
// token needs VM.Audit, VM.Backup, Datastore.Audit and
// Datastore.AllocateSpace; the lifecycle tests (with a template and a
// scratch vmid) also VM.Allocate, VM.Clone, VM.Config.*, VM.PowerMgmt and
// Datastore.AllocateSpace on the image storage, and they stop, restore and
// destroy only the scratch guest; the snapshot tests take, roll back and
// delete snapshots of that guest only and need VM.Snapshot and
// VM.Snapshot.Rollback too (their newest-only rollback test runs live when
// the guest's disk is on a zfspool storage). Tests that need fault injection (failed task,
// task with warnings, stuck lock, HTTP faults) skip without Env.Faults.
// A live Proxmox is optional equipment and CI has none, but its absence is
// declared, never guessed: PVEKEEP_TEST_REQUIRE_LIVE_PVE=0 says there is
// none (the live run skips, saying so; `make test` sets it unless told
// otherwise), =1 says there must be one (its absence fails). Undeclared,
// the live run skips, or fails under PVEKEEP_TEST_DISALLOW_SKIP=1. Some of
// URL, token id and secret set but not all always fails (see LiveEnv).
package pvetest
