package compose

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func appendOp(client int, entry string, index uint64, call, ret int64) Op {
	return Op{Client: client, Kind: Append, Outcome: Ok, Entry: entry, Index: index, Call: call, Return: ret}
}

func readOp(client int, index uint64, entry string, call, ret int64) Op {
	return Op{Client: client, Kind: Read, Outcome: Ok, Found: entry != "", Entry: entry, Index: index, Call: call, Return: ret}
}

func unknownAppend(client int, entry string, call int64) Op {
	return Op{Client: client, Kind: Append, Outcome: Unknown, Entry: entry, Call: call}
}

func TestLinearizable(t *testing.T) {
	tests := []struct {
		name  string
		ops   []Op
		final map[string]uint64
		want  porcupine.CheckResult
	}{
		{"sequential", []Op{
			appendOp(0, "a", 0, 0, 10), appendOp(0, "b", 1, 20, 30), readOp(1, 0, "a", 40, 50), readOp(1, 1, "b", 40, 50),
		}, map[string]uint64{"a": 0, "b": 1}, porcupine.Ok},
		{"concurrent appends either order", []Op{
			appendOp(0, "a", 1, 0, 10), appendOp(1, "b", 0, 0, 10),
		}, map[string]uint64{"b": 0, "a": 1}, porcupine.Ok},
		{"index skipped", []Op{
			appendOp(0, "a", 0, 0, 10), appendOp(0, "b", 2, 20, 30),
		}, map[string]uint64{"a": 0, "b": 2}, porcupine.Illegal},
		{"index order against real time", []Op{
			appendOp(0, "a", 1, 0, 10), appendOp(1, "b", 0, 20, 30),
		}, map[string]uint64{"b": 0, "a": 1}, porcupine.Illegal},
		{"two entries at one index", []Op{
			appendOp(0, "a", 0, 0, 10), appendOp(1, "b", 0, 0, 10),
		}, map[string]uint64{"a": 0}, porcupine.Illegal},
		{"read from the future", []Op{
			readOp(1, 0, "a", 0, 5), appendOp(0, "a", 0, 10, 20),
		}, map[string]uint64{"a": 0}, porcupine.Illegal},
		{"read of another entry", []Op{
			appendOp(0, "a", 0, 0, 10), readOp(1, 0, "b", 20, 30),
		}, map[string]uint64{"a": 0}, porcupine.Illegal},
		{"unknown append seen by a read", []Op{
			unknownAppend(0, "a", 0), readOp(1, 0, "a", 20, 30), appendOp(1, "b", 1, 40, 50),
		}, map[string]uint64{"a": 0, "b": 1}, porcupine.Ok},
		{"unknown append that never happened", []Op{
			unknownAppend(0, "a", 0), appendOp(1, "b", 0, 40, 50), readOp(1, 0, "b", 60, 70),
		}, map[string]uint64{"b": 0}, porcupine.Ok},
		{"unknown append lands after later acks", []Op{
			unknownAppend(0, "a", 0), appendOp(1, "b", 0, 40, 50), appendOp(1, "c", 1, 60, 70),
		}, map[string]uint64{"b": 0, "c": 1, "a": 2}, porcupine.Ok},
		{"stale not-found reads are not claims", []Op{
			appendOp(0, "a", 0, 0, 10), readOp(1, 0, "", 20, 30),
		}, map[string]uint64{"a": 0}, porcupine.Ok},
		{"refused append read back", []Op{
			{Kind: Append, Outcome: Failed, Entry: "a", Call: 0, Return: 10}, readOp(1, 0, "a", 20, 30),
		}, map[string]uint64{}, porcupine.Illegal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := CheckLinearizable(tt.ops, tt.final, 10*time.Second)
			if got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestLinearizableLarge is a long concurrent history: the model must keep porcupine fast.
func TestLinearizableLarge(t *testing.T) {
	var ops []Op
	final := map[string]uint64{}
	const clients, n = 8, 4000
	for i := range n {
		id := "e" + string(rune('a'+i%26)) + itoa(i)
		call := int64(i * 10)
		// Index order is response order, and every op overlaps the next clients-1 ops.
		ops = append(ops, appendOp(i%clients, id, uint64(i), call, call+int64(clients*10)-5))
		final[id] = uint64(i)
		if i%5 == 0 && i > 0 {
			ops = append(ops, readOp(i%clients, uint64(i-1), "e"+string(rune('a'+(i-1)%26))+itoa(i-1), call+1, call+200))
		}
		if i%97 == 0 {
			ops = append(ops, unknownAppend(i%clients, "lost"+itoa(i), call))
		}
	}
	start := time.Now()
	got, size := CheckLinearizable(ops, final, time.Minute)
	if got != porcupine.Ok {
		t.Fatalf("got %s for %d operations", got, size)
	}
	t.Logf("%d operations checked in %v", size, time.Since(start))
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}

func TestUnavailability(t *testing.T) {
	ops := []Op{appendOp(0, "a", 0, 0, 100), appendOp(0, "b", 1, 100, 400), appendOp(0, "c", 2, 400, 450)}
	tests := []struct {
		name string
		w    Window
		want time.Duration
	}{
		{"whole", Window{0, 500}, 300},
		{"from before the first ack", Window{0, 120}, 100},
		{"no acks inside", Window{150, 350}, 200},
		{"tail", Window{420, 1000}, 550},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unavailability(ops, tt.w); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
