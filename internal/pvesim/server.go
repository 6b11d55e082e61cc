package pvesim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const apiPrefix = "/api2/json"

// apiError is an error answer as pve-http-server writes it: the first line
// of message becomes the HTTP reason phrase, the body is
// {"data":null,"message":…[,"errors":{…}]}.
type apiError struct {
	status  int
	message string
	errors  map[string]string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s", e.status, strings.TrimSpace(e.message))
}

// errParams is raise_param_exc: 400 "Parameter verification failed."
func errParams(errs map[string]string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: "Parameter verification failed.\n", errors: errs}
}

func errParam(key, msg string) *apiError { return errParams(map[string]string{key: msg}) }

// errDie is a plain Perl die inside an API handler: HTTP 500.
func errDie(format string, args ...any) *apiError {
	return &apiError{status: http.StatusInternalServerError, message: fmt.Sprintf(format, args...)}
}

// request is one parsed, authenticated API call.
type request struct {
	ctx      context.Context
	method   string
	path     string // below /api2/json
	template string // the schema path it matched
	params   map[string]any
	user     string // "root@pam", or the token id "root@pam!pvekeep"
	token    bool
}

func (r *request) str(key string) string {
	v, ok := r.params[key]
	if !ok || v == nil {
		return ""
	}
	return scalarString(v)
}

func (r *request) has(key string) bool { return r.params[key] != nil }

// int reads an integer parameter (validated already); def when absent.
func (r *request) int(key string, def int) int {
	if !r.has(key) {
		return def
	}
	n, err := strconv.Atoi(strings.TrimPrefix(r.str(key), "+"))
	if err != nil {
		return def
	}
	return n
}

// bool reads a boolean parameter (validated: 0/1 or JSON bool).
func (r *request) bool(key string, def bool) bool {
	if !r.has(key) {
		return def
	}
	return r.str(key) == "1"
}

type handlerFunc func(r *request) (any, error)

type route struct {
	method   string
	template string
	segs     []string
	schema   *methodSchema
	handler  handlerFunc
}

// buildRoutes wires every served endpoint to its handler and its schema.
func (s *Sim) buildRoutes() []route {
	table := []struct {
		method, template string
		h                handlerFunc
	}{
		{"GET", "/version", s.handleVersion},
		{"POST", "/access/ticket", s.handleTicket},
		{"GET", "/access/permissions", s.handlePermissions},
		{"GET", "/cluster/resources", s.handleClusterResources},
		{"GET", "/cluster/status", s.handleClusterStatus},
		{"GET", "/cluster/nextid", s.handleNextID},
		{"GET", "/nodes", s.handleNodes},
		{"GET", "/nodes/{node}/status", s.handleNodeStatus},
		{"GET", "/nodes/{node}/qemu", s.handleVMList},
		{"POST", "/nodes/{node}/qemu", s.handleCreateVM},
		{"GET", "/nodes/{node}/qemu/{vmid}/pending", s.handleVMPending},
		{"DELETE", "/nodes/{node}/qemu/{vmid}", s.handleDestroy},
		{"POST", "/nodes/{node}/qemu/{vmid}/clone", s.handleClone},
		{"GET", "/nodes/{node}/qemu/{vmid}/snapshot", s.handleSnapshotList},
		{"POST", "/nodes/{node}/qemu/{vmid}/snapshot", s.handleSnapshotCreate},
		{"GET", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}", s.handleSnapshotCmdIndex},
		{"DELETE", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}", s.handleSnapshotDelete},
		{"POST", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback", s.handleSnapshotRollback},
		{"GET", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config", s.handleSnapshotConfigGet},
		{"PUT", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config", s.handleSnapshotConfigPut},
		{"PUT", "/nodes/{node}/qemu/{vmid}/resize", s.handleResize},
		{"GET", "/nodes/{node}/network", s.handleNetworkList},
		{"GET", "/nodes/{node}/qemu/{vmid}/status/current", s.handleVMStatus},
		{"POST", "/nodes/{node}/qemu/{vmid}/status/start", s.handleVMStart},
		{"POST", "/nodes/{node}/qemu/{vmid}/status/stop", s.handleVMStop},
		{"POST", "/nodes/{node}/qemu/{vmid}/status/shutdown", s.handleVMShutdown},
		{"GET", "/nodes/{node}/qemu/{vmid}/config", s.handleVMConfigGet},
		{"PUT", "/nodes/{node}/qemu/{vmid}/config", s.handleVMConfigSync},
		{"POST", "/nodes/{node}/qemu/{vmid}/config", s.handleVMConfigAsync},
		{"POST", "/nodes/{node}/vzdump", s.handleVzdump},
		{"GET", "/nodes/{node}/vzdump/extractconfig", s.handleExtractConfig},
		{"GET", "/nodes/{node}/storage", s.handleStorageList},
		{"GET", "/nodes/{node}/storage/{storage}/status", s.handleStorageStatus},
		{"GET", "/nodes/{node}/storage/{storage}/content", s.handleContentList},
		{"GET", "/nodes/{node}/storage/{storage}/content/{volume}", s.handleVolumeGet},
		{"PUT", "/nodes/{node}/storage/{storage}/content/{volume}", s.handleVolumePut},
		{"DELETE", "/nodes/{node}/storage/{storage}/content/{volume}", s.handleVolumeDelete},
		{"GET", "/nodes/{node}/tasks", s.handleTaskList},
		{"GET", "/nodes/{node}/tasks/{upid}/status", s.handleTaskStatus},
		{"GET", "/nodes/{node}/tasks/{upid}/log", s.handleTaskLog},
	}
	routes := make([]route, 0, len(table))
	for _, t := range table {
		ms := s.schema.paths[t.template][t.method]
		if ms == nil {
			panic(fmt.Sprintf("pvesim: no schema for %s %s", t.method, t.template))
		}
		routes = append(routes, route{
			method:   t.method,
			template: t.template,
			segs:     splitPath(t.template),
			schema:   ms,
			handler:  t.h,
		})
	}
	return routes
}

func splitPath(p string) []string {
	var out []string
	for _, seg := range strings.Split(p, "/") {
		if seg != "" {
			out = append(out, seg)
		}
	}
	return out
}

// match finds the route for a path. Like PVE, {volume} (a subclass with an
// empty fragment delimiter) swallows the rest of the path, slashes included.
func (s *Sim) match(method, path string) (*route, map[string]string, bool) {
	segs := splitPath(path)
	pathKnown := false
	for i := range s.routes {
		rt := &s.routes[i]
		vars, ok := matchSegs(rt.segs, segs)
		if !ok {
			continue
		}
		pathKnown = true
		if rt.method == method {
			return rt, vars, true
		}
	}
	return nil, nil, pathKnown
}

func matchSegs(tmpl, segs []string) (map[string]string, bool) {
	vars := map[string]string{}
	for i, t := range tmpl {
		if i >= len(segs) {
			return nil, false
		}
		if strings.HasPrefix(t, "{") {
			name := strings.Trim(t, "{}")
			if name == "volume" && i == len(tmpl)-1 {
				vars[name] = strings.Join(segs[i:], "/")
				return vars, true
			}
			vars[name] = segs[i]
			continue
		}
		if t != segs[i] {
			return nil, false
		}
	}
	return vars, len(segs) == len(tmpl)
}

// ServeHTTP implements http.Handler: /_sim/… is the control surface,
// /api2/json/… the simulated PVE API.
func (s *Sim) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	path := hr.URL.Path
	if path == "/_sim" || strings.HasPrefix(path, "/_sim/") {
		s.serveControl(w, hr)
		return
	}
	if !strings.HasPrefix(path, apiPrefix+"/") {
		writeResponse(w, http.StatusNotImplemented, "no such uri", nil)
		return
	}
	rel := strings.TrimPrefix(path, apiPrefix)
	start := time.Now()
	status := s.serveAPI(w, hr, rel)
	s.log.Debug("api", "method", hr.Method, "path", rel, "status", status, "took", time.Since(start))
}

func (s *Sim) serveAPI(w http.ResponseWriter, hr *http.Request, rel string) int {
	ctx := hr.Context()
	if f := s.takeHTTPFault(hr.Method, rel); f != nil {
		if f.Detached {
			// pveproxy forwards the request and pvedaemon finishes it,
			// whether or not the client is still listening.
			ctx = context.WithoutCancel(ctx)
			hr = hr.WithContext(ctx)
		}
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return 0
			}
		}
		if f.Status != 0 {
			msg := f.Message
			if msg == "" {
				msg = http.StatusText(f.Status)
			}
			return s.writeError(w, &apiError{status: f.Status, message: msg})
		}
	}

	user, isToken, authErr := s.authenticate(hr, rel)
	if authErr != nil {
		// pve-http-server delays every unauthorized answer by 3 seconds
		_ = s.sleep(ctx, 3*time.Second)
		if authErr.status == http.StatusUnauthorized && authErr.errors == nil && !strings.HasPrefix(rel, "/access/ticket") {
			// the auth handler's die has no body, only the status line
			writeResponse(w, http.StatusUnauthorized, firstLine(authErr.message), nil)
			return http.StatusUnauthorized
		}
		return s.writeError(w, authErr)
	}

	params, perr := readParams(hr)
	if perr != nil {
		return s.writeError(w, perr)
	}
	rt, vars, _ := s.match(hr.Method, rel)
	if rt == nil {
		return s.writeError(w, &apiError{status: http.StatusNotImplemented,
			message: fmt.Sprintf("Method '%s %s' not implemented", hr.Method, rel)})
	}
	for k, v := range vars {
		if old, ok := params[k]; ok && old != nil && scalarString(old) != v {
			return s.writeError(w, errParam(k, "duplicate parameter (already defined in URI) with conflicting values!"))
		}
		params[k] = v
	}
	if isToken && rt.schema.AllowToken != nil && *rt.schema.AllowToken == 0 {
		return s.writeError(w, &apiError{status: http.StatusForbidden,
			message: fmt.Sprintf("Permission check failed (URI '%s' not available with API token, need proper ticket.)\n", rel)})
	}
	if node, ok := vars["node"]; ok && !s.hasNode(node) {
		return s.writeError(w, errDie("hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known\n", node, node))
	}
	if errs := rt.schema.Parameters.validateParams(params); len(errs) > 0 {
		return s.writeError(w, errParams(errs))
	}
	req := &request{ctx: ctx, method: hr.Method, path: rel, template: rt.template, params: params, user: user, token: isToken}
	data, err := rt.handler(req)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = errDie("%v", err)
		}
		if ae.status == http.StatusUnauthorized {
			_ = s.sleep(ctx, 3*time.Second)
		}
		return s.writeError(w, ae)
	}
	out := map[string]any{"data": data}
	if wt, ok := data.(withTotal); ok {
		out = map[string]any{"data": wt.data, "total": wt.total}
	}
	body, err := json.Marshal(out)
	if err != nil {
		return s.writeError(w, errDie("encode response: %v", err))
	}
	writeResponse(w, http.StatusOK, "OK", body)
	return http.StatusOK
}

func (s *Sim) writeError(w http.ResponseWriter, e *apiError) int {
	out := map[string]any{"data": nil, "message": e.message}
	if len(e.errors) > 0 {
		out["errors"] = e.errors
	}
	body, _ := json.Marshal(out)
	writeResponse(w, e.status, firstLine(e.message), body)
	return e.status
}

func firstLine(msg string) string {
	line, _, _ := strings.Cut(msg, "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "Unknown Error"
	}
	return line
}

// writeResponse writes a response with PVE's headers. Go's server cannot
// set a reason phrase, but PVE puts its error text there (go-proxmox reports
// a 500 as just "500 <reason>"), so non-standard reasons are written on the
// hijacked connection, which PVE closes after errors anyway.
func writeResponse(w http.ResponseWriter, status int, reason string, body []byte) {
	now := time.Now().UTC().Format(http.TimeFormat)
	hdr := http.Header{}
	hdr.Set("Date", now)
	hdr.Set("Server", "pve-api-daemon/3.0")
	hdr.Set("Cache-Control", "max-age=0")
	hdr.Set("Pragma", "no-cache")
	hdr.Set("Expires", now)
	if body != nil {
		hdr.Set("Content-Type", "application/json;charset=UTF-8")
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	if status >= 400 {
		hdr.Set("Connection", "close")
	}
	if hj, ok := w.(http.Hijacker); ok && reason != http.StatusText(status) {
		conn, buf, err := hj.Hijack()
		if err == nil {
			defer conn.Close()
			fmt.Fprintf(buf, "HTTP/1.1 %03d %s\r\n", status, reason)
			hdr.Set("Connection", "close")
			_ = hdr.Write(buf)
			buf.WriteString("\r\n")
			buf.Write(body)
			_ = buf.Flush()
			return
		}
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

const maxBody = 1 << 20

// readParams is extract_params: the body (JSON or urlencoded) for PUT and
// POST, the query string on top. Repeated keys are joined with NUL, as
// decode_urlencoded does.
func readParams(hr *http.Request) (map[string]any, *apiError) {
	params := map[string]any{}
	body, err := io.ReadAll(io.LimitReader(hr.Body, maxBody+1))
	if err != nil {
		return nil, errDie("read request body: %v", err)
	}
	if len(body) > maxBody {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, message: "request too large"}
	}
	if len(body) > 0 {
		if hr.Method != http.MethodPut && hr.Method != http.MethodPost {
			return nil, &apiError{status: http.StatusNotImplemented, message: fmt.Sprintf("Unexpected content for method '%s'", hr.Method)}
		}
		ct, _, _ := mime.ParseMediaType(hr.Header.Get("Content-Type"))
		if ct == "application/json" {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				return nil, &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("malformed JSON string: %v", err)}
			}
			for k, v := range obj {
				params[k] = v
			}
		} else {
			vals, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("unable to parse body: %v", err)}
			}
			mergeValues(params, vals)
		}
	}
	mergeValues(params, hr.URL.Query())
	return params, nil
}

func mergeValues(params map[string]any, vals url.Values) {
	for k, vs := range vals {
		params[k] = strings.Join(vs, "\x00")
	}
}

// hasNode reports whether node is a cluster member.
func (s *Sim) hasNode(node string) bool {
	for _, n := range s.nodes {
		if n == node {
			return true
		}
	}
	return false
}
