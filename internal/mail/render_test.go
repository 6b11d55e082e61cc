package mail_test

import (
	"encoding/json"
	"html"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pvekeep/pvekeep/internal/mail"
	"github.com/pvekeep/pvekeep/lang"
	"github.com/pvekeep/pvekeep/templates"
)

var (
	backupAt  = time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)
	restoreAt = time.Date(2025, 3, 2, 10, 5, 0, 0, time.UTC)
)

func sampleData() mail.BackupRestored {
	return mail.BackupRestored{ClientName: "Jane Doe", Hostname: "web1.example.net", VMID: 104,
		BackupCreatedAt: backupAt, BackupNote: "before upgrade", RestoredAt: restoreAt}
}

func shippedRenderer(t *testing.T) *mail.Renderer {
	t.Helper()
	r, err := mail.NewRenderer(templates.Files, lang.Files)
	if err != nil {
		t.Fatalf("NewRenderer over the shipped files: %v", err)
	}
	return r
}

func TestRenderSpeaksTheClientsLanguage(t *testing.T) {
	t.Parallel()
	r := shippedRenderer(t)
	tests := []struct {
		language string
		subject  string
		text     []string // substrings of the plain-text part
		htmlLang string
	}{
		{"english", "Your server web1.example.net has been restored from a backup",
			[]string{"Hello Jane Doe,", "VM ID: 104", "Backup from: 1 Mar 2025, 02:00 UTC", "Backup note: before upgrade", "Restored at: 2 Mar 2025, 10:05 UTC"}, "en"},
		{"german", "Ihr Server web1.example.net wurde aus einer Sicherung wiederhergestellt",
			[]string{"Guten Tag Jane Doe,", "VM-ID: 104", "Sicherung vom: 01.03.2025, 02:00 UTC", "Snapshots"}, "de"},
		{"russian", "Ваш сервер web1.example.net восстановлен из резервной копии",
			[]string{"Здравствуйте, Jane Doe!", "ID виртуальной машины: 104", "Резервная копия от: 01.03.2025, 02:00 UTC"}, "ru"},
		{"German", "Ihr Server web1.example.net wurde aus einer Sicherung wiederhergestellt", []string{"VM-ID: 104"}, "de"},
		{"de", "Ihr Server web1.example.net wurde aus einer Sicherung wiederhergestellt", []string{"VM-ID: 104"}, "de"},
		{"de_DE", "Ihr Server web1.example.net wurde aus einer Sicherung wiederhergestellt", []string{"VM-ID: 104"}, "de"},
		{"ru-RU", "Ваш сервер web1.example.net восстановлен из резервной копии", []string{"Имя хоста: web1.example.net"}, "ru"},
		{"", "Your server web1.example.net has been restored from a backup", []string{"Hello Jane Doe,"}, "en"},
		{"klingon", "Your server web1.example.net has been restored from a backup", []string{"Hello Jane Doe,"}, "en"},
		{"french", "Your server web1.example.net has been restored from a backup", []string{"Hello Jane Doe,"}, "en"},
	}
	for _, tt := range tests {
		t.Run("language="+tt.language, func(t *testing.T) {
			t.Parallel()
			m, err := r.Render(mail.KindBackupRestored, tt.language, sampleData())
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tt.subject {
				t.Errorf("subject %q, want %q", m.Subject, tt.subject)
			}
			for _, s := range tt.text {
				if !strings.Contains(m.Text, s) {
					t.Errorf("text lacks %q:\n%s", s, m.Text)
				}
			}
			if !strings.Contains(m.HTML, `<html lang="`+tt.htmlLang+`">`) {
				t.Errorf("html does not declare lang %q", tt.htmlLang)
			}
			if !strings.Contains(m.HTML, "web1.example.net") || !strings.Contains(m.HTML, ">104<") {
				t.Error("html lacks hostname or VM id")
			}
			if m.ToName != "Jane Doe" || m.To != "" || m.MessageID != "" {
				t.Errorf("Render set To=%q ToName=%q MessageID=%q; want only ToName", m.To, m.ToName, m.MessageID)
			}
		})
	}
}

func TestRenderWithoutHostnameOrNameStillReadsNaturally(t *testing.T) {
	t.Parallel()
	r := shippedRenderer(t)
	tests := []struct{ language, subject, greeting string }{
		{"english", "Your server VM 104 has been restored from a backup", "Hello,"},
		{"german", "Ihr Server VM 104 wurde aus einer Sicherung wiederhergestellt", "Guten Tag,"},
		{"russian", "Ваш сервер ВМ 104 восстановлен из резервной копии", "Здравствуйте!"},
	}
	for _, tt := range tests {
		t.Run(tt.language, func(t *testing.T) {
			t.Parallel()
			d := sampleData()
			d.ClientName, d.Hostname, d.BackupNote = "", "", ""
			m, err := r.Render(mail.KindBackupRestored, tt.language, d)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tt.subject {
				t.Errorf("subject %q, want %q", m.Subject, tt.subject)
			}
			if !strings.Contains(m.Text, "\n"+tt.greeting+"\n") {
				t.Errorf("text lacks greeting line %q:\n%s", tt.greeting, m.Text)
			}
			if strings.Contains(m.Text, "{") || strings.Contains(m.HTML, "{") {
				t.Errorf("an unfilled placeholder is left:\n%s", m.Text)
			}
		})
	}
}

func TestRenderShowsDatesInTheGivenTimeZone(t *testing.T) {
	t.Parallel()
	r := shippedRenderer(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	d := sampleData()
	d.TimeZone = berlin
	m, err := r.Render(mail.KindBackupRestored, "german", d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Text, "Sicherung vom: 01.03.2025, 03:00 CET") {
		t.Errorf("backup date not in Berlin time:\n%s", m.Text)
	}
}

func TestRenderEscapesHostileClientText(t *testing.T) {
	t.Parallel()
	r := shippedRenderer(t)
	hostile := []struct{ name, note, hostname, client string }{
		{"script in note", `<script>alert("x")</script>`, "web1.example.net", "Jane"},
		{"markup in hostname", "ok", `evil"><img src=x onerror=alert(1)>`, "Jane"},
		{"markup in client name", "ok", "web1.example.net", `<a href="https://evil.example">Jane</a>`},
		{"attribute breakout in note", `" style="x" onmouseover="alert(1)`, "web1", "Jane"},
		{"placeholder in note is not expanded", "{vmid}{client_name}", "web1", "Jane"},
	}
	for _, tt := range hostile {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := sampleData()
			d.BackupNote, d.Hostname, d.ClientName = tt.note, tt.hostname, tt.client
			m, err := r.Render(mail.KindBackupRestored, "english", d)
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range []string{"<script", "<img", "<a href", `" onmouseover`, `"><`} {
				if strings.Contains(m.HTML, raw) {
					t.Errorf("html contains raw %q", raw)
				}
			}
			for _, v := range []string{tt.note, tt.hostname, tt.client} {
				if !strings.Contains(m.HTML, html.EscapeString(v)) && !strings.Contains(m.HTML, htmlTemplateEscaped(v)) {
					t.Errorf("html does not show %q escaped", v)
				}
				if !strings.Contains(m.Text, v) {
					t.Errorf("text does not show %q verbatim", v)
				}
			}
			if strings.Contains(m.Text, "Backup note: 104") {
				t.Error("a placeholder inside the note was expanded")
			}
		})
	}
}

// htmlTemplateEscaped is how html/template writes quotes (&#34;, &#39;),
// which differs from html.EscapeString (&#34; vs &quot;) only in spelling.
func htmlTemplateEscaped(s string) string {
	return strings.NewReplacer(`&`, "&amp;", `<`, "&lt;", `>`, "&gt;", `"`, "&#34;", `'`, "&#39;").Replace(s)
}

func TestRenderKeepsHeaderAndTextOnOneLine(t *testing.T) {
	t.Parallel()
	r := shippedRenderer(t)
	d := sampleData()
	d.Hostname = "web1\r\nBcc: victim@example.net"
	d.BackupNote = "line1\nline2"
	m, err := r.Render(mail.KindBackupRestored, "english", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("subject has a line break: %q", m.Subject)
	}
	if !strings.Contains(m.Text, "Backup note: line1 line2\n") {
		t.Errorf("note not folded onto one line:\n%s", m.Text)
	}
}

func TestRenderRefusesUnknownKind(t *testing.T) {
	t.Parallel()
	if _, err := shippedRenderer(t).Render("invoice_paid", "english", sampleData()); err == nil {
		t.Fatal("unknown kind rendered")
	}
}

// testLang is a lang directory with the given files (name → key → string).
func testLang(t *testing.T, files map[string]map[string]string) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, kv := range files {
		b, err := json.Marshal(kv)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: b}
	}
	return fsys
}

func shippedStrings(t *testing.T, code string) map[string]string {
	t.Helper()
	b, err := lang.Files.ReadFile(code + ".json")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRenderFallsBackToEnglishForAMissingKey(t *testing.T) {
	t.Parallel()
	de := shippedStrings(t, "de")
	delete(de, "email.backup_restored.subject")
	delete(de, "email.backup_restored.footer")
	de["email.backup_restored.warning"] = "" // empty counts as missing
	r, err := mail.NewRenderer(templates.Files, testLang(t, map[string]map[string]string{
		"en.json": shippedStrings(t, "en"), "de.json": de}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Render(mail.KindBackupRestored, "german", sampleData())
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Your server web1.example.net has been restored from a backup" {
		t.Errorf("subject %q, want the English one", m.Subject)
	}
	for _, want := range []string{"Guten Tag Jane Doe,", "You are receiving this message", "Please note:"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
}

func TestNewRendererFailsEarly(t *testing.T) {
	t.Parallel()
	noBody := shippedStrings(t, "en")
	delete(noBody, "email.backup_restored.details_vmid")
	tests := []struct {
		name string
		lang fstest.MapFS
	}{
		{"no English file", testLang(t, map[string]map[string]string{"de.json": shippedStrings(t, "de")})},
		{"key missing in English too", testLang(t, map[string]map[string]string{"en.json": noBody})},
		{"broken JSON", fstest.MapFS{"en.json": {Data: []byte(`{"a":`)}}},
		{"non-string value", fstest.MapFS{"en.json": {Data: []byte(`{"a": 1}`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := mail.NewRenderer(templates.Files, tt.lang); err == nil {
				t.Fatal("NewRenderer accepted it")
			}
		})
	}
	t.Run("text template without html twin", func(t *testing.T) {
		t.Parallel()
		tpl := fstest.MapFS{
			"email/backup_restored.html.tmpl": {Data: []byte(`x`)},
			"email/backup_restored.txt.tmpl":  {Data: []byte(`x`)},
			"email/orphan.txt.tmpl":           {Data: []byte(`x`)},
		}
		if _, err := mail.NewRenderer(tpl, lang.Files); err == nil {
			t.Fatal("NewRenderer accepted an orphan text template")
		}
	})
}

func TestShippedTranslationsHaveEveryEmailKey(t *testing.T) {
	t.Parallel()
	en := shippedStrings(t, "en")
	r := shippedRenderer(t)
	for _, code := range r.Languages() {
		if code == "en" {
			continue
		}
		other := shippedStrings(t, code)
		for k := range en {
			if strings.HasPrefix(k, "email.") && other[k] == "" {
				t.Errorf("%s.json lacks %s (English would be shown)", code, k)
			}
		}
	}
}

func TestLanguageResolvesWHMCSNamesAndCodes(t *testing.T) {
	t.Parallel()
	r := shippedRenderer(t)
	tests := map[string]string{
		"english": "en", "german": "de", "russian": "ru", "GERMAN": "de", " russian ": "ru",
		"de": "de", "DE": "de", "de-AT": "de", "ru_RU": "ru", "en_GB": "en",
		"": "en", "klingon": "en", "french": "en", "fr": "en", "../de": "en",
	}
	for in, want := range tests {
		if got := r.Language(in); got != want {
			t.Errorf("Language(%q) = %q, want %q", in, got, want)
		}
	}
}

// The welcome email in each shipped language: its own words (no English
// left, no placeholder unfilled), the address and user, never a password.
func TestRenderWelcomeEmailInEachLanguage(t *testing.T) {
	t.Parallel()
	r := shippedRenderer(t)
	data := sampleData()
	data.Username, data.Address = "ana", "203.0.113.10"
	english, err := r.Render(mail.KindVMCreated, "english", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ language, htmlLang, greeting string }{
		{"english", "en", "Hello Jane Doe,"},
		{"german", "de", "Jane Doe"},
		{"russian", "ru", "Jane Doe"},
	} {
		t.Run(tt.language, func(t *testing.T) {
			m, err := r.Render(mail.KindVMCreated, tt.language, data)
			if err != nil {
				t.Fatal(err)
			}
			if tt.language != "english" && (m.Subject == english.Subject || m.Text == english.Text) {
				t.Errorf("%s welcome email is English: %q", tt.language, m.Subject)
			}
			for _, want := range []string{"web1.example.net", "203.0.113.10", "ana", "104", tt.greeting} {
				if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
					t.Errorf("%s welcome email lacks %q:\n%s", tt.language, want, m.Text)
				}
			}
			if strings.ContainsAny(m.Subject+m.Text, "{}") {
				t.Errorf("%s welcome email has an unfilled placeholder:\n%s\n%s", tt.language, m.Subject, m.Text)
			}
			if !strings.Contains(m.HTML, `<html lang="`+tt.htmlLang+`">`) {
				t.Errorf("%s welcome email's html does not declare lang %q", tt.language, tt.htmlLang)
			}
		})
	}
}
