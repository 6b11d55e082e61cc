// Package api is the panel contract of DESIGN §3 as one method table: it
// decodes each method's params, calls internal/service, shapes the result
// and turns every error into a *jsonrpc2.Error with the codes of the
// contract. The transports (stdio, unix socket, go-plugin) all serve this
// one table, so a method behaves the same whichever way it is called.
//
// Error codes: protocol faults use JSON-RPC's own (-32602 when params are
// not an object or a field has the wrong JSON type, -32601 for an unknown
// method, -32603 for a bug, logged under a ref the panel can quote);
// application errors use 1001–1009 with data.reason, one code per reason.
package api
