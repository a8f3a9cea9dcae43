package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOffsetClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offset")
	c := &offsetClock{path: path, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	near := func(want time.Duration) {
		t.Helper()
		c.checked = time.Time{} // look at the file now
		if got := time.Until(c.now()); got < want-time.Second || got > want+time.Second {
			t.Fatalf("clock is %s from now, want about %s", got, want)
		}
	}
	near(0) // no file: no offset
	if err := os.WriteFile(path, []byte("-1h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	near(-time.Hour)
	if err := os.WriteFile(path, []byte("90m"), 0o644); err != nil {
		t.Fatal(err)
	}
	near(90 * time.Minute)
	if err := os.WriteFile(path, []byte("soon"), 0o644); err != nil {
		t.Fatal(err)
	}
	near(0) // malformed: no offset
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	near(0)
}
