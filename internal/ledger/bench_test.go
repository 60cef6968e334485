package ledger

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/proccpu"
)

// BenchmarkApply measures the state machine alone: batches of 1,000 records with 1 KiB
// envelopes applied and integrated by Trillian's sequencer, one bbolt commit per batch. The
// indexing steps that follow run in the background and are in the CPU time (cpu-µs/entry)
// until the last batch is integrated.
func BenchmarkApply(b *testing.B) {
	l, err := Open(context.Background(), Config{Path: filepath.Join(b.TempDir(), "state.db")})
	if err != nil {
		b.Fatal(err)
	}
	l.Start()
	defer l.Close()
	const batch = 1000
	payload := make([]byte, 700)
	rand.Read(payload)
	mk := func(i int) []byte {
		env := fmt.Appendf(nil, `{"payloadType":"application/vnd.in-toto+json","payload":"%s","signatures":[{"keyid":"%d","sig":""}]}`,
			base64.StdEncoding.EncodeToString(payload), i)
		leaf, _, _ := NewLeaf(env, "", nil)
		r, _ := (&Record{Identity: IdentityOf(env), Leaf: leaf}).MarshalBinary()
		return r
	}
	cmds := make([]Command, b.N)
	for i := range cmds {
		cmds[i] = Command{Index: uint64(i + 1), Kind: KindEntries, Stamp: time.Unix(1, 0)}
		for j := range batch {
			cmds[i].Records = append(cmds[i].Records, mk(i*batch+j))
		}
	}
	b.ResetTimer()
	start, cpu := time.Now(), proccpu.Used()
	for i := range b.N {
		l.Apply(cmds[i : i+1])
	}
	ctx := context.Background()
	if err := l.WaitTreeSize(ctx, uint64(b.N*batch)); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "entries/s")
	if used := proccpu.Used() - cpu; used > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/1e3/float64(b.N*batch), "cpu-µs/entry")
	}
}

// BenchmarkSearchPending measures a search for a term no entry has, which reads every run and
// then the pending terms of the entries not yet indexed (three terms each): the cost a larger
// index step (indexBatch) adds to a search on a node whose indexing is behind.
func BenchmarkSearchPending(b *testing.B) {
	for _, pending := range []int{4096, indexBatch} {
		b.Run(fmt.Sprint(pending), func(b *testing.B) {
			l, err := Open(context.Background(), Config{Path: filepath.Join(b.TempDir(), "state.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close() // not started: nothing is indexed
			cmd := Command{Index: 1, Kind: KindEntries, Stamp: time.Unix(1, 0)}
			for i := range pending {
				env := fmt.Appendf(nil, `{"payloadType":"t","payload":"","signatures":[{"keyid":"%d","sig":""}]}`, i)
				leaf, _, _ := NewLeaf(env, "", nil)
				terms := []string{Term(TermType, "link"), Term("key", fmt.Sprint(i%7)), Term("sha256", fmt.Sprint(i))}
				r, err := (&Record{Identity: IdentityOf(env), Leaf: leaf, Terms: terms}).MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				cmd.Records = append(cmd.Records, r)
			}
			l.Apply([]Command{cmd})
			if got, err := l.Search(Term("sha256", "5"), 0, 100); err != nil || len(got) != 1 || got[0] != 5 {
				b.Fatalf("search for a pending term: %v, %v", got, err)
			}
			for b.Loop() {
				if got, err := l.Search(Term("sha256", "absent"), 0, 100); err != nil || len(got) != 0 {
					b.Fatalf("search: %v, %v", got, err)
				}
			}
		})
	}
}
