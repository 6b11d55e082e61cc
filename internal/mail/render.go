package mail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
)

// KindBackupRestored is the email sent after a successful restore
// (templates email/backup_restored.{html,txt}.tmpl, keys email.backup_restored.*).
const KindBackupRestored = "backup_restored"

// KindVMCreated is the welcome email of a new VM (templates
// email/vm_created.{html,txt}.tmpl, keys email.vm_created.*).
const KindVMCreated = "vm_created"

// fallbackLanguage is used for unknown languages and for every key a
// language lacks. Its file must exist.
const fallbackLanguage = "en"

// BackupRestored is what the "Backup restored" email says.
type BackupRestored struct {
	ClientName      string // "Jane Doe"; "" greets without a name
	Hostname        string // tblhosting.domain; "" names the VM by id
	VMID            int
	BackupCreatedAt time.Time
	BackupNote      string // the client's own note: shown escaped, never as HTML
	RestoredAt      time.Time
	// TimeZone the dates are shown in; nil means UTC.
	TimeZone *time.Location
	// Username and Address are the new VM's login user and IPv4 address
	// (the welcome email, vm_created; "" for DHCP). Its password is never
	// here: the email points to the client area, which shows it.
	Username string
	Address  string
}

// Message is one email ready to send. Render fills Subject, HTML, Text and
// ToName; the caller sets To and MessageID (Config.MessageID).
type Message struct {
	To, ToName string
	Subject    string
	HTML, Text string
	MessageID  string    // <id@domain>, required: the same for every attempt
	Date       time.Time // the Date header; zero means the time of sending
}

// Renderer renders email kinds in the client's language. It is safe for
// concurrent use.
type Renderer struct {
	html  *htmltemplate.Template
	text  *texttemplate.Template
	kinds map[string]bool
	langs map[string]map[string]string // code → key → string, each merged over English
}

// NewRenderer parses the email templates (email/<kind>.html.tmpl and
// email/<kind>.txt.tmpl in templates, see package templates) and the
// translations (<code>.json in lang, see package lang) once. It renders
// every kind in every language with sample data, so a key that is missing
// even in English, or a broken template, fails here and not at send time.
func NewRenderer(templates fs.FS, lang fs.FS) (*Renderer, error) {
	langs, err := loadLanguages(lang)
	if err != nil {
		return nil, err
	}
	r := &Renderer{langs: langs, kinds: map[string]bool{}}
	if r.html, err = htmltemplate.ParseFS(templates, "email/*.html.tmpl"); err != nil {
		return nil, fmt.Errorf("parse html email templates: %w", err)
	}
	if r.text, err = texttemplate.ParseFS(templates, "email/*.txt.tmpl"); err != nil {
		return nil, fmt.Errorf("parse text email templates: %w", err)
	}
	for _, t := range r.html.Templates() {
		if kind, ok := strings.CutSuffix(t.Name(), ".html.tmpl"); ok {
			if r.text.Lookup(kind+".txt.tmpl") == nil {
				return nil, fmt.Errorf("email template %s has no plain-text twin %s.txt.tmpl", t.Name(), kind)
			}
			r.kinds[kind] = true
		}
	}
	for _, t := range r.text.Templates() {
		if kind, ok := strings.CutSuffix(t.Name(), ".txt.tmpl"); ok && !r.kinds[kind] {
			return nil, fmt.Errorf("email template %s has no HTML twin %s.html.tmpl", t.Name(), kind)
		}
	}
	sample := BackupRestored{ClientName: "Sample", Hostname: "vm.example.net", VMID: 100,
		BackupCreatedAt: time.Unix(0, 0), BackupNote: "note", RestoredAt: time.Unix(60, 0),
		Username: "user", Address: "192.0.2.10"}
	for kind := range r.kinds {
		for code := range r.langs {
			if _, err := r.Render(kind, code, sample); err != nil {
				return nil, fmt.Errorf("check email %s in %s: %w", kind, code, err)
			}
		}
	}
	return r, nil
}

func loadLanguages(lang fs.FS) (map[string]map[string]string, error) {
	files, err := fs.Glob(lang, "*.json")
	if err != nil {
		return nil, fmt.Errorf("list translations: %w", err)
	}
	raw := map[string]map[string]string{}
	for _, f := range files {
		b, err := fs.ReadFile(lang, f)
		if err != nil {
			return nil, fmt.Errorf("read translation %s: %w", f, err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("read translation %s: %w", f, err)
		}
		raw[normalizeCode(strings.TrimSuffix(path.Base(f), ".json"))] = m
	}
	en, ok := raw[fallbackLanguage]
	if !ok {
		return nil, fmt.Errorf("read translations: %s.json is missing; it is the fallback for every language", fallbackLanguage)
	}
	langs := make(map[string]map[string]string, len(raw))
	for code, m := range raw {
		merged := make(map[string]string, len(en))
		for k, v := range en {
			merged[k] = v
		}
		for k, v := range m {
			if v != "" {
				merged[k] = v
			}
		}
		langs[code] = merged
	}
	return langs, nil
}

// whmcsLanguages maps the names WHMCS keeps in tblclients.language (its
// lang/*.php file names) to the codes of our lang/*.json files. A name
// whose file we do not ship falls back to English.
var whmcsLanguages = map[string]string{
	"arabic": "ar", "azerbaijani": "az", "bulgarian": "bg", "catalan": "ca", "chinese": "zh",
	"croatian": "hr", "czech": "cs", "danish": "da", "dutch": "nl", "english": "en",
	"estonian": "et", "farsi": "fa", "finnish": "fi", "french": "fr", "german": "de",
	"greek": "el", "hebrew": "he", "hungarian": "hu", "italian": "it", "japanese": "ja",
	"korean": "ko", "macedonian": "mk", "norwegian": "nb", "persian": "fa", "polish": "pl",
	"portuguese-br": "pt_br", "portuguese-pt": "pt", "romanian": "ro", "russian": "ru",
	"serbian": "sr", "slovak": "sk", "slovenian": "sl", "spanish": "es", "swedish": "sv",
	"turkish": "tr", "ukrainian": "uk", "ukranian": "uk", "vietnamese": "vi",
	"deutsch": "de", "русский": "ru",
}

func normalizeCode(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_")
}

// Language is the code of the translation used for a client whose
// tblclients.language is language: a WHMCS language name ("german"), or a
// code ("de", "de-DE", "de_DE"), case-insensitive. "" and anything we have
// no translation for give "en". WHMCS stores "" for "the panel's default";
// the caller resolves that first (store.DefaultClientLanguage) if it wants
// the panel default rather than English.
func (r *Renderer) Language(language string) string {
	s := strings.ToLower(strings.TrimSpace(language))
	if code, ok := whmcsLanguages[s]; ok {
		s = code
	}
	s = normalizeCode(s)
	if _, ok := r.langs[s]; ok {
		return s
	}
	if base, _, ok := strings.Cut(s, "_"); ok {
		if _, ok := r.langs[base]; ok {
			return base
		}
	}
	return fallbackLanguage
}

// Languages lists the codes of the loaded translations.
func (r *Renderer) Languages() []string {
	codes := make([]string, 0, len(r.langs))
	for c := range r.langs {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	return codes
}

// dateLayouts are how dates read in each language; others use ISO order.
var dateLayouts = map[string]string{
	"en": "2 Jan 2006, 15:04 MST",
	"de": "02.01.2006, 15:04 MST",
	"ru": "02.01.2006, 15:04 MST",
}

const defaultDateLayout = "2006-01-02 15:04 MST"

// view is what the templates see. Every string is plain text; html/template
// escapes it for the HTML part.
type view struct {
	Lang       string
	Subject    string
	Greeting   string
	Body       string
	VMID       int
	Hostname   string
	BackupDate string
	RestoredAt string
	Note       string
	Username   string
	Address    string

	strings map[string]string
	repl    *strings.Replacer
}

// T returns the translation of key with its {placeholders} filled in. A key
// missing in English too is an error, which stops the template.
func (v *view) T(key string) (string, error) {
	s, ok := v.strings[key]
	if !ok {
		return "", fmt.Errorf("translation key %q is missing (also in %s.json)", key, fallbackLanguage)
	}
	return v.repl.Replace(s), nil
}

// Render renders kind for a client whose tblclients.language is language
// (see Language for the fallback rules).
func (r *Renderer) Render(kind string, language string, data BackupRestored) (Message, error) {
	if !r.kinds[kind] {
		return Message{}, fmt.Errorf("render email: unknown kind %q", kind)
	}
	code := r.Language(language)
	tz := data.TimeZone
	if tz == nil {
		tz = time.UTC
	}
	layout, ok := dateLayouts[code]
	if !ok {
		layout = defaultDateLayout
	}
	v := &view{
		Lang:       strings.ReplaceAll(code, "_", "-"),
		VMID:       data.VMID,
		Hostname:   oneLine(data.Hostname),
		BackupDate: data.BackupCreatedAt.In(tz).Format(layout),
		RestoredAt: data.RestoredAt.In(tz).Format(layout),
		Note:       oneLine(data.BackupNote),
		Username:   oneLine(data.Username),
		Address:    oneLine(data.Address),
		strings:    r.langs[code],
	}
	vmid := strconv.Itoa(data.VMID)
	server := v.Hostname
	if server == "" {
		// A strings.Replacer on its own: the label's {vmid} is ours.
		server = strings.NewReplacer("{vmid}", vmid).Replace(v.strings["email.server_vmid"])
		if server == "" {
			server = vmid
		}
	}
	// One pass: a value that itself contains "{vmid}" (a hostile note,
	// say) is not expanded again.
	v.repl = strings.NewReplacer(
		"{vmid}", vmid,
		"{hostname}", v.Hostname,
		"{server}", server,
		"{backup_date}", v.BackupDate,
		"{restored_at}", v.RestoredAt,
		"{client_name}", oneLine(data.ClientName),
		"{note}", v.Note,
		"{username}", v.Username,
		"{address}", v.Address,
	)
	var err error
	prefix := "email." + kind + "."
	if v.Subject, err = v.T(prefix + "subject"); err != nil {
		return Message{}, fmt.Errorf("render email %s in %s: %w", kind, code, err)
	}
	v.Subject = oneLine(v.Subject)
	greeting := prefix + "greeting"
	if strings.TrimSpace(data.ClientName) == "" {
		greeting += "_noname"
	}
	if v.Greeting, err = v.T(greeting); err != nil {
		return Message{}, fmt.Errorf("render email %s in %s: %w", kind, code, err)
	}
	if v.Body, err = v.T(prefix + "body"); err != nil {
		return Message{}, fmt.Errorf("render email %s in %s: %w", kind, code, err)
	}

	var h, t bytes.Buffer
	if err := r.html.ExecuteTemplate(&h, kind+".html.tmpl", v); err != nil {
		return Message{}, fmt.Errorf("render email %s in %s (html): %w", kind, code, unwrapExec(err))
	}
	if err := r.text.ExecuteTemplate(&t, kind+".txt.tmpl", v); err != nil {
		return Message{}, fmt.Errorf("render email %s in %s (text): %w", kind, code, unwrapExec(err))
	}
	return Message{
		ToName:  oneLine(data.ClientName),
		Subject: v.Subject,
		HTML:    h.String(),
		Text:    strings.TrimLeft(t.String(), "\n"),
	}, nil
}

// unwrapExec keeps a template's error readable: the cause of a failed call
// to T is what matters, not the template position around it.
func unwrapExec(err error) error {
	var ee texttemplate.ExecError
	if errors.As(err, &ee) && ee.Err != nil {
		return fmt.Errorf("%w (%s)", ee.Err, ee.Name)
	}
	return err
}

// oneLine turns control characters (line breaks included) into spaces
// and trims: what the client or the panel typed stays on one line, so it
// can neither break the plain-text layout nor a header.
func oneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s))
}
