// Package metrics holds the gateway's Prometheus collectors in one place, so
// every package counts into the same, documented set of series.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Metrics is the set of collectors the gateway exports on /metrics. The zero
// value is not usable; create one with New.
type Metrics struct {
	// Connections is the number of open WebSocket connections.
	Connections prometheus.Gauge
	// Subscriptions is the number of active subscriptions.
	Subscriptions prometheus.Gauge
	// NotificationsIn counts notifications received from Postgres, by channel.
	NotificationsIn *prometheus.CounterVec
	// MessagesOut counts messages queued to clients (changes, acks, errors…).
	MessagesOut prometheus.Counter
	// ListenerReconnects counts successful reconnects of the listener connection.
	ListenerReconnects prometheus.Counter
	// Resyncs counts resync messages sent, by reason.
	Resyncs *prometheus.CounterVec
	// Drops counts changes dropped from a slow client's send queue.
	Drops prometheus.Counter
	// Errors counts error messages sent to clients, by code.
	Errors *prometheus.CounterVec
	// HydrationFailures counts truncated changes that could not be hydrated.
	HydrationFailures prometheus.Counter
	// BadPayloads counts notifications the gateway could not parse.
	BadPayloads prometheus.Counter
	// AuthFailures counts connections refused for their token, by reason:
	// no_token, invalid, expired.
	AuthFailures *prometheus.CounterVec
	// RefusedConnections counts WebSocket requests answered with an HTTP
	// error before the upgrade, by reason: origin, per_ip, shutting_down.
	RefusedConnections *prometheus.CounterVec
	// PolicyCloses counts connections the gateway closed for a policy
	// reason, by reason: unauthorized, token_expired, rate_limited,
	// message_too_large.
	PolicyCloses *prometheus.CounterVec
	// NotificationQueueUsage is Postgres's pg_notification_queue_usage(): the
	// fraction of the notification queue in use (writes fail when it is full).
	NotificationQueueUsage prometheus.Gauge
}

// New creates the collectors and registers them with reg (which may be nil
// for tests that do not export them).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connections:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "ripple_connections", Help: "Open WebSocket connections."}),
		Subscriptions:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "ripple_subscriptions", Help: "Active subscriptions."}),
		NotificationsIn:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ripple_notifications_in_total", Help: "Notifications received from Postgres."}, []string{"channel"}),
		MessagesOut:        prometheus.NewCounter(prometheus.CounterOpts{Name: "ripple_messages_out_total", Help: "Messages queued to clients."}),
		ListenerReconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "ripple_listener_reconnects_total", Help: "Reconnects of the listener connection."}),
		Resyncs:            prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ripple_resyncs_total", Help: "Resync messages sent to clients."}, []string{"reason"}),
		Drops:              prometheus.NewCounter(prometheus.CounterOpts{Name: "ripple_dropped_messages_total", Help: "Changes dropped from slow clients' send queues."}),
		Errors:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ripple_client_errors_total", Help: "Error messages sent to clients."}, []string{"code"}),
		HydrationFailures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ripple_hydration_failures_total", Help: "Truncated changes that could not be hydrated."}),
		BadPayloads:        prometheus.NewCounter(prometheus.CounterOpts{Name: "ripple_bad_payloads_total", Help: "Notifications that could not be parsed."}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ripple_auth_failures_total",
			Help: "Tokens refused, by reason."}, []string{"reason"}),
		RefusedConnections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ripple_refused_connections_total",
			Help: "WebSocket requests refused before the upgrade, by reason."}, []string{"reason"}),
		PolicyCloses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ripple_policy_closes_total",
			Help: "Connections closed by the gateway for a policy reason."}, []string{"reason"}),
		NotificationQueueUsage: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ripple_pg_notification_queue_usage",
			Help: "Fraction of Postgres's notification queue in use (pg_notification_queue_usage())."}),
	}
	if reg != nil {
		reg.MustRegister(m.Connections, m.Subscriptions, m.NotificationsIn, m.MessagesOut,
			m.ListenerReconnects, m.Resyncs, m.Drops, m.Errors, m.HydrationFailures, m.BadPayloads,
			m.NotificationQueueUsage, m.AuthFailures, m.RefusedConnections, m.PolicyCloses)
	}
	return m
}
