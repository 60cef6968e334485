package node

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the node's Prometheus series, on a registry of its own so that several nodes can
// live in one process (tests, the demo).
type metrics struct {
	reg              *prometheus.Registry
	appended         prometheus.Counter
	rejected         prometheus.Counter
	overload         prometheus.Counter
	cosigned         prometheus.Gauge
	cosignRefused    prometheus.Counter
	inconsistent     prometheus.Counter
	foreignRefused   *prometheus.CounterVec
	gossipReceived   *prometheus.CounterVec
	published        prometheus.Gauge
	publishedCosigs  prometheus.Gauge
	requests         *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	admittedTogether prometheus.Histogram
}

func newMetrics(n *Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.appended = prometheus.NewCounter(prometheus.CounterOpts{Name: "witnessnet_entries_appended_total", Help: "Entries this node submitted that were committed."})
	m.rejected = prometheus.NewCounter(prometheus.CounterOpts{Name: "witnessnet_entries_rejected_total", Help: "Submissions refused at admission."})
	m.overload = prometheus.NewCounter(prometheus.CounterOpts{Name: "witnessnet_overload_total", Help: "Submissions refused because the proposal queue was full."})
	m.cosigned = prometheus.NewGauge(prometheus.GaugeOpts{Name: "witnessnet_cosigned_size", Help: "Tree size of the last checkpoint this node cosigned."})
	m.cosignRefused = prometheus.NewCounter(prometheus.CounterOpts{Name: "witnessnet_cosign_refused_total", Help: "Own checkpoints the node refused to cosign (inconsistent with what it cosigned before)."})
	m.inconsistent = prometheus.NewCounter(prometheus.CounterOpts{Name: "witnessnet_inconsistent_cosignatures_total", Help: "Peer cosignatures over a root that disagrees with this node's tree."})
	m.foreignRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "witnessnet_add_checkpoint_refused_total", Help: "POST /add-checkpoint requests refused, by HTTP status; 422 includes forks of a witnessed log."}, []string{"code"})
	m.gossipReceived = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "witnessnet_gossip_received_total", Help: "Gossiped messages from other members that passed validation, by kind."}, []string{"kind"})
	m.published = prometheus.NewGauge(prometheus.GaugeOpts{Name: "witnessnet_checkpoint_size", Help: "Tree size of the newest checkpoint with a quorum of cosignatures."})
	m.publishedCosigs = prometheus.NewGauge(prometheus.GaugeOpts{Name: "witnessnet_checkpoint_cosignatures", Help: "Cosignatures on the newest published checkpoint."})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "witnessnet_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "witnessnet_http_request_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"})
	m.admittedTogether = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "witnessnet_admitted_together",
		Help:    "Submissions the leader admitted together, their signatures checked in one batch: a batch request's, a member's relayed batch, or single submissions that arrived together.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11)})
	for _, c := range []prometheus.Collector{m.appended, m.rejected, m.overload, m.cosigned, m.cosignRefused, m.inconsistent, m.foreignRefused, m.gossipReceived, m.published, m.publishedCosigs, m.requests, m.latency, m.admittedTogether} {
		f(c)
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "witnessnet_tree_size", Help: "Size of the tree this node computed."}, func() float64 { return float64(n.ledger.TreeSize()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "witnessnet_log_size", Help: "Entries committed (integrated or not)."}, func() float64 { return float64(n.ledger.Size()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "witnessnet_applied_index", Help: "Raft index of the last applied command."}, func() float64 { return float64(n.ledger.AppliedIndex()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "witnessnet_raft_leader", Help: "1 if this node is the raft leader."}, func() float64 {
		if n.raft.IsLeader() {
			return 1
		}
		return 0
	}))
	f(prometheus.NewGoCollector())
	f(prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// instrument counts and times requests per route.
func (m *metrics) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r)
		m.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
