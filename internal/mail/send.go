package mail

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"strings"
	"syscall"

	gomail "github.com/wneessen/go-mail"
)

// ErrTransient marks a send that may work if tried again later: a 4xx
// reply, a server that cannot be reached or broke the connection, a
// timeout, a cancelled context. errors.Is(err, ErrTransient) is false for
// permanent failures (5xx replies, TLS or configuration problems, a
// malformed message), which no retry will fix.
var ErrTransient = errors.New("temporary mail failure")

// SendError is a failed send. Code is the SMTP reply code when the server
// answered with one (451, 550, …), else 0.
type SendError struct {
	MessageID string
	Code      int
	Transient bool
	err       error
}

func (e *SendError) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "temporary"
	}
	return fmt.Sprintf("send email %s (%s failure): %v", e.MessageID, kind, e.err)
}

func (e *SendError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrTransient) report the classification.
func (e *SendError) Is(target error) bool { return target == ErrTransient && e.Transient }

// Sender delivers messages over SMTP, one connection per Send.
type Sender struct {
	cfg    Config
	logger *slog.Logger
}

// NewSender returns a Sender for cfg (defaults applied). An invalid cfg
// makes every Send fail permanently; check cfg.Validate when wiring.
func NewSender(cfg Config, logger *slog.Logger) *Sender {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sender{cfg: cfg.withDefaults(), logger: logger.With("component", "mail")}
}

var messageIDRe = lazyre.New(`^<[^<>@\s]+@[^<>@\s]+>$`)

func (m Message) validate() error {
	if err := checkAddress(m.To); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	switch {
	case !messageIDRe.MatchString(m.MessageID):
		return fmt.Errorf("message id %q must look like <id@domain>", m.MessageID)
	case strings.TrimSpace(m.Subject) == "":
		return errors.New("subject is required")
	case strings.TrimSpace(m.Text) == "":
		return errors.New("a plain-text body is required")
	}
	return nil
}

// Send delivers m: one connection, one transaction, then QUIT. It returns
// nil once the server accepted the message (a failing RSET or QUIT after
// that does not count). ctx cancels a send in progress by closing the
// connection; cfg.Timeout bounds connecting and each command. Errors are
// *SendError; see ErrTransient. A cancellation or timeout after the server
// got the whole message may still have delivered it: a retry then sends a
// duplicate with the same Message-ID.
func (s *Sender) Send(ctx context.Context, m Message) error {
	if err := s.cfg.Validate(); err != nil {
		return s.fail(m, &SendError{MessageID: m.MessageID, err: err})
	}
	if err := m.validate(); err != nil {
		return s.fail(m, &SendError{MessageID: m.MessageID, err: fmt.Errorf("invalid message: %w", err)})
	}
	if err := ctx.Err(); err != nil {
		return s.fail(m, &SendError{MessageID: m.MessageID, Transient: true, err: err})
	}
	msg, err := s.build(m)
	if err != nil {
		return s.fail(m, &SendError{MessageID: m.MessageID, err: fmt.Errorf("build message: %w", err)})
	}

	conns := &connCloser{}
	defer conns.stop()
	client, err := gomail.NewClient(s.cfg.Host, s.options(ctx, conns)...)
	if err != nil {
		return s.fail(m, &SendError{MessageID: m.MessageID, err: fmt.Errorf("smtp client: %w", err)})
	}
	smtpClient, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return s.fail(m, s.classify(ctx, m.MessageID, fmt.Errorf("connect to %s:%d: %w", s.cfg.Host, s.cfg.Port, err)))
	}
	sendErr := client.SendWithSMTPClient(smtpClient, msg)
	if closeErr := client.CloseWithSMTPClient(smtpClient); closeErr != nil {
		s.logger.DebugContext(ctx, "closing the smtp connection failed", "message_id", m.MessageID, "err", s.redact(closeErr))
	}
	if sendErr != nil && !msg.IsDelivered() {
		return s.fail(m, s.classify(ctx, m.MessageID, sendErr))
	}
	if sendErr != nil {
		s.logger.WarnContext(ctx, "smtp server accepted the message, then failed", "message_id", m.MessageID, "err", s.redact(sendErr))
	}
	s.logger.InfoContext(ctx, "email sent", "message_id", m.MessageID, "to", m.To)
	return nil
}

func (s *Sender) fail(m Message, e *SendError) error {
	e.err = s.redact(e.err)
	s.logger.Debug("email not sent", "message_id", m.MessageID, "to", m.To, "code", e.Code, "transient", e.Transient, "err", e.err)
	return e
}

func (s *Sender) build(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithCharset(gomail.CharsetUTF8), gomail.WithEncoding(gomail.EncodingQP))
	if err := msg.FromFormat(oneLine(s.cfg.FromName), s.cfg.From); err != nil {
		return nil, err
	}
	if err := msg.AddToFormat(oneLine(m.ToName), m.To); err != nil {
		return nil, err
	}
	msg.Subject(oneLine(m.Subject))
	msg.SetMessageIDWithValue(strings.TrimSuffix(strings.TrimPrefix(m.MessageID, "<"), ">"))
	if m.Date.IsZero() {
		msg.SetDate()
	} else {
		msg.SetDateWithValue(m.Date)
	}
	// RFC 3834: no vacation replies to a machine-made notification.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

func (s *Sender) options(ctx context.Context, conns *connCloser) []gomail.Option {
	tlsCfg := &tls.Config{ServerName: s.cfg.Host, MinVersion: tls.VersionTLS12, RootCAs: s.cfg.RootCAs}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(s.cfg.Timeout),
		gomail.WithTLSConfig(tlsCfg),
		gomail.WithDialContextFunc(s.dialer(ctx, conns, tlsCfg)),
	}
	switch s.cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		// implicit TLS is done by our dialer; none means none
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.cfg.HeloName != "" {
		opts = append(opts, gomail.WithHELO(s.cfg.HeloName))
	}
	if s.cfg.Username != "" {
		// PLAIN and LOGIN refuse to run without TLS unless the server is
		// on this host (Validate refuses that configuration anyway).
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
				gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(s.cfg.Username),
			gomail.WithPassword(s.cfg.Password))
	}
	return opts
}

// dialer connects (with TLS from the first byte for "tls") and ties the
// connection to ctx: go-mail only watches ctx while dialing, so a
// cancellation later closes the connection under it.
func (s *Sender) dialer(ctx context.Context, conns *connCloser, tlsCfg *tls.Config) gomail.DialContextFunc {
	return func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		nd := &net.Dialer{}
		var conn net.Conn
		var err error
		if s.cfg.TLS == TLSImplicit {
			conn, err = (&tls.Dialer{NetDialer: nd, Config: tlsCfg}).DialContext(dialCtx, network, addr)
		} else {
			conn, err = nd.DialContext(dialCtx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		conns.watch(ctx, conn)
		return conn, nil
	}
}

// connCloser closes the connections it watches when ctx ends, until stop.
type connCloser struct{ stops []func() bool }

func (c *connCloser) watch(ctx context.Context, conn net.Conn) {
	c.stops = append(c.stops, context.AfterFunc(ctx, func() { _ = conn.Close() }))
}

func (c *connCloser) stop() {
	for _, stop := range c.stops {
		stop()
	}
}

// classify decides whether err is worth another try later.
func (s *Sender) classify(ctx context.Context, id string, err error) *SendError {
	e := &SendError{MessageID: id, err: err}
	if ctx.Err() != nil {
		// The connection was closed under go-mail because ctx ended.
		e.Transient = true
		e.err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		return e
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		e.Code = se.ErrorCode()
		switch {
		case e.Code != 0:
			e.Transient = e.Code/100 == 4
		case se.IsTemp():
			e.Transient = true
		default:
			// No reply code: the message or the connection failed before the
			// server said anything. Only our own message is permanent.
			switch se.Reason {
			case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			default:
				e.Transient = true
			}
		}
		return e
	}
	var tpe *textproto.Error
	if errors.As(err, &tpe) {
		e.Code = tpe.Code
		e.Transient = tpe.Code/100 == 4
		return e
	}
	e.Transient = networkFailure(err)
	return e
}

// networkFailure reports errors of the network itself: refused, reset,
// unreachable, timed out, cut off. A host name that does not resolve and
// TLS certificate problems are configuration, not network.
func networkFailure(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// redact removes the SMTP password from err's text, should a server or a
// library ever echo it. The chain is dropped only in that case.
func (s *Sender) redact(err error) error {
	if err == nil || s.cfg.Password == "" || !strings.Contains(err.Error(), s.cfg.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), s.cfg.Password, "[redacted]"))
}

// Mailer is a Renderer and a Sender in one, for callers that compose and
// send (the restore flow's email step).
type Mailer struct {
	cfg Config
	r   *Renderer
	s   *Sender
}

// New validates cfg and parses the templates and translations once.
func New(cfg Config, templates, lang fs.FS, logger *slog.Logger) (*Mailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := NewRenderer(templates, lang)
	if err != nil {
		return nil, err
	}
	return &Mailer{cfg: cfg, r: r, s: NewSender(cfg, logger)}, nil
}

// Compose renders kind in the client's language (Renderer.Render).
func (m *Mailer) Compose(kind, language string, data BackupRestored) (Message, error) {
	return m.r.Render(kind, language, data)
}

// MessageID is the stable Message-ID of a job's email (Config.MessageID).
func (m *Mailer) MessageID(jobID int64, kind string) string { return m.cfg.MessageID(jobID, kind) }

// Send delivers msg (Sender.Send).
func (m *Mailer) Send(ctx context.Context, msg Message) error { return m.s.Send(ctx, msg) }
