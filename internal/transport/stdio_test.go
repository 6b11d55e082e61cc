package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
)

// jsonLines parses every line of out; it fails on a line that is not JSON.
func jsonLines(t *testing.T, out string) []any {
	t.Helper()
	var got []any
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("output line is not JSON: %q", line)
		}
		got = append(got, v)
	}
	return got
}

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad want %q: %v", s, err)
	}
	return v
}

const good = `{"jsonrpc":"2.0","id":99,"method":"echo","params":{"ok":true}}`
const goodAnswer = `{"jsonrpc":"2.0","id":99,"result":{"ok":true}}`

func TestServeStdioAnswersEachLine(t *testing.T) {
	t.Parallel()
	oversize := `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"x":"` + strings.Repeat("a", MaxLineBytes) + `"}}`
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"good call returns result",
			good + "\n",
			[]string{goodAnswer}},
		{"string id echoed",
			`{"jsonrpc":"2.0","id":"abc","method":"echo","params":[1,2]}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":"abc","result":[1,2]}`}},
		{"negative, fractional and huge ids echoed exactly",
			`{"jsonrpc":"2.0","id":-5,"method":"echo","params":{}}` + "\n" +
				`{"jsonrpc":"2.0","id":1.5,"method":"echo","params":{}}` + "\n" +
				`{"jsonrpc":"2.0","id":18446744073709551616,"method":"echo","params":{}}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":-5,"result":{}}`, `{"jsonrpc":"2.0","id":1.5,"result":{}}`,
				`{"jsonrpc":"2.0","id":18446744073709551616,"result":{}}`}},
		{"null id is a request answered with id null",
			`{"jsonrpc":"2.0","id":null,"method":"echo","params":{}}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":null,"result":{}}`}},
		{"absent params reach the handler as nil",
			`{"jsonrpc":"2.0","id":1,"method":"echo"}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":1,"result":null}`}},
		{"garbage gets -32700 with id null and the next call is still answered",
			"this is not json\n" + good + "\n",
			[]string{`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`, goodAnswer}},
		{"truncated object gets -32700",
			`{"jsonrpc":"2.0","id":1,"method":` + "\n" + good + "\n",
			[]string{`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`, goodAnswer}},
		{"batch array gets -32600 with id null",
			`[` + good + `]` + "\n" + good + "\n",
			[]string{`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: batch requests are not supported"}}`, goodAnswer}},
		{"empty batch gets -32600",
			"[]\n",
			[]string{`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: batch requests are not supported"}}`}},
		{"scalar gets -32600",
			"42\n",
			[]string{`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: request must be a JSON object"}}`}},
		{"missing jsonrpc gets -32600 with the request id",
			`{"id":7,"method":"echo"}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"Invalid Request: jsonrpc must be \"2.0\""}}`}},
		{"jsonrpc 1.0 gets -32600",
			`{"jsonrpc":"1.0","id":7,"method":"echo"}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"Invalid Request: jsonrpc must be \"2.0\""}}`}},
		{"missing method gets -32600",
			`{"jsonrpc":"2.0","id":"m"}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":"m","error":{"code":-32600,"message":"Invalid Request: method must be a non-empty string"}}`}},
		{"non-string method gets -32600",
			`{"jsonrpc":"2.0","id":8,"method":12}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":8,"error":{"code":-32600,"message":"Invalid Request: method must be a non-empty string"}}`}},
		{"scalar params get -32600",
			`{"jsonrpc":"2.0","id":9,"method":"echo","params":"x"}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":9,"error":{"code":-32600,"message":"Invalid Request: params must be an object or an array"}}`}},
		{"null params get -32600",
			`{"jsonrpc":"2.0","id":9,"method":"echo","params":null}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":9,"error":{"code":-32600,"message":"Invalid Request: params must be an object or an array"}}`}},
		{"object id gets -32600 with id null",
			`{"jsonrpc":"2.0","id":{"a":1},"method":"echo"}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: id must be a string, number or null"}}`}},
		{"boolean id gets -32600 with id null",
			`{"jsonrpc":"2.0","id":true,"method":"echo"}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: id must be a string, number or null"}}`}},
		{"invalid notification is still answered",
			`{"jsonrpc":"2.0","method":5}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: method must be a non-empty string"}}`}},
		{"unknown method gets the handler's -32601",
			`{"jsonrpc":"2.0","id":3,"method":"nope","params":{}}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"Method not found: nope"}}`}},
		{"application error passes through with code, message and data",
			`{"jsonrpc":"2.0","id":4,"method":"fail","params":{}}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":4,"error":{"code":1001,"message":"backup not found","data":{"reason":"not_found","what":"backup"}}}`}},
		{"handler panic becomes -32603 and the stream goes on",
			`{"jsonrpc":"2.0","id":5,"method":"panic","params":{}}` + "\n" + good + "\n",
			[]string{`{"jsonrpc":"2.0","id":5,"error":{"code":-32603,"message":"Internal error"}}`, goodAnswer}},
		{"unmarshalable result becomes -32603",
			`{"jsonrpc":"2.0","id":6,"method":"badjson","params":{}}` + "\n",
			[]string{`{"jsonrpc":"2.0","id":6,"error":{"code":-32603,"message":"Internal error"}}`}},
		{"notification gets no answer",
			`{"jsonrpc":"2.0","method":"echo","params":{}}` + "\n" + good + "\n",
			[]string{goodAnswer}},
		{"notification of unknown method gets no answer",
			`{"jsonrpc":"2.0","method":"nope"}` + "\n" + good + "\n",
			[]string{goodAnswer}},
		{"oversize line gets -32600 and is skipped",
			oversize + "\n" + good + "\n",
			[]string{`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: line too long","data":{"limit":1048576}}}`, goodAnswer}},
		{"blank lines and CRLF are tolerated",
			"\n  \r\n" + good + "\r\n",
			[]string{goodAnswer}},
		{"last line without newline is served",
			good,
			[]string{goodAnswer}},
		{"answers come back in request order",
			strings.ReplaceAll(good, "99", "1") + "\n" + strings.ReplaceAll(good, "99", "2") + "\n" + strings.ReplaceAll(good, "99", "3") + "\n",
			[]string{strings.ReplaceAll(goodAnswer, "99", "1"), strings.ReplaceAll(goodAnswer, "99", "2"), strings.ReplaceAll(goodAnswer, "99", "3")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := ServeStdio(context.Background(), strings.NewReader(tt.in), &out, &fakeHandler{}, testLogger(t))
			if err != nil {
				t.Fatalf("ServeStdio: %v", err)
			}
			got := jsonLines(t, out.String())
			want := make([]any, 0, len(tt.want))
			for _, w := range tt.want {
				want = append(want, mustJSON(t, w))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("answers differ\n got: %s\nwant: %s", out.String(), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestServeStdioNotificationReachesHandler(t *testing.T) {
	t.Parallel()
	h := &fakeHandler{notified: make(chan string, 1)}
	var out bytes.Buffer
	in := `{"jsonrpc":"2.0","method":"notify","params":{"n":1}}` + "\n"
	if err := ServeStdio(context.Background(), strings.NewReader(in), &out, h, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if got := <-h.notified; got != `{"n":1}` {
		t.Errorf("handler got params %s", got)
	}
	if out.Len() != 0 {
		t.Errorf("notification was answered: %q", out.String())
	}
}

// pipeServer runs ServeStdio over io.Pipes, like a process's stdin/stdout.
type pipeServer struct {
	in   *io.PipeWriter
	out  *bufio.Reader
	done chan error
}

func startPipeServer(t *testing.T, ctx context.Context, h Handler) *pipeServer {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ps := &pipeServer{in: inW, out: bufio.NewReader(outR), done: make(chan error, 1)}
	go func() {
		err := ServeStdio(ctx, inR, outW, h, testLogger(t))
		outW.Close()
		ps.done <- err
	}()
	t.Cleanup(func() { inW.Close(); outR.Close() })
	return ps
}

func (ps *pipeServer) readLine(t *testing.T) string {
	t.Helper()
	line, err := ps.out.ReadString('\n')
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestServeStdioEOFEndsCleanlyAfterInFlightRequest(t *testing.T) {
	t.Parallel()
	h := &fakeHandler{release: make(chan struct{}), started: make(chan struct{}, 1)}
	ps := startPipeServer(t, context.Background(), h)

	// What PHP does: write one request, close stdin, read the answer.
	if _, err := io.WriteString(ps.in, `{"jsonrpc":"2.0","id":1,"method":"block","params":{}}`+"\n"); err != nil {
		t.Fatal(err)
	}
	<-h.started
	ps.in.Close()
	close(h.release)

	if got, want := mustJSON(t, ps.readLine(t)), mustJSON(t, `{"jsonrpc":"2.0","id":1,"result":{"released":true}}`); !reflect.DeepEqual(got, want) {
		t.Errorf("answer %v, want %v", got, want)
	}
	if err := <-ps.done; err != nil {
		t.Errorf("ServeStdio after EOF: %v", err)
	}
	if _, err := ps.out.ReadString('\n'); err != io.EOF {
		t.Errorf("more output after the answer: %v", err)
	}
}

func TestServeStdioCancelAnswersInFlightRequestThenReturns(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	h := &fakeHandler{release: make(chan struct{}), started: make(chan struct{}, 1)}
	ps := startPipeServer(t, ctx, h)

	if _, err := io.WriteString(ps.in, `{"jsonrpc":"2.0","id":"c","method":"block","params":{}}`+"\n"); err != nil {
		t.Fatal(err)
	}
	<-h.started
	cancel()

	want := mustJSON(t, `{"jsonrpc":"2.0","id":"c","error":{"code":1008,"message":"cancelled","data":{"reason":"unavailable"}}}`)
	if got := mustJSON(t, ps.readLine(t)); !reflect.DeepEqual(got, want) {
		t.Errorf("answer %v, want %v", got, want)
	}
	if err := <-ps.done; err != nil {
		t.Errorf("ServeStdio after cancel: %v", err)
	}
}

func TestServeStdioKeepsServingOnOnePipe(t *testing.T) {
	t.Parallel()
	ps := startPipeServer(t, context.Background(), &fakeHandler{})
	for _, tc := range []struct{ in, want string }{
		{"garbage\n", `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`},
		{good + "\n", goodAnswer},
		{`{"jsonrpc":"2.0","method":"echo"}` + "\n" + good + "\n", goodAnswer},
	} {
		if _, err := io.WriteString(ps.in, tc.in); err != nil {
			t.Fatal(err)
		}
		if got, want := mustJSON(t, ps.readLine(t)), mustJSON(t, tc.want); !reflect.DeepEqual(got, want) {
			t.Errorf("after %q: answer %v, want %v", tc.in, got, want)
		}
	}
	ps.in.Close()
	if err := <-ps.done; err != nil {
		t.Errorf("ServeStdio: %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestServeStdioReturnsWriteError(t *testing.T) {
	t.Parallel()
	in := good + "\n" + good + "\n"
	err := ServeStdio(context.Background(), strings.NewReader(in), failingWriter{}, &fakeHandler{}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "write response") {
		t.Errorf("ServeStdio = %v, want a write response error", err)
	}
}

// The API refuses text that is not UTF-8 (internal/api), which it can only
// do if the bytes reach it as sent: the stream must not repair them.
func TestServeStdioPassesParamsBytesThroughUnchanged(t *testing.T) {
	t.Parallel()
	params := "{\"note\":\"a\xffb\\ud800\xc3\"}"
	h := &fakeHandler{notified: make(chan string, 1)}
	in := `{"jsonrpc":"2.0","method":"notify","params":` + params + "}\n"
	var out bytes.Buffer
	if err := ServeStdio(context.Background(), strings.NewReader(in), &out, h, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-h.notified:
		if got != params {
			t.Errorf("handler got params %q, want %q", got, params)
		}
	default:
		t.Fatalf("the handler was not called; output %q", out.String())
	}
}
