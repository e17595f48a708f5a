package envcache

import "sync"

// DownloadProgress is how far the downloads of a Cache have got, summed
// over every file it has started to download.
type DownloadProgress struct {
	// Files are the downloads started, Done those complete.
	Files, Done int
	// Bytes have arrived of the TotalBytes the servers announced (a file
	// whose size is not announced counts what has arrived).
	Bytes, TotalBytes int64
}

// downloads sums the Cache's downloads for Config.Progress.
type downloads struct {
	mu     sync.Mutex
	report func(DownloadProgress) // nil: nothing is counted
	p      DownloadProgress
}

// begin counts a download of size bytes (-1: unknown). add counts bytes
// arrived, from one goroutine at a time; end marks it complete (or
// failed) and may be called more than once.
func (d *downloads) begin(size int64) (add func(n int), end func()) {
	if d.report == nil {
		return func(int) {}, func() {}
	}
	d.mu.Lock()
	d.p.Files++
	if size > 0 {
		d.p.TotalBytes += size
	}
	d.report(d.p)
	d.mu.Unlock()
	var ended sync.Once
	add = func(n int) {
		if n <= 0 {
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		d.p.Bytes += int64(n)
		if size < 0 {
			d.p.TotalBytes += int64(n)
		}
		d.report(d.p)
	}
	end = func() {
		ended.Do(func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.p.Done++
			d.report(d.p)
		})
	}
	return add, end
}

// countingWriter passes what is written to it to add.
type countingWriter func(n int)

func (w countingWriter) Write(p []byte) (int, error) {
	w(len(p))
	return len(p), nil
}
