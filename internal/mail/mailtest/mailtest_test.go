package mailtest_test

import (
	"net/smtp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/mail/mailtest"
)

// send delivers raw with the standard library's client, so mailtest is
// checked against a client that is not the one it tests.
func send(t *testing.T, srv *mailtest.Server, raw string) error {
	t.Helper()
	host, port := srv.Addr()
	return smtp.SendMail(host+":"+strconv.Itoa(port), nil, "from@example.test", []string{"to@example.test"},
		[]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
}

func TestServerDecodesNestedBase64AndQuotedPrintableParts(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	raw := `From: a@example.test
To: to@example.test
Subject: =?UTF-8?B?0J/RgNC40LLQtdGC?=
Message-ID: <m1@example.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: base64

Vk0gMTA0IG9uIHdlYjE=
--inner
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<p>VM 104 =C3=A4</p>
--inner--
--outer--
`
	if err := send(t, srv, raw); err != nil {
		t.Fatal(err)
	}
	r := srv.WaitFor(1, 10*time.Second)[0]
	if r.ParseErr != nil {
		t.Fatal(r.ParseErr)
	}
	if r.Subject != "Привет" || r.MessageID != "<m1@example.test>" || r.TextBody != "VM 104 on web1" ||
		strings.TrimSpace(r.HTMLBody) != "<p>VM 104 ä</p>" || r.From != "from@example.test" || len(r.To) != 1 {
		t.Errorf("decoded %+v", r)
	}
}

func TestFailNextRefusesOneDeliveryEach(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	srv.FailNext(451, "later")
	srv.FailNext(550, "never")
	msg := "Subject: x\n\nbody\n"
	for _, want := range []string{"451", "550"} {
		if err := send(t, srv, msg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %s", err, want)
		}
	}
	if err := send(t, srv, msg); err != nil {
		t.Fatalf("third delivery: %v", err)
	}
	if got := srv.WaitFor(1, 10*time.Second); len(got) != 1 {
		t.Errorf("%d messages kept, want only the accepted one", len(got))
	}
}
