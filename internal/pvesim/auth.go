package pvesim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

const (
	cookieName     = "PVEAuthCookie"
	tokenScheme    = "PVEAPIToken"
	csrfHeader     = "CSRFPreventionToken"
	ticketLifetime = 2 * time.Hour
)

type ticket struct {
	user   string
	csrf   string
	issued time.Time
}

// extractAuthValue is PVE::APIServer::Formatter::extract_auth_value.
func extractAuthValue(header, key string) string {
	if header == "" {
		return ""
	}
	re := regexp.MustCompile(`(?:^|\s)` + regexp.QuoteMeta(key) + `(?:=| )([^;]*)`)
	m := re.FindStringSubmatch(header)
	if m == nil {
		return ""
	}
	v, err := url.PathUnescape(m[1])
	if err != nil {
		return m[1]
	}
	return v
}

// authenticate checks a request the way PVE's auth_handler does and returns
// the acting user id ("root@pam" or the full token id).
func (s *Sim) authenticate(hr *http.Request, rel string) (string, bool, *apiError) {
	if rel == "/access/ticket" && hr.Method == http.MethodPost {
		return "", false, nil
	}
	cookie := hr.Header.Get("Cookie")
	authz := hr.Header.Get("Authorization")
	tk := extractAuthValue(cookie, cookieName)
	if tk == "" {
		tk = extractAuthValue(authz, cookieName)
	}
	if tk == "" {
		token := extractAuthValue(authz, tokenScheme)
		if token == "" {
			return "", false, &apiError{status: http.StatusUnauthorized, message: "No ticket\n"}
		}
		i := strings.LastIndex(token, "=")
		if i <= 0 {
			return "", false, &apiError{status: http.StatusUnauthorized, message: "Authentication failed!\n"}
		}
		id, secret := token[:i], token[i+1:]
		s.mu.Lock()
		want := s.opts.TokenSecret
		s.mu.Unlock()
		if subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.TokenID)) != 1 ||
			subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
			s.log.Info("authentication failure", "reason", "invalid token", "token_id", id)
			return "", false, &apiError{status: http.StatusUnauthorized, message: "Authentication failed!\n"}
		}
		return id, true, nil
	}
	t, ok := s.validTicket(tk)
	if !ok {
		s.log.Info("authentication failure", "reason", "invalid ticket")
		return "", false, &apiError{status: http.StatusUnauthorized, message: "Authentication failed!\n"}
	}
	if hr.Method != http.MethodGet {
		if subtle.ConstantTimeCompare([]byte(hr.Header.Get(csrfHeader)), []byte(t.csrf)) != 1 {
			return "", false, &apiError{status: http.StatusUnauthorized, message: "Permission denied - invalid csrf token\n"}
		}
	}
	return t.user, false, nil
}

func (s *Sim) validTicket(tk string) (ticket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tickets[tk]
	if !ok || s.now().Sub(t.issued) > ticketLifetime {
		return ticket{}, false
	}
	return t, true
}

// handleTicket is POST /access/ticket: password (or a valid ticket, to
// renew it) in, a ticket cookie value and a CSRF token out.
func (s *Sim) handleTicket(r *request) (any, error) {
	user := r.str("username")
	if realm := r.str("realm"); realm != "" && !strings.Contains(user, "@") {
		user += "@" + realm
	}
	password := r.str("password")
	okPassword := user == rootUser && subtle.ConstantTimeCompare([]byte(password), []byte(s.opts.Password)) == 1
	if !okPassword {
		if t, ok := s.validTicket(password); ok && t.user == user {
			okPassword = true
		}
	}
	if !okPassword {
		s.log.Info("authentication failure", "user", user)
		return nil, &apiError{status: http.StatusUnauthorized, message: "authentication failure\n"}
	}
	now := s.now()
	stamp := fmt.Sprintf("%08X", now.Unix())
	tk := fmt.Sprintf("PVE:%s:%s::%s", user, stamp, randomBase64(256))
	mac := hmac.New(sha256.New, []byte(randomHex(16)))
	mac.Write([]byte(stamp + ":" + user))
	csrf := stamp + ":" + base64.RawStdEncoding.EncodeToString(mac.Sum(nil))
	s.mu.Lock()
	s.tickets[tk] = ticket{user: user, csrf: csrf, issued: now}
	s.mu.Unlock()
	return map[string]any{
		"username":            user,
		"ticket":              tk,
		"CSRFPreventionToken": csrf,
		"clustername":         clusterName,
		"cap": map[string]any{
			"vms":     map[string]int{"VM.Backup": 1, "VM.Audit": 1, "VM.Config.Options": 1, "VM.PowerMgmt": 1, "VM.Allocate": 1, "VM.Snapshot": 1},
			"storage": map[string]int{"Datastore.Allocate": 1, "Datastore.AllocateSpace": 1, "Datastore.Audit": 1},
			"nodes":   map[string]int{"Sys.Audit": 1},
		},
	}, nil
}

func randomBase64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// SetTokenSecret replaces the API token's secret, as regenerating it in
// PVE does: clients still sending the old one get 401 "Authentication
// failed!" (the wrong-token case of a connection test). "" revokes the
// token: no secret matches.
func (s *Sim) SetTokenSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if secret == "" {
		secret = "\x00revoked\x00" + randomHex(16)
	}
	s.opts.TokenSecret = secret
	s.info.TokenSecret = secret
}
