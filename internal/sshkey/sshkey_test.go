package sshkey

import "testing"

func TestValid(t *testing.T) {
	t.Parallel()
	const ed = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	for _, tc := range []struct {
		name, line string
		ok         bool
	}{
		{"ed25519 with a comment", "ssh-ed25519 " + ed + " alice@laptop", true},
		{"with options", `from="10.0.0.0/8" ssh-ed25519 ` + ed, true},
		{"type and blob disagree", "ssh-rsa " + ed, false},
		{"not base64", "ssh-ed25519 not-a-key", false},
		{"no type", ed, false},
		{"a private key's first line", "-----BEGIN OPENSSH PRIVATE KEY-----", false},
		{"empty", "", false},
		{"a blob holding only its type", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", false},
	} {
		if got := Valid(tc.line); got != tc.ok {
			t.Errorf("%s: Valid = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
