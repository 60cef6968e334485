package boltstore

import (
	"context"
	"testing"
	"time"

	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/util/clock"
)

const (
	benchBatch    = 1000
	benchLeafSize = 1024
)

// BenchmarkAddSequencedLeaves stores batches of 1000 leaves of 1 KiB, one committed (fsynced)
// transaction per batch.
func BenchmarkAddSequencedLeaves(b *testing.B) {
	ls, _ := newBenchTree(b)
	ctx := context.Background()
	next := int64(0)
	for b.Loop() {
		b.StopTimer()
		leaves := makeLeaves(next, benchBatch, benchLeafSize)
		next += benchBatch
		b.StartTimer()
		if _, err := ls.AddSequencedLeaves(ctx, testTree, leaves, epoch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "leaves/s")
}

// BenchmarkIntegrateBatch times Trillian's sequencer integrating batches of 1000 stored leaves of
// 1 KiB: reading them, hashing the tree, writing nodes and the new root, in one transaction.
func BenchmarkIntegrateBatch(b *testing.B) {
	tlog.InitMetrics(nil)
	ls, _ := newBenchTree(b)
	ctx := context.Background()
	ts := clock.NewFake(epoch)
	next := int64(0)
	for b.Loop() {
		b.StopTimer()
		if _, err := ls.AddSequencedLeaves(ctx, testTree, makeLeaves(next, benchBatch, benchLeafSize), epoch); err != nil {
			b.Fatal(err)
		}
		next += benchBatch
		ts.Set(ts.Now().Add(time.Second))
		b.StartTimer()
		n, err := tlog.IntegrateBatch(ctx, testTree, benchBatch, 0, 0, ts, ls, quota.Noop())
		if err != nil || n != benchBatch {
			b.Fatalf("IntegrateBatch = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "leaves/s")
}

func newBenchTree(b *testing.B) (*LogStorage, *AdminStorage) {
	b.Helper()
	db := openDB(b)
	if _, err := EnsureTree(context.Background(), db, testTree, epoch); err != nil {
		b.Fatal(err)
	}
	return newStorage(b, db)
}
