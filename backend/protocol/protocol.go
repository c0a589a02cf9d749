// Package protocol defines Ripple's wire protocol v1: the JSON messages a
// client and the gateway exchange on /ws, the row-change payload the
// Postgres trigger sends, and the stable error codes.
//
// The Go types here are the single source of truth. tygo generates
// client-ts/src/generated/protocol.ts from this package, and CI fails when
// the generated file drifts, so every exported type is part of the contract.
package protocol

// Subprotocol is the WebSocket subprotocol a client offers to speak v1.
// A client that offers no subprotocol speaks the seed protocol instead.
const Subprotocol = "ripple.v1"

// Op is a row operation: INSERT, UPDATE or DELETE.
type Op string

// The row operations a NotificationPayload carries.
const (
	OpInsert Op = "INSERT"
	OpUpdate Op = "UPDATE"
	OpDelete Op = "DELETE"
)

// Row is one table row as JSON: column name to value.
type Row = map[string]any

// NotificationPayload is one row change as the trigger sends it with
// pg_notify. New holds the row for INSERT and UPDATE; Old holds the row for
// DELETE and, for UPDATE, the primary key plus the previous values of the
// columns that changed. Schema, Old on UPDATE, Truncated and Key are Ripple's
// additions; payloads from the seed's trigger lack them.
type NotificationPayload struct {
	Op     Op     `json:"op"`
	Table  string `json:"table"`
	Schema string `json:"schema,omitempty"`
	New    Row    `json:"new,omitempty"`
	Old    Row    `json:"old,omitempty"`
	// Truncated is true when the row did not fit in a notification (8000
	// bytes); Key then holds the primary key and the gateway hydrates the row.
	// A change still truncated when it reaches a client could not be hydrated.
	Truncated bool `json:"truncated,omitempty"`
	Key       Row  `json:"key,omitempty"`
}

// FilterOp is a comparison a Filter applies to one column.
type FilterOp string

// The filter operators of protocol v1. Unknown operators are a bad_filter error.
const (
	FilterEq  FilterOp = "eq"
	FilterNeq FilterOp = "neq"
	FilterIn  FilterOp = "in"
)

// Filter restricts a subscription to rows whose Column compares to Value.
// For the "in" operator Value is an array.
type Filter struct {
	Column string   `json:"column"`
	Op     FilterOp `json:"op"`
	Value  any      `json:"value" tstype:"unknown"`
}

// Position is a point in a channel's change stream: the gateway process
// epoch and the last seq a client applied.
type Position struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Client → server messages.

// AuthMessage (re)authenticates the connection with a token.
type AuthMessage struct {
	Type  string `json:"type" tstype:"'auth'"`
	Token string `json:"token"`
}

// SubscribeMessage starts a subscription named Sub (chosen by the client) on
// Channel, optionally filtered, optionally resuming from a Position.
type SubscribeMessage struct {
	Type    string    `json:"type" tstype:"'subscribe'"`
	Sub     string    `json:"sub"`
	Channel string    `json:"channel"`
	Filter  *Filter   `json:"filter,omitempty"`
	Resume  *Position `json:"resume,omitempty"`
}

// UnsubscribeMessage stops the subscription Sub.
type UnsubscribeMessage struct {
	Type string `json:"type" tstype:"'unsubscribe'"`
	Sub  string `json:"sub"`
}

// PingMessage is the client's app-level heartbeat; the server answers with
// a PongMessage carrying the same Ref.
type PingMessage struct {
	Type string `json:"type" tstype:"'ping'"`
	Ref  string `json:"ref,omitempty"`
}

// Server → client messages.

// SubscribedMessage acknowledges a subscription. Seq is the channel's
// current seq; the subscription receives changes after it (or a replay
// from the resume position first).
type SubscribedMessage struct {
	Type    string `json:"type" tstype:"'subscribed'"`
	Sub     string `json:"sub"`
	Channel string `json:"channel"`
	Epoch   string `json:"epoch"`
	Seq     uint64 `json:"seq"`
}

// UnsubscribedMessage acknowledges an unsubscribe.
type UnsubscribedMessage struct {
	Type string `json:"type" tstype:"'unsubscribed'"`
	Sub  string `json:"sub"`
}

// ChangeMessage delivers one row change to subscription Sub. Seq increases
// by one per change on the channel.
type ChangeMessage struct {
	Type   string              `json:"type" tstype:"'change'"`
	Sub    string              `json:"sub"`
	Seq    uint64              `json:"seq"`
	Change NotificationPayload `json:"change"`
}

// ResyncMessage tells the client that changes may have been missed on
// subscription Sub: it must refetch the data the subscription covers.
type ResyncMessage struct {
	Type   string       `json:"type" tstype:"'resync'"`
	Sub    string       `json:"sub"`
	Reason ResyncReason `json:"reason"`
}

// PongMessage answers a PingMessage.
type PongMessage struct {
	Type string `json:"type" tstype:"'pong'"`
	Ref  string `json:"ref,omitempty"`
}

// ErrorMessage reports a failed request. The connection stays open unless
// a close frame follows.
type ErrorMessage struct {
	Type    string    `json:"type" tstype:"'error'"`
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	Sub     string    `json:"sub,omitempty"`
}

// ResyncReason says why a ResyncMessage was sent.
type ResyncReason string

// The reasons for a resync.
const (
	// ResyncEpoch: the resume position is from another gateway process.
	ResyncEpoch ResyncReason = "epoch_changed"
	// ResyncTooOld: the ring buffer no longer holds the changes after the resume position.
	ResyncTooOld ResyncReason = "position_unavailable"
	// ResyncGap: the listener lost its Postgres connection; notifications may be lost.
	ResyncGap ResyncReason = "listener_gap"
	// ResyncSlowConsumer: the connection's send queue overflowed and changes were dropped.
	ResyncSlowConsumer ResyncReason = "slow_consumer"
)

// ErrorCode is a stable machine-readable error code.
type ErrorCode string

// The error codes of protocol v1.
const (
	ErrBadMessage           ErrorCode = "bad_message"
	ErrUnknownType          ErrorCode = "unknown_type"
	ErrUnknownChannel       ErrorCode = "unknown_channel"
	ErrBadFilter            ErrorCode = "bad_filter"
	ErrDuplicateSub         ErrorCode = "duplicate_sub"
	ErrUnknownSub           ErrorCode = "unknown_sub"
	ErrTooManySubscriptions ErrorCode = "too_many_subscriptions"
	ErrUnauthorized         ErrorCode = "unauthorized"
	ErrForbidden            ErrorCode = "forbidden"
	ErrTokenExpired         ErrorCode = "token_expired"
	ErrMessageTooLarge      ErrorCode = "message_too_large"
	ErrRateLimited          ErrorCode = "rate_limited"
)

// WebSocket close codes the gateway uses.
const (
	CloseGoingAway    = 1001 // the server is shutting down
	CloseUnauthorized = 4001 // no valid token
	ClosePolicy       = 4008 // message too large, rate limit, or a client too slow to read
)
