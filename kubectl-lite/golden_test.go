package kubectl

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kubelite/api"
)

// update rewrites the golden files: go test ./kubectl-lite/ -update
var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// checkGolden compares got with testdata/<name>.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

// testNow is the clock of every printer and describer test.
var testNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// ago is a timestamp d before testNow.
func ago(d time.Duration) api.Time { return api.NewTime(testNow.Add(-d)) }

func agoPtr(d time.Duration) *api.Time {
	t := ago(d)
	return &t
}
