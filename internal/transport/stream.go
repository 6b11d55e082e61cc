package transport

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/jsonrpc2"
)

// MaxLineBytes is the longest request line served, not counting the '\n'.
// Longer lines are answered with -32600 and skipped without being buffered.
const MaxLineBytes = 1 << 20

var nullID = json.RawMessage("null")

// protoError is a framing-level fault answered by the stream itself,
// before jsonrpc2 sees the line.
type protoError struct {
	id   json.RawMessage
	code int64
	msg  string
	data any
}

// lineStream is a jsonrpc2.ObjectStream speaking newline-delimited JSON.
//
// jsonrpc2.Conn closes the connection on any ReadObject error and cannot
// answer with a null id, so the stream validates each line itself: bad lines
// are answered here and reading goes on; only valid requests reach the Conn.
// Request ids are swapped for internal sequence numbers on the way in and
// swapped back on the way out, so every id the client sends (string, any
// number, null) is echoed exactly, which jsonrpc2.ID alone cannot do.
type lineStream struct {
	r       *bufio.Reader
	w       io.Writer
	closer  io.Closer // may be nil
	maxLine int
	logger  *slog.Logger

	wmu  sync.Mutex
	werr error // first write error; reading stops after it

	idmu   sync.Mutex
	seq    uint64
	ids    map[uint64]json.RawMessage
	params map[uint64]json.RawMessage // raw params by request sequence number

	// deadlines, when set (a socket), bounds each request line's read to
	// readTimeout and each answer's write to writeTimeout.
	deadlines    deadliner
	readTimeout  time.Duration
	writeTimeout time.Duration

	pendingErr error // error to return on the next ReadObject (EOF after a last unterminated line)
	stopping   atomic.Bool
	closeOnce  sync.Once

	emu     sync.Mutex
	readErr error // why reading stopped, if not EOF
}

// deadliner is the part of net.Conn that bounds reads and writes.
type deadliner interface {
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

func newLineStream(r io.Reader, w io.Writer, closer io.Closer, maxLine int, logger *slog.Logger) *lineStream {
	return &lineStream{
		r:       bufio.NewReaderSize(r, 64<<10),
		w:       w,
		closer:  closer,
		maxLine: maxLine,
		logger:  logger,
		ids:     make(map[uint64]json.RawMessage),
		params:  make(map[uint64]json.RawMessage),
	}
}

// ReadObject implements jsonrpc2.ObjectStream. It returns only valid requests
// and notifications, answering every bad line itself.
func (s *lineStream) ReadObject(v any) error {
	for {
		if s.stopping.Load() {
			return io.EOF
		}
		if err := s.writeErr(); err != nil {
			return err
		}
		if s.pendingErr != nil {
			return s.fail(s.pendingErr)
		}
		if s.deadlines != nil {
			if err := s.deadlines.SetReadDeadline(time.Now().Add(s.readTimeout)); err != nil {
				return s.fail(fmt.Errorf("set read deadline: %w", err))
			}
		}
		line, tooLong, err := s.readLine()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Nothing read in time is served: a partial line is not a
			// request, and the client may be trickling it on purpose.
			if len(line) > 0 || tooLong {
				s.logger.Warn("request line not completed in time; connection closed", "read_timeout", s.readTimeout)
			} else {
				s.logger.Debug("connection idle; closed", "read_timeout", s.readTimeout)
			}
			return io.EOF
		}
		if err != nil {
			s.pendingErr = err
		}
		if tooLong {
			s.logger.Warn("request line too long; skipped", "limit", s.maxLine)
			if werr := s.writeError(&protoError{id: nullID, code: jsonrpc2.CodeInvalidRequest,
				msg: "Invalid Request: line too long", data: map[string]any{"limit": s.maxLine}}); werr != nil {
				return werr
			}
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		canonical, perr := s.decode(line)
		if perr != nil {
			s.logger.Debug("bad request line", "code", perr.code, "error", perr.msg)
			if werr := s.writeError(perr); werr != nil {
				return werr
			}
			continue
		}
		return json.Unmarshal(canonical, v)
	}
}

func (s *lineStream) fail(err error) error {
	if !errors.Is(err, io.EOF) {
		s.setErr(fmt.Errorf("read request: %w", err))
	}
	return err
}

// readLine reads up to and including the next '\n'. A line longer than
// maxLine is drained chunk by chunk and reported as tooLong with no bytes.
// The line's buffer never grows past maxLine plus its line ending, so a
// connection holds at most that (and the reader's buffer) between lines.
func (s *lineStream) readLine() (line []byte, tooLong bool, err error) {
	for {
		chunk, err := s.r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(bytes.TrimRight(chunk, "\r\n")) > s.maxLine {
				tooLong, line = true, nil
			} else {
				line = appendBounded(line, chunk, s.maxLine+2)
			}
		}
		switch {
		case err == nil:
			return line, tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return line, tooLong, err
		}
	}
}

// appendBounded appends chunk to line, growing line's buffer as append
// would but never beyond limit bytes of capacity (unless line+chunk is
// longer, which the caller rules out).
func appendBounded(line, chunk []byte, limit int) []byte {
	need := len(line) + len(chunk)
	if need <= cap(line) {
		return append(line, chunk...)
	}
	newCap := min(max(2*cap(line), need, 512), max(limit, need))
	grown := make([]byte, len(line), newCap)
	copy(grown, line)
	return append(grown, chunk...)
}

// decode validates one JSON-RPC request line and returns the request in the
// form jsonrpc2 parses, with its id replaced by an internal sequence number.
func (s *lineStream) decode(line []byte) ([]byte, *protoError) {
	if !json.Valid(line) {
		return nil, &protoError{id: nullID, code: jsonrpc2.CodeParseError, msg: "Parse error"}
	}
	switch line[0] {
	case '{':
	case '[':
		return nil, invalid(nullID, "batch requests are not supported")
	default:
		return nil, invalid(nullID, "request must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return nil, &protoError{id: nullID, code: jsonrpc2.CodeParseError, msg: "Parse error"}
	}

	rawID, hasID := fields["id"]
	respID := nullID
	if hasID {
		switch c := rawID[0]; {
		case c == '"', c == '-', c >= '0' && c <= '9', bytes.Equal(rawID, nullID):
			respID = rawID
		default:
			return nil, invalid(nullID, "id must be a string, number or null")
		}
	}

	var version string
	if raw, ok := fields["jsonrpc"]; !ok || json.Unmarshal(raw, &version) != nil || version != "2.0" {
		return nil, invalid(respID, `jsonrpc must be "2.0"`)
	}
	var method string
	if raw, ok := fields["method"]; !ok || json.Unmarshal(raw, &method) != nil || method == "" {
		return nil, invalid(respID, "method must be a non-empty string")
	}
	params, hasParams := fields["params"]
	if hasParams && params[0] != '{' && params[0] != '[' {
		return nil, invalid(respID, "params must be an object or an array")
	}

	// jsonrpc2 decodes params into interface{} values and encodes them
	// again, which turns bytes that are not UTF-8 into U+FFFD before the
	// Handler could refuse them; the raw params are kept here, under a
	// number carried in "meta", and handed to the Handler as sent.
	req := struct {
		JSONRPC string          `json:"jsonrpc"`
		Method  string          `json:"method"`
		Params  json.RawMessage `json:"params,omitempty"`
		Meta    *uint64         `json:"meta,omitempty"`
		ID      *uint64         `json:"id,omitempty"`
	}{JSONRPC: "2.0", Method: method, Params: params}
	if hasParams {
		n := s.rememberParams(params)
		req.Meta = &n
	}
	if hasID {
		n := s.rememberID(respID)
		req.ID = &n
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, &protoError{id: respID, code: jsonrpc2.CodeInternalError, msg: "Internal error"}
	}
	return b, nil
}

func invalid(id json.RawMessage, why string) *protoError {
	return &protoError{id: id, code: jsonrpc2.CodeInvalidRequest, msg: "Invalid Request: " + why}
}

func (s *lineStream) rememberID(id json.RawMessage) uint64 {
	s.idmu.Lock()
	defer s.idmu.Unlock()
	s.seq++
	s.ids[s.seq] = append(json.RawMessage(nil), id...)
	return s.seq
}

func (s *lineStream) rememberParams(p json.RawMessage) uint64 {
	s.idmu.Lock()
	defer s.idmu.Unlock()
	s.seq++
	s.params[s.seq] = append(json.RawMessage(nil), p...)
	return s.seq
}

// takeParams returns the raw params of the request whose "meta" is meta.
func (s *lineStream) takeParams(meta *json.RawMessage) (json.RawMessage, bool) {
	if meta == nil {
		return nil, false
	}
	var n uint64
	if json.Unmarshal(*meta, &n) != nil {
		return nil, false
	}
	s.idmu.Lock()
	defer s.idmu.Unlock()
	p, ok := s.params[n]
	delete(s.params, n)
	return p, ok
}

func (s *lineStream) takeID(n uint64) (json.RawMessage, bool) {
	s.idmu.Lock()
	defer s.idmu.Unlock()
	id, ok := s.ids[n]
	delete(s.ids, n)
	return id, ok
}

// response is what goes on the wire; the raw id is the client's own.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// WriteObject implements jsonrpc2.ObjectStream. It puts the client's id back
// on a response and writes it as one line.
func (s *lineStream) WriteObject(obj any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method *string         `json:"method"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("decode own response: %w", err)
	}
	if m.Method != nil { // a request of our own; never sent today
		return s.writeLine(b)
	}
	resp := response{JSONRPC: "2.0", ID: nullID, Result: m.Result, Error: m.Error}
	var n uint64
	if json.Unmarshal(m.ID, &n) == nil {
		if id, ok := s.takeID(n); ok {
			resp.ID = id
		}
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	return s.writeLine(out)
}

func (s *lineStream) writeError(pe *protoError) error {
	e := &jsonrpc2.Error{Code: pe.code, Message: pe.msg}
	if pe.data != nil {
		e.SetError(pe.data)
	}
	eb, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode error response: %w", err)
	}
	out, err := json.Marshal(response{JSONRPC: "2.0", ID: pe.id, Error: eb})
	if err != nil {
		return fmt.Errorf("encode error response: %w", err)
	}
	return s.writeLine(out)
}

// writeLine writes b and '\n' in one Write, so concurrent writers never
// interleave within a line.
func (s *lineStream) writeLine(b []byte) error {
	line := make([]byte, 0, len(b)+1)
	line = append(append(line, b...), '\n')
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.werr != nil {
		return s.werr
	}
	if s.deadlines != nil {
		if err := s.deadlines.SetWriteDeadline(time.Now().Add(s.writeTimeout)); err != nil {
			s.werr = fmt.Errorf("set write deadline: %w", err)
			s.setErr(s.werr)
			return s.werr
		}
	}
	if _, err := s.w.Write(line); err != nil {
		s.werr = fmt.Errorf("write response: %w", err)
		s.setErr(s.werr)
		return s.werr
	}
	return nil
}

func (s *lineStream) writeErr() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.werr
}

// stop makes the next ReadObject report EOF.
func (s *lineStream) stop() { s.stopping.Store(true) }

// err is why reading ended, or nil for a clean EOF or stop.
func (s *lineStream) err() error {
	s.emu.Lock()
	defer s.emu.Unlock()
	return s.readErr
}

func (s *lineStream) setErr(err error) {
	s.emu.Lock()
	defer s.emu.Unlock()
	if s.readErr == nil {
		s.readErr = err
	}
}

// Close implements jsonrpc2.ObjectStream.
func (s *lineStream) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.closer != nil {
			err = s.closer.Close()
		}
	})
	return err
}
