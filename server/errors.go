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
	// read-only after a write failure, or it is closing.
	CodeUnavailable Code = 503
)

// Error is a command's failure: a Code and a message for the client.
type Error struct {
	Code Code
	Msg  string
	err  error // the cause, for errors.Is; may be nil
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Msg) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

// Is makes errors.Is(err, &Error{Code: c}) match any Error with code c.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.err == nil && t.Code == e.Code
}

// Sentinels for errors.Is: each matches every Error with its code.
var (
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
