package cache

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Cache. The zero value of each size field picks the
// default documented on it; negative values are errors.
type Options struct {
	// MaxMemoryBytes bounds the memory held by stored responses (bodies,
	// header fields and a fixed overhead per entry), least recently used
	// first out. Default 64 MiB.
	MaxMemoryBytes int64

	// Dir, when set, holds an on-disk store: responses whose body is larger
	// than MemoryObjectBytes are recorded there directly, and entries pushed
	// out of memory move there rather than being dropped. Entries in Dir
	// survive a new Cache on the same Dir. "" keeps everything in memory.
	Dir string

	// MaxDiskBytes bounds the disk store, least recently used first out.
	// Default 1 GiB when Dir is set.
	MaxDiskBytes int64

	// MemoryObjectBytes is the largest body kept in memory when there is a
	// disk store. Default 1 MiB; never more than MaxMemoryBytes.
	MemoryObjectBytes int64

	// MaxObjectBytes is the largest body stored; larger responses are
	// streamed through. Default 16 MiB, at most the larger of the two
	// stores.
	MaxObjectBytes int64

	// DefaultTTL is the freshness lifetime given to a response without
	// explicit freshness (max-age, s-maxage, Expires) whose status is
	// cacheable by default or that is marked public. 0 leaves only the
	// RFC 9111 heuristic: 10% of the time since Last-Modified, at most a
	// day, for such responses that have one.
	DefaultTTL time.Duration

	// KeyCookies names cookies whose values are part of the cache key, as
	// a CDN's cache policy does: each value (each session) gets its own
	// stored responses, and a request whose cookies are all named here
	// may be stored without the origin marking its response public. A
	// request with any other cookie is stored and served from the store
	// only when the response says public or s-maxage (see cookies.go).
	KeyCookies []string

	// StatusHeader names the header that reports what the cache did with
	// each response, in RFC 9211 syntax (see status.go). Default
	// "Cache-Status".
	StatusHeader string

	// RevalidateTimeout bounds a background revalidation. Default 30s.
	RevalidateTimeout time.Duration

	// Now is the clock; default time.Now. Tests move it.
	Now func() time.Time

	// Logger receives the cache's warnings (disk errors) and debug notes
	// (why a response was not stored). Default: discarded.
	Logger *slog.Logger
}

// Defaults for Options.
const (
	DefaultMaxMemoryBytes    = 64 << 20
	DefaultMaxDiskBytes      = 1 << 30
	DefaultMemoryObjectBytes = 1 << 20
	DefaultMaxObjectBytes    = 16 << 20
	DefaultRevalidateTimeout = 30 * time.Second
)

// Cache is an RFC 9111 shared cache in front of an http.Handler, usually
// the edge's reverse proxy. One Cache may wrap many handlers (every route
// of an entrypoint): keys include the host.
type Cache struct {
	opts Options
	now  func() time.Time
	// keyCookieNames are the pseudo Vary names of opts.KeyCookies, sorted.
	keyCookieNames []string
	log            *slog.Logger
	statusHeader   string
	appendStatus   bool

	store   *store
	files   *diskStore
	flights flights
	stats   counters

	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup
}

// counters are the running totals behind Stats.
type counters struct {
	hits, misses, stale, revalidations, collapsed atomic.Int64
	stores, evictions, invalidations              atomic.Int64
}

// Stats is a snapshot of a Cache's counters and sizes.
type Stats struct {
	Hits          int64 // answered from the store without the origin (Collapsed included)
	Misses        int64 // sent to the origin with nothing usable stored
	Stale         int64 // answered with a stale response (stale-while-revalidate, stale-if-error, max-stale)
	Revalidations int64 // stored responses the origin was asked to validate
	Collapsed     int64 // hits that waited for another request's trip to the origin
	Stores        int64 // responses stored (refreshes after a 304 excluded)
	Evictions     int64 // entries dropped to stay within MaxMemoryBytes or MaxDiskBytes
	Invalidations int64 // entries removed by Invalidate or by an unsafe method
	Objects       int64 // entries stored now
	MemoryBytes   int64 // bytes charged to memory now
	DiskBytes     int64 // bytes on disk now
}

// New returns a Cache, loading the entries of an existing Dir.
func New(opts Options) (*Cache, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	c := &Cache{
		opts:         opts,
		now:          opts.Now,
		log:          opts.Logger,
		statusHeader: http.CanonicalHeaderKey(opts.StatusHeader),
	}
	c.appendStatus = c.statusHeader == "Cache-Status"
	for _, name := range opts.KeyCookies {
		c.keyCookieNames = append(c.keyCookieNames, cookieKeyPrefix+name)
	}
	slices.Sort(c.keyCookieNames)
	c.keyCookieNames = slices.Compact(c.keyCookieNames)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.store = &store{
		index:   make(map[string][]*entry),
		maxMem:  opts.MaxMemoryBytes,
		maxDisk: opts.MaxDiskBytes,
		stats:   &c.stats,
		log:     c.log,
	}
	if opts.Dir != "" {
		files, err := openDiskStore(opts.Dir)
		if err != nil {
			return nil, err
		}
		c.files = files
		c.store.files = files
		n := 0
		for _, e := range files.load(opts.DefaultTTL, c.statusHeader, c.log) {
			if c.keyedAsConfigured(e) && c.store.add(e) {
				n++
			} else {
				c.store.deleteFiles([]*entry{e})
			}
		}
		c.log.Info("cache: loaded disk store", "dir", opts.Dir, "entries", n)
	}
	return c, nil
}

// Validate reports settings New would refuse, without creating anything,
// so that a spec can be refused before anything changes. It does not check
// that Dir is writable; New does.
func (o Options) Validate() error {
	return o.setDefaults()
}

func (o *Options) setDefaults() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxMemoryBytes", o.MaxMemoryBytes},
		{"MaxDiskBytes", o.MaxDiskBytes},
		{"MemoryObjectBytes", o.MemoryObjectBytes},
		{"MaxObjectBytes", o.MaxObjectBytes},
		{"DefaultTTL", int64(o.DefaultTTL)},
		{"RevalidateTimeout", int64(o.RevalidateTimeout)},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: %s is negative (%d); use 0 for the default or a positive value", ErrInvalidOptions, f.name, f.v)
		}
	}
	for _, name := range o.KeyCookies {
		if err := ValidateCookieName(name); err != nil {
			return fmt.Errorf("%w; fix KeyCookies", err)
		}
	}
	if o.MaxMemoryBytes == 0 {
		o.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	if o.Dir == "" && o.MaxDiskBytes > 0 {
		return fmt.Errorf("%w: MaxDiskBytes is set but Dir is empty; set Dir for a disk store", ErrInvalidOptions)
	}
	if o.Dir != "" && o.MaxDiskBytes == 0 {
		o.MaxDiskBytes = DefaultMaxDiskBytes
	}
	if o.MemoryObjectBytes == 0 {
		o.MemoryObjectBytes = DefaultMemoryObjectBytes
	}
	o.MemoryObjectBytes = min(o.MemoryObjectBytes, o.MaxMemoryBytes)
	capacity := max(o.MaxMemoryBytes, o.MaxDiskBytes)
	if o.MaxObjectBytes == 0 {
		o.MaxObjectBytes = min(DefaultMaxObjectBytes, capacity)
	}
	if o.MaxObjectBytes > capacity {
		return fmt.Errorf("%w: MaxObjectBytes (%d) is larger than the store (%d); lower it or raise MaxMemoryBytes/MaxDiskBytes", ErrInvalidOptions, o.MaxObjectBytes, capacity)
	}
	if o.StatusHeader == "" {
		o.StatusHeader = "Cache-Status"
	}
	if o.RevalidateTimeout == 0 {
		o.RevalidateTimeout = DefaultRevalidateTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Stats returns the cache's counters and current sizes.
func (c *Cache) Stats() Stats {
	objects, mem, disk := c.store.sizes()
	return Stats{
		Hits:          c.stats.hits.Load(),
		Misses:        c.stats.misses.Load(),
		Stale:         c.stats.stale.Load(),
		Revalidations: c.stats.revalidations.Load(),
		Collapsed:     c.stats.collapsed.Load(),
		Stores:        c.stats.stores.Load(),
		Evictions:     c.stats.evictions.Load(),
		Invalidations: c.stats.invalidations.Load(),
		Objects:       objects,
		MemoryBytes:   mem,
		DiskBytes:     disk,
	}
}

// Close stops background revalidations and waits for them. With a disk
// store, it then writes the entries held in memory to disk (within
// MaxDiskBytes), so that the next Cache on the same Dir starts with them.
// Handlers must not be used after Close.
func (c *Cache) Close() error {
	c.cancel()
	c.bg.Wait()
	if c.files != nil {
		c.store.flushToDisk()
	}
	return nil
}

// Handler returns next behind the cache: GET and HEAD requests are answered
// from stored responses when RFC 9111 allows, the rest reach next, and
// responses next produces are stored when they may be. Unsafe methods
// that succeed invalidate what is stored for their URL.
func (c *Cache) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.serve(w, r, next)
	})
}
