package cache

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// serveEntry answers r from a stored response: the stored header fields, a
// computed Age, the cache-status value, and the body (none for HEAD). A
// client's If-None-Match or If-Modified-Since that the entry satisfies gets a
// 304; a Range on a stored 200 is served by http.ServeContent. It fails only
// when an entry's file has gone (evicted or replaced since the lookup),
// before anything is written, so the caller can go to the origin instead.
func (c *Cache) serveEntry(w http.ResponseWriter, r *http.Request, e *entry, now time.Time, status string) error {
	var file *os.File
	withBody := r.Method != http.MethodHead && bodyAllowed(e.status) && e.method == http.MethodGet
	if withBody && e.file != "" {
		f, err := os.Open(e.file)
		if err != nil {
			return err
		}
		defer f.Close()
		file = f
	}

	h := w.Header()
	// The stored slices are clipped (entry.header is a Clone), so a later
	// Add by a handler up the chain reallocates instead of writing into
	// the entry; Set and Del replace or drop the slice.
	for k, v := range e.header {
		h[k] = v
	}
	h["Age"] = []string{strconv.FormatInt(int64(e.age(now)/time.Second), 10)}
	c.setStatus(h, status)

	if notModified(r, e) {
		for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding"} {
			delete(h, k)
		}
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if withBody && e.status == http.StatusOK && r.Header.Get("Range") != "" {
		var body io.ReadSeeker = bytes.NewReader(e.body)
		if file != nil {
			body = io.NewSectionReader(file, 0, e.size)
		}
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = nil // never sniff: send what the origin sent
		}
		http.ServeContent(w, r, "", e.lastModified, body)
		return nil
	}
	w.WriteHeader(e.status)
	if !withBody {
		return nil
	}
	if file == nil {
		_, _ = w.Write(e.body)
		return nil
	}
	// The body is at the start of the file: a LimitedReader of an *os.File
	// lets net/http send it with sendfile; other writers get a pooled
	// buffer.
	buf := copyBufs.Get().(*[]byte)
	_, _ = io.CopyBuffer(w, &io.LimitedReader{R: file, N: e.size}, *buf)
	copyBufs.Put(buf)
	return nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// notModified evaluates a client's validators against a stored 200 (RFC 9110
// section 13.2.2): If-None-Match by weak comparison, else If-Modified-Since.
func notModified(r *http.Request, e *entry) bool {
	if e.status != http.StatusOK {
		return false
	}
	if inm, ok := r.Header["If-None-Match"]; ok {
		return e.etag != "" && etagListMatches(inm, e.etag)
	}
	ims := r.Header.Get("If-Modified-Since")
	if ims == "" || e.lastModified.IsZero() {
		return false
	}
	t, err := http.ParseTime(ims)
	return err == nil && !e.lastModified.After(t)
}

// etagListMatches reports whether an If-None-Match field lists etag, by
// weak comparison, or is "*".
func etagListMatches(lines []string, etag string) bool {
	want := strings.TrimPrefix(etag, "W/")
	for _, line := range lines {
		for tag := range strings.SplitSeq(line, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
				return true
			}
		}
	}
	return false
}
