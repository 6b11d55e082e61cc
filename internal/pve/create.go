package pve

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// NextID asks the cluster for a free guest id (GET /cluster/nextid): the
// lowest free one when from is 0, else from itself when no guest has it;
// a taken from is ErrAlreadyExists ("VM N already exists"). PVE only
// looks and reserves nothing: two callers may be told the same id, and
// the second clone onto it fails. Callers that create guests concurrently
// reserve the id themselves before using it.
func (c *Client) NextID(ctx context.Context, from pvekeep.VMID) (pvekeep.VMID, error) {
	var q url.Values
	if from > 0 {
		q = url.Values{"vmid": {strconv.Itoa(int(from))}}
	}
	var id flexInt
	if err := c.get(ctx, "/cluster/nextid", q, &id); err != nil {
		var he *HTTPError
		if from > 0 && errors.As(err, &he) && strings.Contains(he.Errors["vmid"], "already exists") {
			// a parameter error, which classify does not read
			return 0, fmt.Errorf("check vmid %d is free: %w: %w", from, ErrAlreadyExists, err)
		}
		if from > 0 {
			return 0, fmt.Errorf("check vmid %d is free: %w", from, err)
		}
		return 0, fmt.Errorf("get next free vmid: %w", err)
	}
	if id <= 0 {
		return 0, fmt.Errorf("get next free vmid: proxmox answered %d", id)
	}
	return pvekeep.VMID(id), nil
}

// IPConfig is one ipconfigN value: a static IPv4 address with its prefix
// and an optional gateway, or DHCP (the zero value).
type IPConfig struct {
	Address netip.Prefix // invalid (zero) means DHCP
	Gateway netip.Addr   // invalid (zero) means none
}

// String is the value PVE reads: "ip=192.0.2.10/24,gw=192.0.2.1" or
// "ip=dhcp". A gateway is never written next to DHCP: qemu-server would
// only warn and drop the whole ipconfig when it makes the cloud-init drive.
func (ip IPConfig) String() string {
	if !ip.Address.IsValid() {
		return "ip=dhcp"
	}
	s := "ip=" + ip.Address.String()
	if ip.Gateway.IsValid() {
		s += ",gw=" + ip.Gateway.String()
	}
	return s
}

// CloudInit are the cloud-init options of a new guest. Empty fields are
// left out (the template's own values, if any, stay).
type CloudInit struct {
	User string
	// PasswordHash is a crypt(3) hash ("$6$…"): PVE stores it as given.
	// A plain password would be hashed by PVE too, but it would travel
	// and sit in the caller's records in the clear.
	PasswordHash string
	SSHKeys      []string // OpenSSH public keys, one per entry
	IPConfig0    IPConfig
	Nameservers  []netip.Addr
	SearchDomain string
}

// Options renders the options for UpdateConfig. sshkeys is URL-encoded
// as PVE requires (format "urlencoded": every byte but
// [-A-Za-z0-9_.!~*'()] as %XX, the newlines between keys included), as
// its web UI's encodeURIComponent does.
func (ci CloudInit) Options() (map[string]string, error) {
	out := map[string]string{"ipconfig0": ci.IPConfig0.String()}
	if ci.User != "" {
		if strings.ContainsFunc(ci.User, func(r rune) bool { return r <= ' ' || r == ',' || r == '=' }) {
			return nil, fmt.Errorf("cloud-init user %q contains a space, a control character, ',' or '='", ci.User)
		}
		out["ciuser"] = ci.User
	}
	if ci.PasswordHash != "" {
		if !strings.HasPrefix(ci.PasswordHash, "$") {
			return nil, fmt.Errorf("cloud-init password must be a crypt hash")
		}
		out["cipassword"] = ci.PasswordHash
	}
	var keys []string
	for _, k := range ci.SSHKeys {
		if k = strings.TrimSpace(k); k != "" {
			if strings.ContainsAny(k, "\r\n") {
				return nil, fmt.Errorf("an ssh key spans several lines")
			}
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		out["sshkeys"] = URLEncode(strings.Join(keys, "\n"))
	}
	if len(ci.Nameservers) > 0 {
		ns := make([]string, 0, len(ci.Nameservers))
		for _, a := range ci.Nameservers {
			ns = append(ns, a.String())
		}
		out["nameserver"] = strings.Join(ns, " ")
	}
	if ci.SearchDomain != "" {
		out["searchdomain"] = ci.SearchDomain
	}
	return out, nil
}

// URLEncode is JavaScript's encodeURIComponent, which PVE's "urlencoded"
// format accepts and URI::Escape::uri_unescape reverses.
func URLEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("-_.!~*'()", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
