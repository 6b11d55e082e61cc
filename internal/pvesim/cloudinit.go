package pvesim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pvekeep/pvekeep/internal/lazyre"
)

// Cloud-init options as qemu-server takes them (QemuServer.pm's
// $confdesc_cloudinit, Network.pm's $ipconfig_fmt) and pve-common checks
// them (JSONSchema.pm's formats, Tools.pm's validate_ssh_public_keys):
//
//   - ipconfigN "ip=CIDR|dhcp|manual,gw=IPv4[,ip6=…,gw6=…]": a property
//     string whose keys are checked one by one, gw requiring ip and gw6
//     ip6. qemu-server's later semantic checks (a gateway next to dhcp)
//     only warn when the cloud-init drive is generated: the API takes them.
//   - nameserver: an address-list (IPs or DNS names, split on spaces,
//     commas and semicolons); searchdomain: any string.
//   - sshkeys: urlencoded ("%0A" between keys, "%20" inside), decoded
//     and checked key by key before anything else of the update.
//   - cipassword: written at once (never pending) and hashed unless it is
//     a crypt hash already; GET config shows "**********".

// The regexes of PVE::ParseUtils.
var (
	reIPv4 = lazyre.New(`^(?:(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])\.){3}(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])$`)
	// reCryptHash is update_vm_api's test for an already hashed password.
	reCryptHash = lazyre.New(`^\$(?:[156]|2[ay])(\$.+){2}`)
	// reURLEncoded is pve_verify_urlencoded.
	reURLEncoded = lazyre.New(`^[-%a-zA-Z0-9_.!~*'()]*$`)
)

func isIPv4(s string) bool { return reIPv4.MatchString(s) }

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && a.Zone() == ""
}

// cidrPrefix splits "addr/len" and checks the length is above 7 and at
// most max, as pve_verify_cidrv4/v6 do.
func cidrPrefix(s string, isAddr func(string) bool, max int) bool {
	addr, l, ok := strings.Cut(s, "/")
	if !ok || !isAddr(addr) || !reDigits.MatchString(l) {
		return false
	}
	n, err := strconv.Atoi(l)
	return err == nil && n > 7 && n <= max
}

func init() {
	namedFormats["ipv4"] = func(v string) string {
		if !isIPv4(v) {
			return "value does not look like a valid IPv4 address\n"
		}
		return ""
	}
	namedFormats["ipv6"] = func(v string) string {
		if !isIPv6(v) {
			return "value does not look like a valid IPv6 address\n"
		}
		return ""
	}
	namedFormats["pve-ipv4-config"] = func(v string) string {
		if v == "dhcp" || v == "manual" || cidrPrefix(v, isIPv4, 32) {
			return ""
		}
		return "value does not look like a valid ipv4 network configuration\n"
	}
	namedFormats["pve-ipv6-config"] = func(v string) string {
		if v == "auto" || v == "dhcp" || v == "manual" || cidrPrefix(v, isIPv6, 128) {
			return ""
		}
		return "value does not look like a valid ipv6 network configuration\n"
	}
	namedFormats["address"] = func(v string) string {
		if isIPv4(v) || isIPv6(v) || reDNSName.MatchString(v) {
			return ""
		}
		return fmt.Sprintf("value does not look like a valid address: %s\n", v)
	}
	namedFormats["urlencoded"] = func(v string) string {
		if !reURLEncoded.MatchString(v) {
			return fmt.Sprintf("invalid urlencoded string: %s\n", v)
		}
		return ""
	}
	namedFormats["pve-qm-ipconfig"] = checkIPConfig
}

// ipconfigKeys is $ipconfig_fmt: each key's format and the key it requires.
var ipconfigKeys = map[string]struct{ format, requires string }{
	"ip":  {"pve-ipv4-config", ""},
	"gw":  {"ipv4", "ip"},
	"ip6": {"pve-ipv6-config", ""},
	"gw6": {"ipv6", "ip6"},
}

// checkIPConfig is parse_property_string with $ipconfig_fmt, which has no
// default key: every part is key=value.
func checkIPConfig(value string) string {
	got := map[string]string{}
	var errs []string
	for _, part := range strings.Split(value, ",") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return "value without key, but schema does not define a default key\n"
		}
		if _, dup := got[k]; dup {
			return fmt.Sprintf("duplicate key in comma-separated list property: %s\n", k)
		}
		if _, known := ipconfigKeys[k]; !known {
			return fmt.Sprintf("invalid key in comma-separated list property: %s\n", k)
		}
		got[k] = v
	}
	for k, v := range got {
		spec := ipconfigKeys[k]
		if msg := namedFormats[spec.format](v); msg != "" {
			errs = append(errs, fmt.Sprintf("%s: invalid format - %s", k, strings.TrimSuffix(msg, "\n")))
		}
		if spec.requires != "" {
			if _, ok := got[spec.requires]; !ok {
				errs = append(errs, fmt.Sprintf("%s: missing property required by '%s'", spec.requires, k))
			}
		}
	}
	if len(errs) == 0 {
		return ""
	}
	slices.Sort(errs)
	return "format error\n" + strings.Join(errs, "\n") + "\n"
}

// uriUnescape is URI::Escape::uri_unescape: %XX decoded, nothing else
// ("+" stays "+"; a stray "%" stays).
func uriUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sshKeyTypes are the public key types ssh-keygen -l reads (with their
// certificates).
var sshKeyTypes = []string{
	"ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
	"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
	"ssh-rsa-cert-v01@openssh.com", "ssh-dss-cert-v01@openssh.com", "ssh-ed25519-cert-v01@openssh.com",
	"ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp384-cert-v01@openssh.com",
	"ecdsa-sha2-nistp521-cert-v01@openssh.com",
}

// validSSHKeyLine is what ssh-keygen -l accepts of one authorized_keys
// line: optional options, a key type, a base64 blob that starts with the
// same type and carries key material after it, an optional comment. The
// plugin has a check of its own (internal/sshkey): the simulator imports
// nothing of the plugin's, so that a bug they shared could not hide.
func validSSHKeyLine(line string) bool {
	fields := strings.Fields(line)
	for i := 0; i+1 < len(fields); i++ {
		if !slices.Contains(sshKeyTypes, fields[i]) {
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

// checkSSHKeys is update_vm_api's check of sshkeys: uri_unescape, then
// validate_ssh_public_keys line by line.
func checkSSHKeys(encoded string) *apiError {
	for _, line := range strings.Split(uriUnescape(encoded), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !validSSHKeyLine(line) {
			return errDie("SSH public key validation error\n")
		}
	}
	return nil
}

// hashCIPassword is encrypt_pw for a cipassword that is not a crypt hash
// yet (qemu-server leaves a Windows guest's as given). The shape is
// crypt's "$5$salt$hash"; the hash is not glibc's SHA-256-crypt, which
// nothing reads back: GET config shows "**********".
func hashCIPassword(pw, ostype string) string {
	if reCryptHash.MatchString(pw) || strings.HasPrefix(ostype, "w") {
		return pw
	}
	salt := randomHex(4)
	sum := sha256.Sum256([]byte(salt + pw))
	return "$5$" + salt + "$" + strings.TrimRight(base64.RawStdEncoding.EncodeToString(sum[:]), "=")
}
