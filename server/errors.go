package server

import (
	"errors"
	"fmt"

	"github.com/cidstore/cidstore/store"
)

// Code classifies a failed command. The values are the HTTP status codes
// the Python CIDStore used in its "error_code" field; other protocols map
// them onto their own error forms.
type Code int

// The codes a command can fail with.
const (
	// CodeRedirect: this server is a replica that is not the leader of
	// its cluster, and the command must go to the leader: a write, or a
	// read on a server whose reads are linearizable. Error.Leader holds
	// the leader's addresses; each protocol names the one its clients
	// use (the ZeroMQ reply's "leader" field). Nothing was done.
	CodeRedirect Code = 307
	// CodeBadRequest: the request cannot be understood or is invalid
	// (malformed msgpack, not a map, unknown command, bad CID, missing or
	// mistyped field).
	CodeBadRequest Code = 400
	// CodeUnauthorized: a control request without a valid bearer token.
	CodeUnauthorized Code = 401
	// CodeForbidden: a control request that no token can authorise, such
	// as changing the configuration when no token is configured.
	CodeForbidden Code = 403
	// CodeTooLarge: a message over the size limit, or a batch over
	// store.MaxBatch.
	CodeTooLarge Code = 413
	// CodeInternal: the store failed in a way the request did not cause.
	CodeInternal Code = 500
	// CodeUnavailable: the store cannot take the request now: it turned
	// read-only after a write failure, or it is closing; or a replica
	// knows no leader (an election is under way) or cannot tell whether
	// a write took effect (its leader was lost meanwhile: retrying is
	// safe, every write is idempotent).
	CodeUnavailable Code = 503
)

// Error is a command's failure: a Code and a message for the client.
type Error struct {
	Code Code
	Msg  string
	// Leader holds, with CodeRedirect, the client addresses the leader
	// published, by endpoint name: "zmq", "router", "push", "pub",
	// "resp", "http". An endpoint the leader does not serve is absent.
	Leader map[string]string
	err    error // the cause, for errors.Is; may be nil
}

// NewError returns an Error with the given code and message; cause, if
// not nil, is what errors.Is and errors.As see through it. A Backend
// returns one to choose the code its failure gets.
func NewError(code Code, msg string, cause error) *Error {
	return &Error{Code: code, Msg: msg, err: cause}
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Msg) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

// Is makes errors.Is(err, &Error{Code: c}) match any Error with code c.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.err == nil && t.Leader == nil && t.Code == e.Code
}

// Sentinels for errors.Is: each matches every Error with its code.
var (
	ErrRedirect    = &Error{Code: CodeRedirect}
	ErrBadRequest  = &Error{Code: CodeBadRequest}
	ErrTooLarge    = &Error{Code: CodeTooLarge}
	ErrInternal    = &Error{Code: CodeInternal}
	ErrUnavailable = &Error{Code: CodeUnavailable}
)

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// asError classifies err: an *Error stays what it is, the store's
// sentinels get their codes, and anything else is internal.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	code := CodeInternal
	switch {
	case errors.Is(err, store.ErrInvalidCID), errors.Is(err, store.ErrInvalidOp), errors.Is(err, store.ErrInMemory):
		code = CodeBadRequest
	case errors.Is(err, store.ErrBatchTooLarge):
		code = CodeTooLarge
	case errors.Is(err, store.ErrReadOnly), errors.Is(err, store.ErrClosed):
		code = CodeUnavailable
	}
	return &Error{Code: code, Msg: err.Error(), err: err}
}
