package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abc4logistics/tankguard/cloud/console/auth"
)

// childEnv makes this test binary run the cloud (run with the
// space-separated arguments in the variable) instead of the tests, so
// that the flood test measures a real cloud process of its own.
const childEnv = "TANKGUARD_CLOUD_CHILD"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		if err := run(strings.Fields(args), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "cloud child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// floodParallel is how many wrong sign-ins are sent at once.
const floodParallel = 50

// floodCloud starts a cloud process whose only console user, admin, has an
// argon2id hash (64 MiB per check, the costly case) of password, and
// returns its console URL and pid.
func floodCloud(t testing.TB, password string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	h, err := auth.HashPassword(password, auth.AlgArgon2id)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := json.Marshal(auth.UsersFile{Users: []auth.User{{Name: "admin", Role: auth.RoleAdmin, PasswordHash: h}}})
	usersFile := filepath.Join(dir, "users.json")
	if err := os.WriteFile(usersFile, users, 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join([]string{"-data", filepath.Join(dir, "cloud"),
		"-broker-listen", "127.0.0.1:0", "-broker-plain-tcp", "-http", "127.0.0.1:0", "-log-level", "error", "-users", usersFile}, " "))
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	url := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "console: "); ok {
				url <- strings.TrimSuffix(v, "/")
			}
		}
	}()
	select {
	case u := <-url:
		return u, cmd.Process.Pid
	case <-time.After(60 * time.Second):
		t.Fatal("cloud child did not print its console URL within 60 s")
	}
	return "", 0
}

func signIn(t testing.TB, base, name, password string) int {
	body := fmt.Sprintf(`{"name":%q,"password":%q}`, name, password)
	res, err := http.Post(base+"/api/login", "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// peakRSSMB returns the peak resident set (VmHWM) of process pid in MB.
func peakRSSMB(t testing.TB, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// flood sends floodParallel wrong sign-ins for admin at once, then the
// right password, and returns the status codes of the wrong ones and the
// right one's.
func flood(t testing.TB, base, password string) (map[int]int, int) {
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range floodParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := signIn(t, base, "admin", fmt.Sprintf("wrong-%d", i))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return codes, signIn(t, base, "admin", password)
}

// TestLoginFloodMemory: 50 parallel wrong sign-ins against a real cloud
// process keep it below 150 MB and lock the name out, so the right
// password is refused too (issue 15, observation 2: 20 parallel wrong
// sign-ins took the cloud from 35 to 1,318 MB).
func TestLoginFloodMemory(t *testing.T) {
	const password = "the-right-password"
	base, pid := floodCloud(t, password)
	codes, right := flood(t, base, password)
	rss := peakRSSMB(t, pid)
	t.Logf("%d parallel wrong sign-ins: %v; right password then %d; cloud peak RSS %.1f MB", floodParallel, codes, right, rss)
	if rss >= 150 {
		t.Errorf("cloud peak RSS %.1f MB under the flood, want below 150", rss)
	}
	if codes[401] > auth.FreeFailures || codes[429] < floodParallel-auth.FreeFailures {
		t.Errorf("wrong sign-ins answered %v, want at most %d x 401 and the rest 429", codes, auth.FreeFailures)
	}
	if right != http.StatusTooManyRequests {
		t.Errorf("right password during the lock-out: %d, want 429", right)
	}
}

// BenchmarkLoginFlood reports the cloud's peak RSS under 50 parallel
// wrong sign-ins for an argon2id user (login_flood_rss_mb).
func BenchmarkLoginFlood(b *testing.B) {
	const password = "the-right-password"
	var rss float64
	for range b.N {
		base, pid := floodCloud(b, password)
		b.ResetTimer()
		flood(b, base, password)
		b.StopTimer()
		rss = max(rss, peakRSSMB(b, pid))
	}
	b.ReportMetric(rss, "login_flood_rss_mb:MB")
}
