package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/backend/hub"
	"github.com/ripple-rt/ripple/backend/protocol"
)

// conn is one client connection. Its subscriptions are touched only by
// gws's read goroutine (OnMessage and OnClose run there, one at a time);
// its send queue (queue.go) by anyone, under its own lock.
type conn struct {
	noStorage
	srv    *Server
	seed   bool
	socket *gws.Conn
	// subs holds the subscriptions by sub id (v1) or channel (seed).
	subs map[string]*hub.Subscription
	// awaitingPong is set by each server ping and cleared by any frame
	// from the client.
	awaitingPong atomic.Bool
	pingFn       func()

	sendQueue
}

func (c *conn) init(socket *gws.Conn) {
	c.socket = socket
	c.subs = make(map[string]*hub.Subscription)
	c.pingFn = c.ping
	c.sendQueue.init(c)
}

// logger returns the server's logger with the client's address. Logs are
// rare, so it is not kept per connection: idle connections stay small.
func (c *conn) logger() *slog.Logger {
	return c.srv.log.With("remote", c.socket.RemoteAddr().String())
}

// events is the gws event handler of every connection; the connection's
// state is its gws session.
type events struct{}

func session(socket *gws.Conn) *conn { return socket.Session().(*conn) }

func (events) OnOpen(socket *gws.Conn) {
	session(socket).logger().Debug("client connected", "seed", session(socket).seed)
}

func (events) OnClose(socket *gws.Conn, err error) { session(socket).onClose(err) }

func (events) OnPing(socket *gws.Conn, payload []byte) {
	c := session(socket)
	c.awaitingPong.Store(false)
	socket.Async(func() {
		c.setWriteDeadline()
		_ = socket.WritePong(payload)
		c.clearWriteDeadline()
	})
}

func (events) OnPong(socket *gws.Conn, _ []byte) { session(socket).awaitingPong.Store(false) }

func (events) OnMessage(socket *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	c := session(socket)
	c.awaitingPong.Store(false)
	if c.seed {
		c.handleSeed(msg.Bytes())
	} else {
		c.handle(msg.Bytes())
	}
}

// handle answers one protocol v1 message.
func (c *conn) handle(data []byte) {
	msg, perr := protocol.DecodeClient(data, c.srv.opts.MaxMessageSize)
	if perr != nil {
		c.sendError(perr)
		if perr.Code == protocol.ErrMessageTooLarge {
			c.close(protocol.ClosePolicy, "message too large", true)
		}
		return
	}
	switch m := msg.(type) {
	case *protocol.AuthMessage:
		// This gateway runs without authentication (RIPPLE_AUTH=none):
		// a token is accepted and not checked.
	case *protocol.SubscribeMessage:
		c.subscribe(m)
	case *protocol.UnsubscribeMessage:
		c.unsubscribe(m)
	case *protocol.PingMessage:
		c.reply(protocol.PongMessage{Type: "pong", Ref: m.Ref})
	}
}

func (c *conn) subscribe(m *protocol.SubscribeMessage) {
	switch {
	case !c.srv.channels[m.Channel]:
		c.sendError(&protocol.Error{Code: protocol.ErrUnknownChannel, Message: "no such channel: " + m.Channel, Sub: m.Sub})
		return
	case c.subs[m.Sub] != nil:
		c.sendError(&protocol.Error{Code: protocol.ErrDuplicateSub, Message: "a subscription with this sub already exists", Sub: m.Sub})
		return
	case len(c.subs) >= c.srv.opts.MaxSubscriptions:
		c.sendError(&protocol.Error{Code: protocol.ErrTooManySubscriptions, Sub: m.Sub,
			Message: fmt.Sprintf("a connection may hold at most %d subscriptions", c.srv.opts.MaxSubscriptions)})
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
	c.subs[m.Sub] = s
	c.srv.opts.Metrics.Subscriptions.Inc()
	c.srv.opts.Hub.Subscribe(s, m.Resume)
}

func (c *conn) unsubscribe(m *protocol.UnsubscribeMessage) {
	s := c.subs[m.Sub]
	if s == nil {
		c.sendError(&protocol.Error{Code: protocol.ErrUnknownSub, Message: "no subscription with this sub", Sub: m.Sub})
		return
	}
	c.drop(m.Sub, s)
	c.Enqueue(hub.Message{Kind: hub.KindReply, Sub: s, Head: unsubscribedHead})
}

var unsubscribedHead = []byte(`{"type":"unsubscribed"`)

// drop ends subscription s (named key in subs).
func (c *conn) drop(key string, s *hub.Subscription) {
	delete(c.subs, key)
	c.srv.opts.Hub.Unsubscribe(s)
	c.srv.opts.Metrics.Subscriptions.Dec()
}

// handleSeed answers one seed-protocol message. The seed protocol has no
// acks and no errors: a message that cannot be served is logged and ignored.
func (c *conn) handleSeed(data []byte) {
	m, perr := protocol.DecodeSeed(data, c.srv.opts.MaxMessageSize)
	if perr != nil {
		c.logger().Debug("ignored a seed-protocol message", "code", perr.Code, "err", perr.Message)
		if perr.Code == protocol.ErrMessageTooLarge {
			c.close(protocol.ClosePolicy, "message too large", false)
		}
		return
	}
	s := c.subs[m.Channel]
	switch {
	case m.Type == "unsubscribe":
		if s != nil {
			c.drop(m.Channel, s)
		}
	case s != nil:
		// Already subscribed: the seed's hook may subscribe twice.
	case !c.srv.channels[m.Channel]:
		c.logger().Debug("ignored a seed-protocol subscribe to an unknown channel", "channel", m.Channel)
	case len(c.subs) >= c.srv.opts.MaxSubscriptions:
		c.logger().Debug("ignored a seed-protocol subscribe over the limit", "channel", m.Channel)
	default:
		s = hub.NewSeedSubscription(c, m.Channel)
		c.subs[m.Channel] = s
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
		_ = c.socket.NetConn().Close()
		return
	}
	c.socket.Async(c.pingFn)
}

func (c *conn) ping() {
	c.setWriteDeadline()
	_ = c.socket.WritePing(nil)
	c.clearWriteDeadline()
}

func (c *conn) onClose(err error) {
	c.logger().Debug("client disconnected", "err", err)
	c.sendQueue.discard()
	for key, s := range c.subs {
		c.drop(key, s)
	}
	c.srv.remove(c)
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
