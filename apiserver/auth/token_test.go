package auth

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureTokenCreatesAndReuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "token")
	first, err := EnsureToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := hex.DecodeString(first); err != nil || len(raw) != 32 {
		t.Errorf("token %q is not 32 bytes in hex", first)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("token file mode %v, want 0600", got)
	}

	second, err := EnsureToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("second EnsureToken = %q, want the stored %q", second, first)
	}

	other, err := EnsureToken(filepath.Join(t.TempDir(), "token"))
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Error("two new tokens are equal")
	}
}

func TestEnsureTokenReadsExisting(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
		wantErr bool
	}{
		{name: "chosen by the operator", content: "s3cret-Token_1\n", want: "s3cret-Token_1"},
		{name: "surrounded by white space", content: "  abc \r\n", want: "abc"},
		{name: "empty", content: "", wantErr: true},
		{name: "only white space", content: " \n\t", wantErr: true},
		{name: "two words", content: "abc def", wantErr: true},
		{name: "not ASCII", content: "tökén", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := EnsureToken(path)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("EnsureToken = %q, want an error", got)
				}
				if data, _ := os.ReadFile(path); string(data) != tt.content {
					t.Errorf("bad token file was changed to %q", data)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("EnsureToken = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnsureServerTokens(t *testing.T) {
	dataDir := t.TempDir()
	authDir := filepath.Join(dataDir, "server", "auth")
	published := filepath.Join(dataDir, "node-token")
	caPEM := []byte("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n")

	first, err := EnsureServerTokens(authDir, published, caPEM)
	if err != nil {
		t.Fatal(err)
	}
	if first.Admin == "" || first.Node == "" || first.Admin == first.Node {
		t.Fatalf("tokens %+v: want two distinct tokens", first)
	}
	for _, path := range []string{
		filepath.Join(authDir, adminTokenFile),
		filepath.Join(authDir, nodeTokenFile),
		published,
	} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, got)
		}
	}
	join := JoinToken(caPEM, first.Node)
	if got := string(mustReadFile(t, published)); got != join+"\n" {
		t.Errorf("published node token %q, want %q", got, join+"\n")
	}
	if hash, secret := ParseJoinToken(join); secret != first.Node || !VerifyCA(caPEM, hash) || VerifyCA([]byte("other"), hash) {
		t.Errorf("join token %q parses to hash %q secret %q", join, hash, secret)
	}
	if hash, secret := ParseJoinToken(first.Node); hash != "" || secret != first.Node {
		t.Errorf("a plain token parses to hash %q secret %q", hash, secret)
	}

	// A restart keeps both tokens and repairs a tampered published copy.
	if err := os.WriteFile(published, []byte("stale\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	second, err := EnsureServerTokens(authDir, published, caPEM)
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("after restart tokens are %+v, want %+v", second, first)
	}
	if got := string(mustReadFile(t, published)); got != join+"\n" {
		t.Errorf("published node token %q after restart, want %q", got, join+"\n")
	}

	users := second.Users()
	if u := users[second.Admin]; u.Name != AdminUserName || !u.InGroup(GroupMasters) {
		t.Errorf("admin token authenticates %+v", u)
	}
	if u := users[second.Node]; u.Name != NodeBootstrapUserName || !u.InGroup(GroupNodes) {
		t.Errorf("node token authenticates %+v", u)
	}
}
