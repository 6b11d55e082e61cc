// Package transport carries pvekeep's single JSON-RPC method table (a
// Handler) over the wire. It is the only package that imports
// github.com/sourcegraph/jsonrpc2 and github.com/hashicorp/go-plugin.
//
// Three ways in, one Handler behind them:
//
//   - ServeStdio: JSON-RPC 2.0 on stdin/stdout, the default. The panel's PHP
//     proc_open()s the binary, writes one request line, closes stdin and reads
//     the answer line. Logs go to stderr only.
//   - ServeUnix: the same framing on a unix socket, many connections at once,
//     for panels that keep one warm process. UnixConfig bounds them: at most
//     MaxConns (64) served at once, the rest waiting unread in the kernel's
//     queue; each request line must arrive whole within ReadTimeout (60 s),
//     else the connection is closed without an answer (idle clients, slow
//     loris); each answer must be taken within WriteTimeout (30 s).
//   - ServePlugin / NewPluginClient: hashicorp/go-plugin over net/rpc, one
//     RPC "Plugin.Call(method, params) → result | RPCError", so Go hosts and
//     the project's own tests reuse the same handlers.
//
// # Framing (stdio and unix socket)
//
// One JSON value per line, '\n'-terminated, each way; a trailing '\r' and
// surrounding blanks are ignored, blank lines are skipped, and a final line
// without '\n' before EOF is still served. Every response carries
// "jsonrpc":"2.0" and echoes the request id byte for byte (strings, any
// number, or null). What happens to a line:
//
//   - not JSON → -32700 Parse error, id null; the stream goes on.
//   - longer than MaxLineBytes (1 MiB) → -32600 Invalid Request, id null,
//     data {"limit": N}; the line is discarded as it is read (never buffered
//     whole) and the stream goes on.
//   - a JSON array (batch) → -32600, id null: batches are not supported; the
//     panel sends one call per line.
//   - any other non-object, or an object whose id is not a string, number or
//     null → -32600, id null.
//   - jsonrpc not exactly "2.0", method missing/empty/not a string, params
//     present but not an object or array → -32600 with the request's id
//     (an invalid request is answered even when it has no id).
//   - a valid request → the Handler; its *jsonrpc2.Error is sent unchanged
//     (unknown methods are the Handler's -32601). A panicking handler or an
//     unmarshalable result becomes -32603 Internal error.
//   - a valid notification (no "id" member) → the Handler, and no answer.
//
// Requests on one stream are handled one at a time, in order, so answers come
// back in request order and a response is always one complete line;
// concurrency comes from many connections (ServeUnix) or many processes
// (stdio). EOF on the input ends serving cleanly once the request in flight
// has been answered. Cancelling ctx stops reading, lets the request in flight
// finish (its ctx is cancelled too) and returns.
//
// # go-plugin mode
//
// go-plugin prints its handshake line on stdout and then replaces os.Stdout
// and os.Stderr with pipes. Loggers built on the original *os.File before
// ServePlugin keep writing to file descriptor 2, which the host reads, so logs
// still go to stderr; nothing may be written to stdout before ServePlugin.
package transport
