package imagescan

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the scanner's and the store's series
// (tollgate_image_scan_*): a progress and health view of scanning.
type Metrics struct {
	queued   *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	queue    prometheus.Gauge
	scans    *prometheus.CounterVec
	duration prometheus.Histogram
	dbAge    prometheus.Gauge
	dbStale  prometheus.Gauge
	updates  *prometheus.CounterVec
	cache    prometheus.Gauge
	images   prometheus.Gauge
}

// NewMetrics registers the series with reg (nil: registered nowhere, for
// tests that read them directly).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		queued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_image_scan_queued_total",
			Help: "Images queued: by admission for an ImageScan to be created (source=admission), by the scanner for a scan (source=scanner).",
		}, []string{"source"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_image_scan_dropped_total",
			Help: "Images not queued because the queue was full; the scanner's pod listing finds them later.",
		}, []string{"source"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_image_scan_queue_length",
			Help: "Digests waiting for a scan or being scanned.",
		}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_image_scan_scans_total",
			Help: "Scans performed, one per digest, by result (scanned or failed).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tollgate_image_scan_duration_seconds",
			Help:    "How long one image's scan took.",
			Buckets: []float64{0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		dbAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_image_scan_database_age_seconds",
			Help: "Age of the vulnerability database scans use, since it was built.",
		}),
		dbStale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_image_scan_database_stale",
			Help: "1 when the vulnerability database is older than the maximum age or cannot be read: results are marked stale.",
		}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_image_scan_database_updates_total",
			Help: "Vulnerability database updates, by result (updated or failed).",
		}, []string{"result"}),
		cache: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_image_scan_cache_size",
			Help: "Digests scanned whose result the scanner holds (rebuilt from ImageScans by a new leader).",
		}),
		images: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_image_scan_images",
			Help: "ImageScans, one per image reference in use.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.queued, m.dropped, m.queue, m.scans, m.duration, m.dbAge, m.dbStale, m.updates, m.cache, m.images)
	}
	return m
}
