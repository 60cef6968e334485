package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/extension"
	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/monitoring"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/server"
	"github.com/google/trillian/storage"
	"github.com/google/trillian/types"
	"github.com/google/trillian/util/clock"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/durationpb"
	"k8s.io/klog/v2"

	"github.com/witnessnet/witnessnet/internal/ledger/boltstore"
)

// Sentinel errors.
var (
	// ErrNotFound means the index or identity is not in the log.
	ErrNotFound = errors.New("not found")
	// ErrClosed means the ledger has been closed.
	ErrClosed = errors.New("ledger closed")
	// ErrFork means a committed command would put a different leaf at an occupied index. A node
	// that sees it stops: its store and the replicated log disagree.
	ErrFork = errors.New("fork: a different leaf is already stored at this index")
	// ErrTreeMismatch means the stored tree does not match the root recomputed from the leaves.
	ErrTreeMismatch = errors.New("stored tree does not match its leaves")
)

// Bucket names of the ledger's own state in state.db; Trillian's buckets live beside them.
var (
	bucketMeta       = []byte("ledger/meta")
	bucketBlobs      = []byte("ledger/blobs")
	bucketBoundaries = []byte("ledger/boundaries")

	keyApplied = []byte("applied") // last applied raft index
	keyNext    = []byte("next")    // next leaf index (entries assigned so far)
	keyTreeID  = []byte("tree_id") // the node's own Trillian tree
)

// Config configures a Ledger.
type Config struct {
	// Path of the bbolt file holding the replicated state and the node's Trillian tree.
	Path string
	// IntegrateBatch bounds how many leaves one Trillian integration step takes.
	IntegrateBatch int
	// OnBoundary, if set, is called by the sequencer goroutine for each checkpoint boundary the
	// tree reaches, in order, with the size and the root the node computed itself. Indexing waits
	// for it; Apply does not.
	OnBoundary func(ctx context.Context, size uint64, root []byte)
	// Merge merges the signatures of two envelopes over one payload, for threshold co-signing
	// (KindCosign). It MUST be pure and the same on every replica.
	Merge Merger
	// Genesis is the network's first membership document (text of version 1), the same on every
	// member; later versions arrive as KindMembership commands. Nil: no replicated membership.
	Genesis []byte
	Logger  *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.IntegrateBatch <= 0 {
		c.IntegrateBatch = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Path == "" {
		return errors.New("ledger: Path is required")
	}
	return nil
}

// store is everything bound to one open state.db; Restore swaps it whole.
type store struct {
	db    *bbolt.DB
	logs  *boltstore.LogStorage
	admin *boltstore.AdminStorage
	srv   *server.TrillianLogRPCServer
	tree  *trillian.Tree
	// unindexed holds the entries whose identities are not in the tree's index yet;
	// appending, what the Apply transaction in progress appended (Apply runs one at a time).
	unindexed *unindexed
	appending *appending
	// arena holds the leaves an Apply transaction stores, reset when the next one begins.
	arena boltstore.Arena
}

// Ledger is a node's replicated state: entries, their identities, and the node's own Trillian
// tree over them. See doc.go for its contracts.
type Ledger struct {
	cfg Config
	log *slog.Logger

	mu      sync.RWMutex // guards st; held for reading by every operation, for writing by Restore
	st      *store
	applyMu sync.Mutex // one Apply at a time

	applied    atomic.Uint64 // last applied raft index
	next       atomic.Uint64 // entries assigned
	integrated atomic.Uint64 // tree size the node has computed
	boundary   atomic.Uint64 // last checkpoint boundary applied

	kick      chan struct{} // wakes the sequencer
	changed   chan struct{} // closed and replaced whenever the tree grows
	changeMu  sync.Mutex
	cancel    context.CancelFunc
	done      chan struct{}
	startOnce sync.Once
	closed    atomic.Bool
}

var quietTrillian sync.Once

// silenceTrillian routes Trillian's klog output away from stderr (the node logs through slog) and
// initialises its sequencer metrics, which IntegrateBatch requires.
func silenceTrillian() {
	quietTrillian.Do(func() {
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		_ = fs.Set("logtostderr", "false")
		_ = fs.Set("alsologtostderr", "false")
		_ = fs.Set("stderrthreshold", "FATAL")
		klog.SetOutput(io.Discard)
		tlog.InitMetrics(monitoring.InertMetricFactory{})
	})
}

// Open opens (creating on first use) the ledger at cfg.Path. Start starts its sequencer.
func Open(ctx context.Context, cfg Config) (*Ledger, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	silenceTrillian()
	// A received state is opened by RestoreFile right after its CRC was read through: it is
	// either in the page cache already or too large for it, so only here is the file warmed.
	warmUp(cfg.Path)
	st, err := openStore(ctx, cfg.Path)
	if err != nil {
		return nil, err
	}
	if err := st.initMembership(cfg.Genesis); err != nil {
		st.db.Close()
		return nil, err
	}
	l := &Ledger{cfg: cfg, log: cfg.Logger, st: st, kick: make(chan struct{}, 1), changed: make(chan struct{})}
	if err := l.loadCounters(ctx); err != nil {
		st.db.Close()
		return nil, err
	}
	return l, nil
}

// Start starts the sequencer. The caller starts it once whatever OnBoundary needs is ready.
func (l *Ledger) Start() {
	l.startOnce.Do(func() {
		sctx, cancel := context.WithCancel(context.Background())
		l.cancel, l.done = cancel, make(chan struct{})
		go l.sequence(sctx)
		l.poke()
	})
}

// pageSize is the page size of a new state.db. Most of what a commit writes is leaves appended
// in index order (~2 KiB each for 1 KiB envelopes): 16 KiB pages write them with a quarter of
// the pages, page writes and splits of 4 KiB ones, for 8% less CPU per entry in
// BenchmarkAppend3NodesBatched (BENCHMARKS.md). A file keeps the page size it was created with.
const pageSize = 16 << 10

// mmapSize is how much of state.db bbolt maps when it opens it: address space, not memory
// (pages count only once read). bbolt grows the map by mapping again, which waits for every
// read transaction to end; one streaming the state to a member (ReadState, as long as the
// transfer) then held every Apply for as long (in a test, from 256 MiB on a map of 256 MiB).
// A map of 16 GiB is mapped again only past some nine million 1 KiB entries.
const mmapSize = min(16<<30, math.MaxInt)

func openStore(ctx context.Context, path string) (*store, error) {
	// The freelist is not synced: bbolt rebuilds it from the pages on open, so a commit writes and
	// fsyncs only the pages it changed. Durability is unchanged (the meta page still commits last).
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         5 * time.Second,
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: mmapSize,
		PageSize:        pageSize,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	st, err := newStore(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return st, nil
}

func newStore(ctx context.Context, db *bbolt.DB) (*store, error) {
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketBlobs, bucketBoundaries, bucketTerms, bucketTermsPending, bucketTermRuns, bucketPending, bucketExpiry, bucketComplete, bucketMembership} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create buckets: %w", err)
	}
	logs, err := boltstore.NewLogStorage(db)
	if err != nil {
		return nil, err
	}
	admin := boltstore.NewAdminStorage(db)
	st := &store{db: db, logs: logs, admin: admin}
	st.srv = server.NewTrillianLogRPCServer(extension.Registry{
		AdminStorage:  admin,
		LogStorage:    logs,
		QuotaManager:  quota.Noop(),
		MetricFactory: monitoring.InertMetricFactory{},
	}, clock.System)
	if err := st.ensureTree(ctx); err != nil {
		return nil, err
	}
	if err := st.loadUnindexed(); err != nil {
		return nil, err
	}
	return st, nil
}

// ensureTree finds the node's tree, or creates and initialises it on first use.
func (st *store) ensureTree(ctx context.Context) error {
	var id int64
	_ = st.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyTreeID); len(v) == 8 {
			id = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	if id == 0 {
		tree, err := storage.CreateTree(ctx, st.admin, &trillian.Tree{
			TreeState:       trillian.TreeState_ACTIVE,
			TreeType:        trillian.TreeType_PREORDERED_LOG,
			DisplayName:     "witnessnet",
			MaxRootDuration: durationpb.New(0),
		})
		if err != nil {
			return fmt.Errorf("create tree: %w", err)
		}
		if _, err := st.srv.InitLog(ctx, &trillian.InitLogRequest{LogId: tree.TreeId}); err != nil {
			return fmt.Errorf("init tree: %w", err)
		}
		id = tree.TreeId
		if err := st.db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyTreeID, u64(uint64(id)))
		}); err != nil {
			return fmt.Errorf("record tree id: %w", err)
		}
	}
	tree, err := storage.GetTree(ctx, st.admin, id)
	if err != nil {
		return fmt.Errorf("load tree %d: %w", id, err)
	}
	st.tree = tree
	return nil
}

func (l *Ledger) loadCounters(ctx context.Context) error {
	st := l.st
	err := st.db.View(func(tx *bbolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		l.applied.Store(getU64(m.Get(keyApplied)))
		l.next.Store(getU64(m.Get(keyNext)))
		if k, _ := tx.Bucket(bucketBoundaries).Cursor().Last(); k != nil {
			l.boundary.Store(binary.BigEndian.Uint64(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	root, err := st.latestRoot(ctx)
	if err != nil {
		return err
	}
	l.integrated.Store(root.TreeSize)
	return nil
}

func (st *store) latestRoot(ctx context.Context) (*types.LogRootV1, error) {
	resp, err := st.srv.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: st.tree.TreeId})
	if err != nil {
		return nil, fmt.Errorf("latest root: %w", err)
	}
	var root types.LogRootV1
	if err := root.UnmarshalBinary(resp.SignedLogRoot.LogRoot); err != nil {
		return nil, fmt.Errorf("latest root: %w", err)
	}
	return &root, nil
}

// Close stops the sequencer and closes state.db. Order: stop the sequencer (it may be inside a
// Trillian transaction), then close the database.
func (l *Ledger) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	l.startOnce.Do(func() {}) // a ledger closed before Start never starts
	if l.cancel != nil {
		l.cancel()
		<-l.done
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.db.Close()
}

// AppliedIndex is the raft index of the last command applied to the state.
func (l *Ledger) AppliedIndex() uint64 { return l.applied.Load() }

// Size is the number of entries assigned an index (committed), integrated or not.
func (l *Ledger) Size() uint64 { return l.next.Load() }

// TreeSize is the size of the tree the node has computed so far.
func (l *Ledger) TreeSize() uint64 { return l.integrated.Load() }

// Unindexed is how many applied entries are not in the identity and search indexes yet: held
// in memory (and found there) until the sequencer goroutine indexes them.
func (l *Ledger) Unindexed() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.st.unindexed.held()
}

// LastBoundary is the size of the last checkpoint boundary applied.
func (l *Ledger) LastBoundary() uint64 { return l.boundary.Load() }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// remove is os.Remove that ignores a missing file.
func remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
