package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MaxSubLength is the longest subscription id a client may choose.
const MaxSubLength = 128

// Error is a request the gateway refuses, with a stable Code and a
// human-readable Message. Sub names the subscription it concerns, if any.
type Error struct {
	Code    ErrorCode
	Message string
	Sub     string
}

// Error implements the error interface.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// envelope is the union of every client message's fields, decoded in one pass.
type envelope struct {
	Type    string          `json:"type"`
	Token   string          `json:"token"`
	Sub     string          `json:"sub"`
	Channel string          `json:"channel"`
	Filter  json.RawMessage `json:"filter"`
	Resume  *Position       `json:"resume"`
	Ref     string          `json:"ref"`
}

// DecodeClient decodes one v1 client frame into *AuthMessage,
// *SubscribeMessage, *UnsubscribeMessage or *PingMessage. Frames longer than
// maxSize bytes are refused with ErrMessageTooLarge; anything else that is
// not a valid message returns an *Error with the documented code.
func DecodeClient(data []byte, maxSize int) (any, *Error) {
	if err := checkSize(data, maxSize); err != nil {
		return nil, err
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, Errorf(ErrBadMessage, "message is not a JSON object: %v", err)
	}
	switch env.Type {
	case "auth":
		if env.Token == "" {
			return nil, Errorf(ErrBadMessage, "auth needs a token")
		}
		return &AuthMessage{Type: env.Type, Token: env.Token}, nil
	case "subscribe":
		if err := checkSub(env.Sub); err != nil {
			return nil, err
		}
		if env.Channel == "" {
			return nil, &Error{Code: ErrBadMessage, Message: "subscribe needs a channel", Sub: env.Sub}
		}
		msg := &SubscribeMessage{Type: env.Type, Sub: env.Sub, Channel: env.Channel, Resume: env.Resume}
		if len(env.Filter) > 0 && !bytes.Equal(env.Filter, []byte("null")) {
			f, err := decodeFilter(env.Filter)
			if err != nil {
				err.Sub = env.Sub
				return nil, err
			}
			msg.Filter = f
		}
		if msg.Resume != nil && msg.Resume.Epoch == "" {
			return nil, &Error{Code: ErrBadMessage, Message: "resume needs an epoch", Sub: env.Sub}
		}
		return msg, nil
	case "unsubscribe":
		if err := checkSub(env.Sub); err != nil {
			return nil, err
		}
		return &UnsubscribeMessage{Type: env.Type, Sub: env.Sub}, nil
	case "ping":
		return &PingMessage{Type: env.Type, Ref: env.Ref}, nil
	case "":
		return nil, Errorf(ErrBadMessage, "message has no type")
	default:
		return nil, Errorf(ErrUnknownType, "unknown message type %q", env.Type)
	}
}

// checkSize refuses a frame longer than maxSize bytes (0: no limit).
func checkSize(data []byte, maxSize int) *Error {
	if maxSize > 0 && len(data) > maxSize {
		return Errorf(ErrMessageTooLarge, "message of %d bytes exceeds the limit of %d", len(data), maxSize)
	}
	return nil
}

func checkSub(sub string) *Error {
	if sub == "" {
		return Errorf(ErrBadMessage, "message needs a sub")
	}
	if len(sub) > MaxSubLength {
		return Errorf(ErrBadMessage, "sub is longer than %d bytes", MaxSubLength)
	}
	return nil
}

func decodeFilter(raw json.RawMessage) (*Filter, *Error) {
	var f Filter
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil {
		return nil, Errorf(ErrBadFilter, "filter is not an object {column, op, value}: %v", err)
	}
	if f.Column == "" {
		return nil, Errorf(ErrBadFilter, "filter needs a column")
	}
	switch f.Op {
	case FilterEq, FilterNeq:
		switch f.Value.(type) {
		case []any, map[string]any:
			return nil, Errorf(ErrBadFilter, "filter op %q needs a scalar value", f.Op)
		}
	case FilterIn:
		if _, ok := f.Value.([]any); !ok {
			return nil, Errorf(ErrBadFilter, "filter op \"in\" needs an array value")
		}
	default:
		return nil, Errorf(ErrBadFilter, "unknown filter op %q (want eq, neq or in)", f.Op)
	}
	return &f, nil
}

// SeedMessage is a message of the seed protocol, spoken by clients that
// offer no subprotocol: {"type":"subscribe"|"unsubscribe","channel":…}.
type SeedMessage struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
}

// DecodeSeed decodes one seed-protocol frame.
func DecodeSeed(data []byte, maxSize int) (*SeedMessage, *Error) {
	if err := checkSize(data, maxSize); err != nil {
		return nil, err
	}
	var m SeedMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, Errorf(ErrBadMessage, "message is not a JSON object: %v", err)
	}
	if m.Type != "subscribe" && m.Type != "unsubscribe" {
		return nil, Errorf(ErrUnknownType, "unknown message type %q", m.Type)
	}
	if m.Channel == "" {
		return nil, Errorf(ErrBadMessage, "%s needs a channel", m.Type)
	}
	return &m, nil
}
