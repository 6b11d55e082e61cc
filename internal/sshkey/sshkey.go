// Package sshkey says whether a line is an OpenSSH public key as
// ssh-keygen -l reads it, the check Proxmox's validate_ssh_public_keys
// makes of cloud-init's sshkeys. The plugin refuses what Proxmox would
// before a create starts, so that a mistyped key fails the order at once
// with its line instead of half-way through provisioning. (The simulator
// keeps its own copy: it imports nothing of the plugin's.)
package sshkey

import (
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strings"
)

// types are the public key types ssh-keygen -l reads.
var types = []string{
	"ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
	"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
	"ssh-rsa-cert-v01@openssh.com", "ssh-dss-cert-v01@openssh.com", "ssh-ed25519-cert-v01@openssh.com",
	"ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp384-cert-v01@openssh.com",
	"ecdsa-sha2-nistp521-cert-v01@openssh.com",
}

// Valid is what ssh-keygen -l accepts of one authorized_keys line:
// optional options, a key type, a base64 blob that starts with the same
// type and carries key material after it, an optional comment.
func Valid(line string) bool {
	fields := strings.Fields(line)
	for i := 0; i+1 < len(fields); i++ {
		if !slices.Contains(types, fields[i]) {
			continue
		}
		blob, err := base64.StdEncoding.DecodeString(fields[i+1])
		if err != nil || len(blob) < 4 {
			return false
		}
		n := binary.BigEndian.Uint32(blob)
		return int(n) < len(blob)-4 && string(blob[4:4+n]) == fields[i]
	}
	return false
}
