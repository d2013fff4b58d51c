package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sample is one series' value at a scrape: a prometheus.Metric that
// writes itself without the label checks and copies of
// prometheus.MustNewConstMetric. The labels come from the Collector's own
// fixed sets and validated agent names, and are shared read-only between
// samples, so a scrape of a thousand agents allocates a slab of samples
// rather than several objects per series.
type sample struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair // sorted by name, as the exposition wants
	kind   prometheus.ValueType
	value  float64
	count  uint64 // a summary's
	pair   [2]*dto.LabelPair
	g      dto.Gauge
	c      dto.Counter
	s      dto.Summary
}

func (s *sample) Desc() *prometheus.Desc { return s.desc }

func (s *sample) Write(m *dto.Metric) error {
	m.Label = s.labels
	switch s.kind {
	case prometheus.GaugeValue:
		s.g.Value = &s.value
		m.Gauge = &s.g
	case prometheus.CounterValue:
		s.c.Value = &s.value
		m.Counter = &s.c
	default: // a summary without quantiles: count and sum
		s.s.SampleCount, s.s.SampleSum = &s.count, &s.value
		m.Summary = &s.s
	}
	return nil
}

// pair is a label pair; the Collector makes one per agent name and per
// fixed value, and every sample shares them.
func pair(name, value string) *dto.LabelPair { return &dto.LabelPair{Name: &name, Value: &value} }

// batch hands out samples from slabs and sends them.
type batch struct {
	ch   chan<- prometheus.Metric
	slab []sample
}

func (b *batch) send(d *prometheus.Desc, kind prometheus.ValueType, v float64, labels ...*dto.LabelPair) {
	b.ch <- b.take(d, kind, v, labels)
}

// summary sends a summary of count observations summing to sum.
func (b *batch) summary(d *prometheus.Desc, count uint64, sum float64, labels ...*dto.LabelPair) {
	s := b.take(d, prometheus.UntypedValue, sum, labels)
	s.count = count
	b.ch <- s
}

func (b *batch) gauge(d *prometheus.Desc, v float64, labels ...*dto.LabelPair) {
	b.send(d, prometheus.GaugeValue, v, labels...)
}

func (b *batch) counter(d *prometheus.Desc, v float64, labels ...*dto.LabelPair) {
	b.send(d, prometheus.CounterValue, v, labels...)
}

func (b *batch) take(d *prometheus.Desc, kind prometheus.ValueType, v float64, labels []*dto.LabelPair) *sample {
	if len(b.slab) == 0 {
		b.slab = make([]sample, 256)
	}
	s := &b.slab[0]
	b.slab = b.slab[1:]
	s.desc, s.kind, s.value = d, kind, v
	s.labels = append(s.pair[:0], labels...)
	return s
}
