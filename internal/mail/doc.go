// Package mail renders and sends the emails the plugin sends itself — today
// the one "Backup restored" message at the end of a restore (DESIGN §5,
// step 9). It is the only importer of github.com/wneessen/go-mail.
//
// Rendering: a Renderer parses templates/email/*.tmpl (html/template for the
// HTML part, text/template for the plain-text part) and the lang/*.json
// translations once, and renders one kind in the client's language, chosen
// from WHMCS's tblclients.language ("german") or a code ("de", "de_DE").
// Unknown languages fall back to English, and so does every key a
// translation lacks; a key missing in English too is an error found when
// the Renderer is built, not when a client is waiting for the email.
//
// Sending: a Sender delivers one Message over SMTP with STARTTLS (default),
// implicit TLS or — for a local relay — no TLS at all. Every Message carries
// a Message-ID the caller derives from the job (Config.MessageID), so a
// retried send that did reach the server is recognisable as a duplicate.
// Failures are classified: errors.Is(err, ErrTransient) for what may work on
// a later tick (4xx replies, connection refused or broken, timeouts, a
// cancelled context); everything else (5xx replies, TLS or configuration
// problems) is permanent. The SMTP password never appears in an error or a
// log line.
//
// Package mailtest holds an in-process SMTP server for tests.
package mail
