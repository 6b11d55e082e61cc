// Package mailtest runs an in-process SMTP server for tests, built on
// github.com/emersion/go-smtp: it listens on 127.0.0.1 without TLS (or,
// with StartWith, offering STARTTLS or speaking TLS from the first byte,
// with a certificate of its own that CertPool trusts), takes
// any AUTH PLAIN login (or only one, with RequireAuth), keeps every message
// it accepts, decoded, and can be told to refuse the next delivery with a
// chosen reply code or to hold it until the test lets it go.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message the server accepted.
type Received struct {
	From     string   // envelope sender (MAIL FROM)
	To       []string // envelope recipients (RCPT TO)
	Username string   // the AUTH login, "" without AUTH
	TLS      bool     // the session ran over TLS (implicit or STARTTLS)
	Data     []byte   // the message as sent, headers and all
	Header   mail.Header
	Subject  string // decoded
	// MessageID is the Message-ID header as sent, angle brackets included.
	MessageID string
	TextBody  string // the decoded text/plain part
	HTMLBody  string // the decoded text/html part
	ParseErr  error  // set when Data is not a message mailtest could parse
}

// Server is a running test SMTP server; Start stops it when the test ends.
type Server struct {
	t    testing.TB
	srv  *smtp.Server
	ln   net.Listener
	host string
	port int

	mu       sync.Mutex
	msgs     []Received
	arrived  chan struct{} // closed and replaced whenever a message arrives
	failures []*smtp.SMTPError
	holds    []hold
	user     string
	pass     string
	authOnly bool
	pool     *x509.CertPool
}

type hold struct {
	held    chan struct{}
	release chan struct{}
}

// TLS modes of Options.TLS.
const (
	TLSNone     = ""         // plain SMTP, no STARTTLS offered
	TLSStartTLS = "starttls" // plain connect, STARTTLS offered
	TLSImplicit = "implicit" // TLS from the first byte ("SMTPS")
)

// Options choose how a server speaks.
type Options struct {
	TLS string // TLSNone, TLSStartTLS or TLSImplicit
}

// Start starts a plain server on 127.0.0.1:0 and closes it when t ends.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith starts a server on 127.0.0.1:0 as opts say and closes it when
// t ends. With TLS its certificate is for 127.0.0.1, trusted by CertPool.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s := &Server{t: t, ln: ln, arrived: make(chan struct{})}
	addr := ln.Addr().(*net.TCPAddr)
	s.host, s.port = addr.IP.String(), addr.Port

	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	switch opts.TLS {
	case TLSNone:
	case TLSStartTLS, TLSImplicit:
		cfg, pool, err := selfSigned(s.host)
		if err != nil {
			_ = ln.Close()
			t.Fatalf("mailtest: certificate: %v", err)
		}
		s.pool = pool
		if opts.TLS == TLSStartTLS {
			s.srv.TLSConfig = cfg
		} else {
			ln = tls.NewListener(ln, cfg)
		}
	default:
		_ = ln.Close()
		t.Fatalf("mailtest: unknown TLS mode %q", opts.TLS)
	}
	s.srv.Domain = "mailtest.invalid"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 10 << 20
	s.srv.ErrorLog = discardLogger{}

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.releaseAll()
		_ = s.srv.Close()
		// Close only closes listeners Serve has registered: if the test
		// ended before the goroutine got there, close ours ourselves.
		_ = ln.Close()
		<-done
	})
	return s
}

// Addr is where the server listens.
func (s *Server) Addr() (host string, port int) { return s.host, s.port }

// CertPool trusts the server's certificate; nil for a plain server.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// selfSigned makes a certificate for ip and a pool that trusts it.
func selfSigned(ip string) (*tls.Config, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mailtest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP(ip)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion: tls.VersionTLS12}, pool, nil
}

// RequireAuth makes the server accept only this AUTH PLAIN login and
// refuse mail without it (530); any other login gets 535.
func (s *Server) RequireAuth(username, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pass, s.authOnly = username, password, true
}

// FailNext makes the next delivery fail with code and msg once the server
// has read the message (at the end of DATA): 451 for a temporary, 550 for
// a permanent refusal. Calls queue up, one per delivery.
func (s *Server) FailNext(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &smtp.SMTPError{
		Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg})
}

// HoldNext makes the next delivery stop at the end of DATA, before the
// server answers: held is closed when it gets there, and the delivery goes
// on (and is accepted) once release is called, or fails when the client
// goes away. Release runs at cleanup if the test did not call it.
func (s *Server) HoldNext() (held <-chan struct{}, release func()) {
	h := hold{held: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.holds = append(s.holds, h)
	s.mu.Unlock()
	var once sync.Once
	return h.held, func() { once.Do(func() { close(h.release) }) }
}

func (s *Server) releaseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.holds {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	}
	s.holds = nil
}

// Messages returns a copy of the messages accepted so far, oldest first.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// WaitFor waits until at least n messages have arrived and returns them;
// it fails the test after timeout.
func (s *Server) WaitFor(n int, timeout time.Duration) []Received {
	s.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := append([]Received(nil), s.msgs...)
			s.mu.Unlock()
			return msgs
		}
		arrived, got := s.arrived, len(s.msgs)
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-deadline.C:
			s.t.Fatalf("mailtest: %d of %d messages arrived within %s", got, n, timeout)
			return nil
		}
	}
}

func (s *Server) deliver(r Received) error {
	s.mu.Lock()
	var h *hold
	if len(s.holds) > 0 {
		h = &s.holds[0]
		s.holds = s.holds[1:]
	}
	s.mu.Unlock()
	if h != nil {
		close(h.held)
		<-h.release
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) > 0 {
		err := s.failures[0]
		s.failures = s.failures[1:]
		return err
	}
	s.msgs = append(s.msgs, r)
	close(s.arrived)
	s.arrived = make(chan struct{})
	return nil
}

type session struct {
	s        *Server
	conn     *smtp.Conn
	username string
	from     string
	to       []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		ss.s.mu.Lock()
		user, pass, only := ss.s.user, ss.s.pass, ss.s.authOnly
		ss.s.mu.Unlock()
		if only && (username != user || password != pass) {
			return smtp.ErrAuthFailed
		}
		ss.username = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.mu.Lock()
	only := ss.s.authOnly
	ss.s.mu.Unlock()
	if only && ss.username == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	rec := parse(data)
	rec.From, rec.To, rec.Username = ss.from, append([]string(nil), ss.to...), ss.username
	_, rec.TLS = ss.conn.TLSConnectionState()
	return ss.s.deliver(rec)
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// parse decodes what a test wants to assert on: headers, the subject and
// the text and HTML parts, through any nesting of multiparts.
func parse(data []byte) Received {
	rec := Received{Data: data}
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		rec.ParseErr = err
		return rec
	}
	rec.Header = m.Header
	rec.MessageID = m.Header.Get("Message-ID")
	dec := new(mime.WordDecoder)
	if rec.Subject, err = dec.DecodeHeader(m.Header.Get("Subject")); err != nil {
		rec.ParseErr = err
	}
	if err := walk(m.Header, m.Body, &rec); err != nil && rec.ParseErr == nil {
		rec.ParseErr = err
	}
	return rec
}

// header is mail.Header or a part's textproto.MIMEHeader.
type header interface{ Get(string) string }

func walk(h header, body io.Reader, rec *Received) error {
	ctype := h.Get("Content-Type")
	if ctype == "" {
		ctype = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walk(p.Header, p, rec); err != nil {
				return err
			}
		}
	}
	decoded, err := io.ReadAll(decode(h.Get("Content-Transfer-Encoding"), body))
	if err != nil {
		return err
	}
	switch mt {
	case "text/plain":
		rec.TextBody = string(decoded)
	case "text/html":
		rec.HTMLBody = string(decoded)
	}
	return nil
}

func decode(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r) // skips the line breaks
	}
	return r
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
