package server

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metrics are the server's Prometheus metrics. The store's own (keys,
// pairs, WAL, checkpoints, workers) come from Backend.WritePrometheus and
// are gathered beside them, so each metric is defined once.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // endpoint, command, code
	latency  *prometheus.HistogramVec // endpoint, command
	conns    *prometheus.GaugeVec     // endpoint
	inFlight prometheus.Gauge
	rejected *prometheus.CounterVec // endpoint
	dropped  prometheus.Counter
	httpReqs *prometheus.CounterVec // path, code

	// Totals for the msgpack "metrics" command.
	total, failed atomic.Int64
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cidstore_server_requests_total",
			Help: "Requests handled, by endpoint, command and result code (200: success).",
		}, []string{"endpoint", "command", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cidstore_server_request_seconds",
			Help:    "Time from a decoded request to its encoded reply, durable writes included.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 20), // 25us .. 13s
		}, []string{"endpoint", "command"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cidstore_server_requests_in_flight",
			Help: "ZeroMQ requests received whose reply is not sent yet.",
		}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cidstore_server_connections",
			Help: "Open ZeroMQ connections, by endpoint.",
		}, []string{"endpoint"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cidstore_server_connections_rejected_total",
			Help: "Connections refused at the connection limit, by endpoint.",
		}, []string{"endpoint"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cidstore_server_pub_dropped_total",
			Help: "Notifications dropped because a subscriber's queue was full.",
		}),
		httpReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cidstore_server_http_requests_total",
			Help: "Control-plane HTTP requests, by path and status code.",
		}, []string{"path", "code"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.inFlight, m.conns, m.rejected, m.dropped, m.httpReqs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe records one request. op 0 is a request that did not decode.
func (m *metrics) observe(endpoint string, op Op, err error, d time.Duration) {
	code := "200"
	if err != nil {
		code = strconv.Itoa(int(asError(err).Code))
		m.failed.Add(1)
	}
	m.total.Add(1)
	name := op.String()
	m.requests.WithLabelValues(endpoint, name, code).Inc()
	if op != 0 {
		m.latency.WithLabelValues(endpoint, name).Observe(d.Seconds())
	}
}

// gatherer returns the server's metrics and, when b is not nil, the
// store's, parsed from its text exposition.
func (m *metrics) gatherer(b func() Backend) prometheus.Gatherer {
	store := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		be := b()
		if be == nil {
			return nil, nil
		}
		var buf bytes.Buffer
		if err := be.WritePrometheus(&buf); err != nil {
			return nil, err
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(&buf)
		if err != nil {
			return nil, err
		}
		out := make([]*dto.MetricFamily, 0, len(fams))
		for _, f := range fams {
			out = append(out, f)
		}
		slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
		return out, nil
	})
	return prometheus.Gatherers{m.reg, store}
}
