package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/backend/auth"
	"github.com/ripple-rt/ripple/backend/hub"
	"github.com/ripple-rt/ripple/backend/protocol"
)

// conn is one client connection. Its subscriptions are touched only by
// gws's read goroutine (OnMessage and OnClose run there, one at a time),
// or by the goroutine it waits on to answer a message; its send queue
// (queue.go) by anyone, under its own lock.
type conn struct {
	noStorage
	srv    *Server
	seed   bool
	socket *gws.Conn
	// ip is the client's address, counted against MaxConnsPerIP.
	ip string
	// subs holds the subscriptions. A connection holds few (at most
	// MaxSubscriptions, mostly one or two), so a slice searched by key
	// takes less memory than a map.
	subs []sub
	// identity is the holder of the connection's current token; nil
	// before a valid one arrived (or without authentication).
	identity *auth.Identity
	// deadlineSlot is the connection's bucket in the server's deadlines
	// and deadlineKind what passes then, guarded by their lock; 0 when it
	// has none.
	deadlineSlot int64
	deadlineKind deadlineKind
	// bucket and strikes rate-limit subscribe, unsubscribe and auth.
	bucket  tokenBucket
	strikes int
	// awaitingPong is set by each server ping and cleared by any frame
	// from the client.
	awaitingPong atomic.Bool
	// pingFn is c.ping, made once so that a heartbeat allocates no closure.
	pingFn func()

	sendQueue
}

// sub is one of a connection's subscriptions and the grant it was made under.
type sub struct {
	s     *hub.Subscription
	grant *auth.Grant
}

// key is the client's name of the subscription: its sub id (v1), or its
// channel (seed protocol).
func (cs *sub) key() string {
	if cs.s.Seed() {
		return cs.s.Channel()
	}
	return cs.s.ID()
}

// find returns the index in subs of the subscription named key, or -1.
func (c *conn) find(key string) int {
	for i := range c.subs {
		if c.subs[i].key() == key {
			return i
		}
	}
	return -1
}

func (c *conn) init(socket *gws.Conn, ip string) {
	c.socket = socket
	c.ip = ip
	c.pingFn = c.ping
	c.sendQueue.init(c)
}

// logger returns the server's logger with the client's address. Logs are
// rare, so it is not kept per connection: idle connections stay small.
func (c *conn) logger() *slog.Logger {
	return c.srv.log.With("remote", c.socket.RemoteAddr().String())
}

// debug logs at debug level with the client's address, and builds nothing
// when debug logs are off: connections open and close often, and the read
// loop's stack stays small.
func (c *conn) debug(msg string, args ...any) {
	if c.srv.log.Enabled(context.Background(), slog.LevelDebug) {
		c.logger().Debug(msg, args...)
	}
}

// events is the gws event handler of every connection; the connection's
// state is its gws session.
type events struct{}

func session(socket *gws.Conn) *conn { return socket.Session().(*conn) }

func (events) OnOpen(socket *gws.Conn) {
	c := session(socket)
	c.debug("client connected", "seed", c.seed)
}

func (events) OnClose(socket *gws.Conn, err error) { session(socket).onClose(err) }

func (events) OnPing(socket *gws.Conn, payload []byte) {
	c := session(socket)
	c.awaitingPong.Store(false)
	c.async(func() { _ = socket.WritePong(payload) })
}

func (events) OnPong(socket *gws.Conn, _ []byte) { session(socket).awaitingPong.Store(false) }

func (events) OnMessage(socket *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	c := session(socket)
	c.awaitingPong.Store(false)
	if c.closingNow() {
		return // the connection is being closed: nothing more is answered
	}
	// The message is answered on a goroutine of its own, and the read loop
	// waits for it: decoding and subscribing take stack that the read
	// loop, parked on the socket for the life of an idle connection, would
	// otherwise keep (the runtime shrinks a stack only while it is mostly
	// unused, by half per GC).
	var wg sync.WaitGroup
	wg.Go(func() {
		if c.seed {
			c.handleSeed(msg.Bytes())
		} else {
			c.handle(msg.Bytes())
		}
	})
	wg.Wait()
}

// handle answers one protocol v1 message.
func (c *conn) handle(data []byte) {
	msg, perr := protocol.DecodeClient(data, c.srv.opts.MaxMessageSize)
	if perr != nil {
		c.sendError(perr)
		if perr.Code == protocol.ErrMessageTooLarge {
			c.srv.opts.Metrics.PolicyCloses.WithLabelValues("message_too_large").Inc()
			c.close(protocol.ClosePolicy, "message too large", true)
		}
		return
	}
	switch msg.(type) {
	case *protocol.AuthMessage, *protocol.SubscribeMessage, *protocol.UnsubscribeMessage:
		if !c.admit() {
			return
		}
	}
	switch m := msg.(type) {
	case *protocol.AuthMessage:
		c.authenticate(m.Token)
	case *protocol.SubscribeMessage:
		c.subscribe(m)
	case *protocol.UnsubscribeMessage:
		c.unsubscribe(m)
	case *protocol.PingMessage:
		c.reply(protocol.PongMessage{Type: "pong", Ref: m.Ref})
	}
}

// admit takes a token from the connection's bucket, or answers
// rate_limited (and closes with 4008 after maxStrikes in a row).
func (c *conn) admit() bool {
	if c.bucket.take(time.Now(), c.srv.opts.SubscribeRate, c.srv.burst) {
		c.strikes = 0
		return true
	}
	c.strikes++
	perr := protocol.Errorf(protocol.ErrRateLimited, "more than %g subscribe, unsubscribe or auth messages per second", c.srv.opts.SubscribeRate)
	if c.seed {
		c.srv.opts.Metrics.Errors.WithLabelValues(string(perr.Code)).Inc()
	} else {
		c.sendError(perr)
	}
	if c.strikes >= maxStrikes {
		c.srv.opts.Metrics.PolicyCloses.WithLabelValues("rate_limited").Inc()
		c.close(protocol.ClosePolicy, "rate limit exceeded", true)
	}
	return false
}

func (c *conn) subscribe(m *protocol.SubscribeMessage) {
	switch {
	case c.srv.opts.Verifier != nil && c.identity == nil:
		c.sendError(&protocol.Error{Code: protocol.ErrUnauthorized, Message: "authenticate first: send an auth message with a token", Sub: m.Sub})
		return
	case !c.srv.channels[m.Channel]:
		c.sendError(&protocol.Error{Code: protocol.ErrUnknownChannel, Message: "no such channel: " + m.Channel, Sub: m.Sub})
		return
	case c.find(m.Sub) >= 0:
		c.sendError(&protocol.Error{Code: protocol.ErrDuplicateSub, Message: "a subscription with this sub already exists", Sub: m.Sub})
		return
	case len(c.subs) >= c.srv.opts.MaxSubscriptions:
		c.sendError(&protocol.Error{Code: protocol.ErrTooManySubscriptions, Sub: m.Sub,
			Message: fmt.Sprintf("a connection may hold at most %d subscriptions", c.srv.opts.MaxSubscriptions)})
		return
	}
	grant, err := c.authorize(m.Channel)
	if err != nil {
		c.sendError(&protocol.Error{Code: protocol.ErrForbidden, Message: err.Error(), Sub: m.Sub})
		return
	}
	if m.Filter != nil && grant.View.Omits(m.Filter.Column) {
		c.sendError(&protocol.Error{Code: protocol.ErrForbidden, Sub: m.Sub,
			Message: fmt.Sprintf("cannot filter on column %q: it is not sent to this token", m.Filter.Column)})
		return
	}
	s, err := hub.NewSubscription(c, m.Sub, m.Channel, m.Filter)
	if err != nil {
		var perr *protocol.Error
		if !errors.As(err, &perr) {
			perr = &protocol.Error{Code: protocol.ErrBadFilter, Message: err.Error(), Sub: m.Sub}
		}
		c.sendError(perr)
		return
	}
	if err := s.Restrict(grant.Scope, grant.View); err != nil {
		c.sendError(&protocol.Error{Code: protocol.ErrForbidden, Message: "the token's claims cannot scope " + m.Channel, Sub: m.Sub})
		return
	}
	c.subs = append(c.subs, sub{s: s, grant: grant})
	c.srv.opts.Metrics.Subscriptions.Inc()
	c.srv.opts.Hub.Subscribe(s, m.Resume)
}

// authorize asks the rules what the connection's token may see of channel.
func (c *conn) authorize(channel string) (*auth.Grant, error) {
	var claims map[string]any
	if c.identity != nil {
		claims = c.identity.Claims
	}
	return c.srv.opts.Rules.Authorize(channel, claims)
}

// authenticate verifies a token from an auth message. A valid one becomes
// the connection's identity and its exp the connection's deadline; the
// subscriptions whose grant it changes are ended with forbidden. An
// invalid one closes the connection with 4001. Without a Verifier, tokens
// are ignored.
func (c *conn) authenticate(token string) {
	v := c.srv.opts.Verifier
	if v == nil {
		return
	}
	id, err := v.Verify(context.Background(), token)
	if err != nil {
		c.refuse(err)
		return
	}
	first := c.identity == nil
	c.identity = id
	c.srv.deadlines.set(c, id.Expires, tokenExpires)
	if first {
		return
	}
	for i := len(c.subs) - 1; i >= 0; i-- { // drop moves the last one to i
		cs := c.subs[i]
		grant, err := c.authorize(cs.s.Channel())
		if err == nil && grant.Same(cs.grant) {
			continue
		}
		c.drop(i)
		if !c.seed {
			c.sendError(&protocol.Error{Code: protocol.ErrForbidden, Sub: cs.key(),
				Message: "the new token does not grant this subscription as it was made; subscribe again"})
		}
	}
}

// refuse answers a token that failed verification (unauthorized, or
// token_expired) and closes the connection with 4001. The reason logged
// and sent never holds the token.
func (c *conn) refuse(err error) {
	code, reason := protocol.ErrUnauthorized, "invalid"
	if errors.Is(err, auth.ErrExpired) {
		code, reason = protocol.ErrTokenExpired, "expired"
	}
	c.srv.opts.Metrics.AuthFailures.WithLabelValues(reason).Inc()
	c.debug("refused a token", "reason", reason, "err", err)
	c.unauthorized(code, err.Error())
}

// unauthorized sends an error with code (v1 only) and closes with 4001.
func (c *conn) unauthorized(code protocol.ErrorCode, message string) {
	if !c.seed {
		c.sendError(&protocol.Error{Code: code, Message: message})
	}
	c.srv.opts.Metrics.PolicyCloses.WithLabelValues(string(code)).Inc()
	c.close(protocol.CloseUnauthorized, string(code), true)
}

// expire is called by the deadlines wheel when the connection's deadline
// passed: the grace period for its first token, or its token's exp.
func (c *conn) expire(kind deadlineKind) {
	if kind == graceEnds {
		c.srv.opts.Metrics.AuthFailures.WithLabelValues("no_token").Inc()
		c.unauthorized(protocol.ErrUnauthorized, "no valid token within "+c.srv.opts.AuthTimeout.String())
		return
	}
	c.srv.opts.Metrics.AuthFailures.WithLabelValues("expired").Inc()
	c.unauthorized(protocol.ErrTokenExpired, "the token expired; send a fresh one before exp")
}

func (c *conn) unsubscribe(m *protocol.UnsubscribeMessage) {
	i := c.find(m.Sub)
	if i < 0 {
		c.sendError(&protocol.Error{Code: protocol.ErrUnknownSub, Message: "no subscription with this sub", Sub: m.Sub})
		return
	}
	s := c.subs[i].s
	c.drop(i)
	c.Enqueue(hub.Message{Kind: hub.KindReply, Sub: s, Head: unsubscribedHead})
}

var unsubscribedHead = []byte(`{"type":"unsubscribed"`)

// drop ends the subscription at index i of subs, moving the last one there.
func (c *conn) drop(i int) {
	s := c.subs[i].s
	last := len(c.subs) - 1
	c.subs[i] = c.subs[last]
	c.subs[last] = sub{}
	c.subs = c.subs[:last]
	c.srv.opts.Hub.Unsubscribe(s)
	c.srv.opts.Metrics.Subscriptions.Dec()
}

// handleSeed answers one seed-protocol message. The seed protocol has no
// acks and no errors: a message that cannot be served is logged and ignored.
func (c *conn) handleSeed(data []byte) {
	m, perr := protocol.DecodeSeed(data, c.srv.opts.MaxMessageSize)
	if perr != nil {
		c.debug("ignored a seed-protocol message", "code", perr.Code, "err", perr.Message)
		if perr.Code == protocol.ErrMessageTooLarge {
			c.srv.opts.Metrics.PolicyCloses.WithLabelValues("message_too_large").Inc()
			c.close(protocol.ClosePolicy, "message too large", false)
		}
		return
	}
	if !c.admit() {
		return
	}
	i := c.find(m.Channel)
	subscribed := i >= 0
	switch {
	case m.Type == "unsubscribe":
		if subscribed {
			c.drop(i)
		}
	case subscribed:
		// Already subscribed: the seed's hook may subscribe twice.
	case !c.srv.channels[m.Channel]:
		c.debug("ignored a seed-protocol subscribe to an unknown channel", "channel", m.Channel)
	case len(c.subs) >= c.srv.opts.MaxSubscriptions:
		c.debug("ignored a seed-protocol subscribe over the limit", "channel", m.Channel)
	default:
		grant, err := c.authorize(m.Channel)
		if err != nil {
			c.srv.opts.Metrics.Errors.WithLabelValues(string(protocol.ErrForbidden)).Inc()
			c.debug("ignored a forbidden seed-protocol subscribe", "channel", m.Channel, "err", err)
			return
		}
		s := hub.NewSeedSubscription(c, m.Channel)
		if err := s.Restrict(grant.Scope, grant.View); err != nil {
			c.debug("ignored a seed-protocol subscribe the token's claims cannot scope", "channel", m.Channel)
			return
		}
		c.subs = append(c.subs, sub{s: s, grant: grant})
		c.srv.opts.Metrics.Subscriptions.Inc()
		c.srv.opts.Hub.Subscribe(s, nil)
	}
}

// sendError queues an error message and counts it.
func (c *conn) sendError(perr *protocol.Error) {
	c.srv.opts.Metrics.Errors.WithLabelValues(string(perr.Code)).Inc()
	c.reply(protocol.ErrorMessage{Type: "error", Code: perr.Code, Message: perr.Message, Sub: perr.Sub})
}

// reply queues one message of the gateway's own.
func (c *conn) reply(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.logger().Error("encode reply", "err", err)
		return
	}
	c.Enqueue(hub.Message{Kind: hub.KindReply, Body: b})
}

// heartbeat is called by the server's ticker: it pings the client, or
// closes the connection when the previous ping got no answer.
func (c *conn) heartbeat() {
	if c.awaitingPong.Swap(true) {
		c.logger().Info("closing a connection that did not answer a ping")
		c.release()
		return
	}
	c.async(c.pingFn)
}

func (c *conn) ping() { _ = c.socket.WritePing(nil) }

func (c *conn) onClose(err error) {
	c.debug("client disconnected", "err", err)
	c.sendQueue.discard()
	c.srv.deadlines.set(c, time.Time{}, 0)
	for i := len(c.subs) - 1; i >= 0; i-- {
		c.drop(i)
	}
	c.srv.remove(c)
	c.release()
}

// release closes the connection's socket for good, without a goodbye:
// once its read loop ended, or to cut a connection that is not answering.
func (c *conn) release() {
	if wc, ok := c.socket.NetConn().(*writeConn); ok {
		wc.release()
	}
}

// noStorage fills gws.SessionStorage for conn. gws makes a session for
// each connection before upgrading it; the gateway makes that session the
// connection's state (socket.Session().(*conn)) instead of a map, so it
// stores nothing.
type noStorage struct{}

func (noStorage) Len() int                           { return 0 }
func (noStorage) Load(string) (any, bool)            { return nil, false }
func (noStorage) Delete(string)                      {}
func (noStorage) Store(string, any)                  {}
func (noStorage) Range(func(key string, v any) bool) {}
