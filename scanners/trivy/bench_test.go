package trivy

import (
	"context"
	"testing"
)

// BenchmarkScan is the time of one scan of the Debian test image (a dpkg
// database, a Go binary and an npm package; the planted database): cold,
// on a cache holding only the vulnerability database, so trivy fetches
// and analyses every layer; warm, on a cache that already holds the
// image's layers, so only the database is consulted.
func BenchmarkScan(b *testing.B) {
	f := setup(b)
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			r := f.runner(b, nil)
			b.StartTimer()
			if _, err := r.Scan(ctx, f.debian, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		r := f.runner(b, nil)
		if _, err := r.Scan(ctx, f.debian, nil); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := r.Scan(ctx, f.debian, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
