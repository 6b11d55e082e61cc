package pvetest

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve"
)

// What creating a guest needs of Proxmox: a free id, cloud-init options,
// a full clone onto another storage (and node), linked clones refused
// where PVE refuses them.

// NextID answers a free id; asking for a taken one is ErrAlreadyExists.
func (s *Suite) TestNextID(t *testing.T) {
	env, c, ctx := s.setup(t)
	id, err := c.NextID(ctx, 0)
	if err != nil {
		t.Fatalf("NextID: %v", err)
	}
	if _, err := c.FindVM(ctx, id); !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("NextID answered %d, which FindVM finds (%v)", id, err)
	}
	if again, err := c.NextID(ctx, id); err != nil || again != id {
		t.Errorf("NextID(%d) = %d, %v; want it answered back", id, again, err)
	}
	if _, err := c.NextID(ctx, env.VMID); !errors.Is(err, pve.ErrAlreadyExists) {
		t.Errorf("NextID(taken %d) err = %v, want ErrAlreadyExists", env.VMID, err)
	}
}

// testKey is an ed25519 public key (a well-formed blob, no one's key).
const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f pvekeep-suite"

// Cloud-init options written to a clone read back as PVE keeps them: the
// keys URL-encoded, the password hidden.
func (s *Suite) TestCloudInitOptions(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := s.scratch(ctx, t, c, env)
	ci := pve.CloudInit{
		User:         "jane",
		PasswordHash: "$6$pvekeepsuite$VtDk0GfHkRZk3Xk3N8y3bF9n7Z4I8U5wq1zYJ0yW4QkYQ6rC0J2o9qUq8l1cX3q9m7H5n2g0w1e6r4t7y9u0i.",
		SSHKeys:      []string{testKey, testKey + "-2"},
		IPConfig0:    pve.IPConfig{Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("192.0.2.1")},
		Nameservers:  []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("198.51.100.53")},
		SearchDomain: "example.net",
	}
	opts, err := ci.Options()
	if err != nil {
		t.Fatalf("Options: %v", err)
	}
	if err := c.UpdateConfig(ctx, node, env.ScratchVMID, pve.ConfigChange{Set: opts}); err != nil {
		t.Fatalf("UpdateConfig(cloud-init): %v", err)
	}
	cfg := mustConfig(ctx, t, c, node, env.ScratchVMID)
	want := map[string]string{
		"ciuser": "jane", "ipconfig0": "ip=192.0.2.10/24,gw=192.0.2.1",
		"nameserver": "192.0.2.53 198.51.100.53", "searchdomain": "example.net", "cipassword": "**********",
		"sshkeys": pve.URLEncode(testKey + "\n" + testKey + "-2"),
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("config %s = %q, want %q", k, cfg[k], v)
		}
	}
	// A bad value is refused with PVE's reason for that option.
	err = c.UpdateConfig(ctx, node, env.ScratchVMID, pve.ConfigChange{Set: map[string]string{"ipconfig0": "ip=192.0.2.10"}})
	var he *pve.HTTPError
	if !errors.As(err, &he) || he.Code != 400 || he.Errors["ipconfig0"] == "" {
		t.Errorf("ipconfig0 without a prefix: err = %v, want a 400 naming ipconfig0", err)
	}
	err = c.UpdateConfig(ctx, node, env.ScratchVMID, pve.ConfigChange{Set: map[string]string{"sshkeys": pve.URLEncode("not a key")}})
	if err == nil || !strings.Contains(err.Error(), "SSH public key validation error") {
		t.Errorf("a bad ssh key: err = %v, want PVE's validation error", err)
	}
	// PVE dies with a 500: it must not read as worth retrying.
	if !errors.Is(err, pve.ErrRefusedValue) || errors.Is(err, pve.ErrTransient) {
		t.Errorf("a bad ssh key: err = %v, want ErrRefusedValue and not ErrTransient", err)
	}
}

// A linked clone of a guest that is not a template is refused before any
// task, and nothing is made.
func (s *Suite) TestLinkedCloneOfGuestRefused(t *testing.T) {
	env, c, ctx := s.setup(t)
	if env.ScratchVMID == 0 {
		t.Skip("needs Env.ScratchVMID")
	}
	node := findNode(ctx, t, c, env.VMID)
	_, err := c.CloneVM(ctx, node, pve.CloneRequest{Template: env.VMID, NewID: env.ScratchVMID, Linked: true})
	if err == nil || !strings.Contains(err.Error(), "Linked clone feature is not supported") {
		t.Errorf("linked clone of guest %d: err = %v, want PVE's refusal", env.VMID, err)
	}
	if _, err := c.FindVM(ctx, env.ScratchVMID); !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("after the refusal FindVM(%d) = %v, want ErrNotFound", env.ScratchVMID, err)
	}
}

// A full clone of the template onto shared storage lands on another node.
func (s *Suite) TestFullCloneToSharedStorageOnOtherNode(t *testing.T) {
	env, c, ctx := s.setup(t)
	if env.Template == 0 || env.ScratchVMID == 0 || env.SharedImageStorage == "" || env.OtherNode == "" {
		t.Skip("needs Env.Template, ScratchVMID, SharedImageStorage and OtherNode")
	}
	tnode := findNode(ctx, t, c, env.Template)
	target := env.OtherNode
	if target == tnode {
		t.Skip("the template is on OtherNode")
	}
	upid, err := c.CloneVM(ctx, tnode, pve.CloneRequest{Template: env.Template, NewID: env.ScratchVMID, Name: "pvekeep-suite",
		Full: true, Storage: env.SharedImageStorage, Target: target})
	if err != nil {
		t.Fatalf("CloneVM: %v", err)
	}
	t.Cleanup(func() { destroy(t, c, target, env.ScratchVMID) })
	mustWait(ctx, t, c, "clone", upid, nil)
	ref, err := c.FindVM(ctx, env.ScratchVMID)
	if err != nil || ref.Node != target {
		t.Fatalf("FindVM(clone) = %+v, %v; want it on %s", ref, err, target)
	}
	cfg := mustConfig(ctx, t, c, target, env.ScratchVMID)
	d, err := pve.ParseDrive(cfg["scsi0"])
	if err != nil || d.Storage() != env.SharedImageStorage {
		t.Errorf("clone scsi0 = %q (%v), want it on %s", cfg["scsi0"], err, env.SharedImageStorage)
	}
}
