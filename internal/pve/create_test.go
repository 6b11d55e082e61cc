package pve_test

import (
	"net/netip"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve"
)

func TestCloudInitOptionsRenderAsPVEReadsThem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ci      pve.CloudInit
		want    map[string]string
		wantErr bool
	}{
		{"dhcp when no address", pve.CloudInit{}, map[string]string{"ipconfig0": "ip=dhcp"}, false},
		{"no gateway next to dhcp", pve.CloudInit{IPConfig0: pve.IPConfig{Gateway: netip.MustParseAddr("192.0.2.1")}},
			map[string]string{"ipconfig0": "ip=dhcp"}, false},
		{"static with gateway", pve.CloudInit{IPConfig0: pve.IPConfig{Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("192.0.2.1")}},
			map[string]string{"ipconfig0": "ip=192.0.2.10/24,gw=192.0.2.1"}, false},
		{"keys joined by an encoded newline", pve.CloudInit{SSHKeys: []string{"ssh-ed25519 AAAA+/= a@b", " ", "ssh-rsa BBBB c"}},
			map[string]string{"ipconfig0": "ip=dhcp", "sshkeys": "ssh-ed25519%20AAAA%2B%2F%3D%20a%40b%0Assh-rsa%20BBBB%20c"}, false},
		{"user, hash, dns", pve.CloudInit{User: "jane", PasswordHash: "$6$s$h", SearchDomain: "example.net",
			Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")}},
			map[string]string{"ipconfig0": "ip=dhcp", "ciuser": "jane", "cipassword": "$6$s$h", "searchdomain": "example.net", "nameserver": "192.0.2.53 2001:db8::53"}, false},
		{"a plain password is refused", pve.CloudInit{PasswordHash: "secret"}, nil, true},
		{"a user with a comma is refused", pve.CloudInit{User: "a,b"}, nil, true},
		{"a key with a newline is refused", pve.CloudInit{SSHKeys: []string{"ssh-rsa A\nssh-rsa B"}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.ci.Options()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Options() err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if len(got) != len(tt.want) {
				t.Errorf("Options() = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("Options()[%s] = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestURLEncodeIsEncodeURIComponent(t *testing.T) {
	t.Parallel()
	if got, want := pve.URLEncode("a-z_A.Z~0!9*'() /+=\n@é"), "a-z_A.Z~0!9*'()%20%2F%2B%3D%0A%40%C3%A9"; got != want {
		t.Errorf("URLEncode = %q, want %q", got, want)
	}
}

// Known answers from glibc's crypt (openssl passwd -6 and Python's crypt agree).
func TestSHA512CryptMatchesGlibc(t *testing.T) {
	t.Parallel()
	tests := []struct{ pw, salt, want string }{
		{"Hello world!", "saltstring", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"", "abc", "$6$abc$mJP3a6FyA8uCnzRtlnNypPwjnvpi5TP9qOrInzrfDmwxUQG38PkpCPdqfTb8JQfAngapMxeim4AZ..hSdRRzD."},
		{"a much longer password than sixty-four bytes, to take the other branch of the loop", "0123456789abcdef", "$6$0123456789abcdef$wpak45y3DbdcGgSEwGFj8ue5Md3l2/zPC1r6n7796YbUO0kMc.S855lQGMd25ikvuyy0t15y2Ba9bPFqpdYAJ1"},
	}
	for _, tt := range tests {
		if got := pve.SHA512Crypt(tt.pw, tt.salt); got != tt.want {
			t.Errorf("sha512crypt(%q, %q) = %q, want %q", tt.pw, tt.salt, got, tt.want)
		}
	}
	h, err := pve.HashPassword("x")
	if err != nil || len(h) != len("$6$0123456789abcdef$")+86 {
		t.Errorf("HashPassword = %q, %v", h, err)
	}
}
