package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/rpc"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-plugin"
	"github.com/sourcegraph/jsonrpc2"
)

// Handshake is shared by the plugin and every Go host. Bump ProtocolVersion
// when CallArgs/CallReply change incompatibly.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PVEKEEP_PLUGIN",
	MagicCookieValue: "8f1c2a6e-pvekeep-jsonrpc-v1",
}

// pluginName is the name the host dispenses.
const pluginName = "pvekeep"

// IsPluginLaunch reports whether a go-plugin host started this process (the
// handshake cookie is in the environment).
func IsPluginLaunch() bool {
	return os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue
}

// ServePlugin serves h as a go-plugin plugin over net/rpc and returns when
// the host tells the plugin to quit. Call it before anything is written to
// stdout: go-plugin's handshake line must be the first stdout line. logger
// should already write to stderr (file descriptor 2).
func ServePlugin(h Handler, logger *slog.Logger) {
	logger = orDiscard(logger).With("transport", "plugin")
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{pluginName: &rpcPlugin{h: h, logger: logger}},
		Logger:          newHCLogger(logger, "go-plugin"),
	})
}

// CallArgs is the net/rpc request of Plugin.Call.
type CallArgs struct {
	ID     uint64 // host-chosen, for Plugin.Cancel
	Method string
	Params []byte // JSON; nil when there are none
}

// CallReply is the net/rpc answer of Plugin.Call: Result (JSON) or Error.
type CallReply struct {
	Result []byte
	Error  *RPCError
}

// RPCError is an application (or protocol) error answered by the Handler,
// with the same code, message and data a JSON-RPC client would see.
type RPCError struct {
	Code    int64
	Message string
	Data    json.RawMessage // nil when absent
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message)
}

// Reason returns data.reason ("" when absent): the stable application error
// string of DESIGN §3.
func (e *RPCError) Reason() string {
	var d struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(e.Data, &d)
	return d.Reason
}

// rpcPlugin is the go-plugin Plugin for both sides.
type rpcPlugin struct {
	h      Handler // plugin side only
	logger *slog.Logger
}

func (p *rpcPlugin) Server(*plugin.MuxBroker) (any, error) {
	return &rpcServer{h: p.h, logger: p.logger, cancels: map[uint64]context.CancelFunc{}}, nil
}

func (p *rpcPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (any, error) {
	return c, nil
}

// rpcServer is registered by go-plugin under the name "Plugin".
type rpcServer struct {
	h      Handler
	logger *slog.Logger

	mu      sync.Mutex
	cancels map[uint64]context.CancelFunc
}

// Call runs one method. Application errors travel in the reply; a net/rpc
// error would keep only the message.
func (s *rpcServer) Call(args CallArgs, reply *CallReply) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.cancels[args.ID] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.cancels, args.ID)
		s.mu.Unlock()
		cancel()
	}()

	d := &dispatcher{h: s.h, ctx: ctx, logger: s.logger}
	result, rpcErr := d.call(args.Method, args.Params)
	if rpcErr != nil {
		reply.Error = fromJSONRPCError(rpcErr)
		return nil
	}
	b, err := json.Marshal(result)
	if err != nil {
		s.logger.Error("encode result", "method", args.Method, "error", err)
		reply.Error = &RPCError{Code: jsonrpc2.CodeInternalError, Message: "Internal error"}
		return nil
	}
	reply.Result = b
	return nil
}

// Cancel cancels the context of the call with that id, if it still runs.
func (s *rpcServer) Cancel(id uint64, _ *struct{}) error {
	s.mu.Lock()
	cancel := s.cancels[id]
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return nil
}

func fromJSONRPCError(e *jsonrpc2.Error) *RPCError {
	out := &RPCError{Code: e.Code, Message: e.Message}
	if e.Data != nil {
		out.Data = append(json.RawMessage(nil), *e.Data...)
	}
	return out
}

// PluginClient is a Go host's handle on a pvekeep plugin process.
type PluginClient struct {
	client *plugin.Client
	rpc    *rpc.Client
	seq    atomic.Uint64
}

// NewPluginClient starts cmd as a go-plugin plugin (net/rpc) and connects to
// it. cmd must not have been started; its environment is passed on plus the
// handshake cookie. The plugin's stderr is logged through logger. Close
// stops the process.
func NewPluginClient(cmd *exec.Cmd, logger *slog.Logger) (*PluginClient, error) {
	logger = orDiscard(logger).With("transport", "plugin-host")
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          plugin.PluginSet{pluginName: &rpcPlugin{logger: logger}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC},
		Logger:           newHCLogger(logger, "plugin"),
	})
	proto, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("start plugin %s: %w", cmd.Path, err)
	}
	raw, err := proto.Dispense(pluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("dispense plugin %s: %w", cmd.Path, err)
	}
	rc, ok := raw.(*rpc.Client)
	if !ok {
		client.Kill()
		return nil, fmt.Errorf("dispense plugin %s: unexpected %T", cmd.Path, raw)
	}
	return &PluginClient{client: client, rpc: rc}, nil
}

// Call invokes method with params (marshalled to JSON; a json.RawMessage or
// []byte is sent as is, nil as no params). An error answered by the handler
// is an *RPCError; anything else is a transport failure. When ctx ends first
// the plugin is asked to cancel the call and ctx.Err() is returned.
func (c *PluginClient) Call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	args := CallArgs{ID: c.seq.Add(1), Method: method}
	switch p := params.(type) {
	case nil:
	case json.RawMessage:
		args.Params = p
	case []byte:
		args.Params = p
	default:
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode params of %s: %w", method, err)
		}
		args.Params = b
	}
	var reply CallReply
	call := c.rpc.Go("Plugin.Call", args, &reply, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-ctx.Done():
		_ = c.rpc.Call("Plugin.Cancel", args.ID, &struct{}{})
		return nil, ctx.Err()
	}
	if call.Error != nil {
		return nil, fmt.Errorf("call %s: %w", method, call.Error)
	}
	if reply.Error != nil {
		return nil, reply.Error
	}
	return reply.Result, nil
}

// Close asks the plugin to quit and waits for it, killing it if it lingers.
func (c *PluginClient) Close() error {
	c.client.Kill()
	return nil
}

// AsRPCError finds an *RPCError in err's chain.
func AsRPCError(err error) (*RPCError, bool) {
	var e *RPCError
	ok := errors.As(err, &e)
	return e, ok
}
