package node

import (
	"time"
)

// catchUpLoop reports a node's catch-up in plain log lines: while raft has committed commands
// this node has not applied, or entries wait to be integrated into its tree, it logs how far it
// is, how fast it goes and when it expects to be done; then one line when it has caught up. A
// node that joins a large network, or returns after a long stop, says what it is doing instead
// of looking hung.
func (n *Node) catchUpLoop(every time.Duration, threshold uint64) {
	defer n.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	var (
		started     time.Time
		lastApplied uint64
		lastTree    uint64
	)
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		st := n.raft.Stats()
		size, tree := n.ledger.Size(), n.ledger.TreeSize()
		raftBehind := uint64(0)
		if st.CommitIndex > st.AppliedIndex {
			raftBehind = st.CommitIndex - st.AppliedIndex
		}
		treeBehind := uint64(0)
		if size > tree {
			treeBehind = size - tree
		}
		if raftBehind < threshold && treeBehind < threshold {
			if !started.IsZero() {
				n.log.Info("caught up", "took", time.Since(started).Round(time.Millisecond), "applied_index", st.AppliedIndex, "tree_size", tree)
				started = time.Time{}
			}
			lastApplied, lastTree = st.AppliedIndex, tree
			continue
		}
		if started.IsZero() {
			started = time.Now()
		}
		secs := every.Seconds()
		applyRate := float64(st.AppliedIndex-min(lastApplied, st.AppliedIndex)) / secs
		treeRate := float64(tree-min(lastTree, tree)) / secs
		lastApplied, lastTree = st.AppliedIndex, tree
		attrs := []any{"applied_index", st.AppliedIndex, "commit_index", st.CommitIndex,
			"tree_size", tree, "entries", size, "applied_per_s", int(applyRate), "integrated_per_s", int(treeRate)}
		if eta := etaOf(raftBehind, applyRate, treeBehind, treeRate); eta > 0 {
			attrs = append(attrs, "eta", eta.Round(time.Second))
		}
		n.log.Info("catching up", attrs...)
	}
}

// etaOf estimates the time left from what is behind and the current rates; 0 when unknown.
func etaOf(raftBehind uint64, applyRate float64, treeBehind uint64, treeRate float64) time.Duration {
	var eta float64
	if raftBehind > 0 {
		if applyRate <= 0 {
			return 0
		}
		eta = float64(raftBehind) / applyRate
	}
	if treeBehind > 0 {
		if treeRate <= 0 {
			return 0
		}
		eta = max(eta, float64(treeBehind)/treeRate)
	}
	return time.Duration(eta * float64(time.Second))
}
