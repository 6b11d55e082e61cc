package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// codes is the single reason → code table of DESIGN §3.
var codes = map[pvekeep.Reason]int64{
	pvekeep.ReasonNotFound:      1001,
	pvekeep.ReasonForbidden:     1002,
	pvekeep.ReasonLocked:        1003,
	pvekeep.ReasonQuotaExceeded: 1004,
	pvekeep.ReasonInvalidState:  1005,
	pvekeep.ReasonUpstream:      1006,
	pvekeep.ReasonInvalidInput:  1007,
	pvekeep.ReasonUnavailable:   1008,
	pvekeep.ReasonCooldown:      1009,
}

// Code returns the JSON-RPC code of a reason (0 if it has none).
func Code(r pvekeep.Reason) int64 { return codes[r] }

// toRPCError classifies err for the panel. Application errors keep their
// safe message and data; anything else is a bug or an unclassified fault:
// the panel gets a ref to quote and the log gets the details.
func toRPCError(logger *slog.Logger, method string, err error) *jsonrpc2.Error {
	if e, ok := pvekeep.AsError(err); ok {
		if code, ok := codes[e.Reason]; ok {
			data := map[string]any{"reason": string(e.Reason)}
			for k, v := range e.Data {
				data[k] = v
			}
			if e.Reason == pvekeep.ReasonUnavailable || e.Reason == pvekeep.ReasonUpstream {
				ref := newRef()
				data["ref"] = ref
				logger.Warn("call failed", "method", method, "ref", ref, "reason", e.Reason, "err", err)
			}
			return rpcError(code, e.Message, data)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		ref := newRef()
		logger.Warn("call timed out", "method", method, "ref", ref, "err", err)
		return rpcError(codes[pvekeep.ReasonUnavailable], "the request timed out; try again",
			map[string]any{"reason": string(pvekeep.ReasonUnavailable), "retryable": true, "ref": ref})
	}
	ref := newRef()
	logger.Error("internal error", "method", method, "ref", ref, "err", err)
	return rpcError(jsonrpc2.CodeInternalError, "internal error", map[string]any{"ref": ref})
}

func rpcError(code int64, msg string, data any) *jsonrpc2.Error {
	e := &jsonrpc2.Error{Code: code, Message: msg}
	if data != nil {
		raw, err := json.Marshal(data)
		if err == nil {
			m := json.RawMessage(raw)
			e.Data = &m
		}
	}
	return e
}

// invalidParams answers params that cannot be decoded at all.
func invalidParams(msg, field string) *jsonrpc2.Error {
	d := map[string]any{}
	if field != "" {
		d["field"] = field
	}
	return rpcError(jsonrpc2.CodeInvalidParams, msg, d)
}

func newRef() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
