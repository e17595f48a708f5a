package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden with the actual output")

// TestGolden runs each script in testdata/golden against a fresh data
// directory, in-process, and compares the transcript.
//
// A script is a sequence of cases:
//
//	# comments and blank lines before a case are kept by -update
//	$ lakehouse branch create alice.dev --from-ref main
//	created branch alice.dev at <commit-002> (from main)
//	! error: lines on stderr start with "! "
//	[exit 4]
//
// The command line is split like a shell would (single and double quotes),
// may start with VAR=value assignments, and expands $DATA (the data
// directory), $TESTDATA (the repository's testdata/) and {x*N} (N copies of
// x). Three directives act on the store: `$ @lock` opens the catalog file in
// the test, holding its lock; `$ @unlock` closes it; `$ @failed-run` records
// a run (id 0c0ffee0deadbeef) whose Python model raised, as a run that
// failed would leave it (golden scripts run no functions).
//
// Output is normalized so it does not depend on the machine or the run:
// commit ids become <commit-NNN> (numbered by first appearance, same width
// as a short id), UUIDs <uuid>, Iceberg snapshot ids <snapshot>, times
// not on the test clock (which starts at 2001-01-01T00:00:00Z and ticks a
// second per reading) YYYY-MM-DDTHH:MM:SSZ, and paths $DATA and $TESTDATA.
//
// Regenerate with `go test ./cli -run TestGolden -update`.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	testdata, err := filepath.Abs(filepath.Join("..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	// Not parallel: urfave/cli keeps its help flag in a package variable
	// that every app run writes to. Times people read are in local time:
	// UTC here, whatever the machine's zone.
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runGolden(t, file, testdata, false)
		})
	}
}

// remoteSkip lists the golden scripts that do not run against a server,
// each with why. Every other script runs twice, and must print the same.
var remoteSkip = map[string]string{
	// The file lock of the catalog: a server holds the catalog alone, and
	// its clients never open it.
	"lock": "tests the catalog file lock of embedded mode",
	// info describes the local data dir and its catalog file, which the
	// test's server (sharing $DATA) creates before the first command;
	// testdata/golden/remote/info.txt is its transcript with a server.
	"info": "describes the embedded data dir (remote/info.txt describes the server)",
	// -O parquet is written by DuckDB locally and by the Arrow writer from
	// a server's stream: the same rows and types in files of other sizes.
	"outputs": "parquet files written by two writers differ in size",
}

// TestGoldenRemote runs each script of testdata/golden again, with every
// command a client of a `lakehouse serve` the test starts on loopback
// ports (over the same data dir, with the same test clock), and expects
// the same transcript: the commands do not know which side they talk to.
// The scripts of testdata/golden/remote run only this way (their output
// names the server, whose address reads $ADDR); -update rewrites them.
func TestGoldenRemote(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	remoteOnly, err := filepath.Glob(filepath.Join("testdata", "golden", "remote", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(remoteOnly) == 0 {
		t.Fatal("no remote golden files")
	}
	testdata, err := filepath.Abs(filepath.Join("..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			if *update {
				t.Skip("-update writes the embedded transcripts in TestGolden")
			}
			if why, ok := remoteSkip[name]; ok {
				t.Skip(why)
			}
			runGolden(t, file, testdata, true)
		})
	}
	for _, file := range remoteOnly {
		t.Run("remote/"+strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runGolden(t, file, testdata, true)
		})
	}
}

// startServer runs `lakehouse serve` over dataDir in the background on
// loopback ports and returns its Flight address; the test's cleanup
// stops it.
func startServer(t *testing.T, dataDir string, clock *testClock) string {
	t.Helper()
	out := &syncBuffer{}
	// Where the transcripts point clients: no containerd (info).
	env := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir,
		launchers.SocketEnv: filepath.Join(dataDir, "no-containerd.sock")}
	e := &Env{
		Stdin:  strings.NewReader(""),
		Stdout: out,
		Stderr: out,
		Getenv: func(k string) string { return env[k] },
		Now:    clock.now,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"lakehouse", "serve", "--flight-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, e)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Errorf("the server did not stop:\n%s", out.String())
		}
	})
	addrRE := regexp.MustCompile(`flight on (grpc://\S+),`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := addrRE.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("the server stopped (exit %d):\n%s", code, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("the server did not start:\n%s", out.String())
	return ""
}

type goldenCase struct {
	pre  []string // comments and blank lines before the case
	cmd  string
	want []string
	line int
}

func parseGolden(t *testing.T, path string) (cases []goldenCase, trailer []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var cur *goldenCase
	var pending []string
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "$ "):
			if cur != nil {
				cur.want, pending = splitTrailer(cur.want)
				cases = append(cases, *cur)
			}
			cur = &goldenCase{pre: pending, cmd: strings.TrimPrefix(l, "$ "), line: i + 1}
			pending = nil
		case cur == nil:
			pending = append(pending, l)
		default:
			cur.want = append(cur.want, l)
		}
	}
	if cur != nil {
		cur.want, pending = splitTrailer(cur.want)
		cases = append(cases, *cur)
	}
	return cases, pending
}

// splitTrailer separates the trailing blank and comment lines of a case's
// output, which belong to the next case.
func splitTrailer(out []string) (body, trailer []string) {
	n := len(out)
	for n > 0 && (strings.TrimSpace(out[n-1]) == "" || strings.HasPrefix(out[n-1], "#")) {
		n--
	}
	return out[:n], out[n:]
}

func runGolden(t *testing.T, path, testdata string, remote bool) {
	cases, trailer := parseGolden(t, path)
	dataDir := t.TempDir()
	clock := &testClock{t: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)}
	norm := newNormalizer(dataDir, testdata)
	addr := ""
	if remote {
		addr = startServer(t, dataDir, clock)
		norm.paths = append([][2]string{{addr, "$ADDR"}}, norm.paths...)
	}
	var locked *bolt.Store
	defer func() {
		if locked != nil {
			locked.Close()
		}
	}()

	var out bytes.Buffer
	failed := false
	for i, c := range cases {
		if i > 0 {
			out.WriteString("\n")
		}
		for _, l := range trimLeadingBlank(c.pre) {
			out.WriteString(l + "\n")
		}
		out.WriteString("$ " + c.cmd + "\n")

		var got []string
		switch c.cmd {
		case "@lock":
			s, err := bolt.Open(filepath.Join(dataDir, "catalog.db"), bolt.Options{})
			if err != nil {
				t.Fatalf("%s:%d: @lock: %v", path, c.line, err)
			}
			locked = s
		case "@failed-run":
			writeFailedRun(t, dataDir)
		case "@unlock":
			if locked == nil {
				t.Fatalf("%s:%d: @unlock without @lock", path, c.line)
			}
			if err := locked.Close(); err != nil {
				t.Fatalf("%s:%d: @unlock: %v", path, c.line, err)
			}
			locked = nil
		default:
			got = runCase(t, path, c, dataDir, testdata, addr, clock, norm)
		}
		for _, l := range got {
			out.WriteString(l + "\n")
		}
		if !*update && !equalLines(got, c.want) {
			failed = true
			t.Errorf("%s:%d: $ %s\n--- want\n%s\n--- got\n%s", path, c.line, c.cmd,
				strings.Join(c.want, "\n"), strings.Join(got, "\n"))
		}
	}
	if len(trimLeadingBlank(trailer)) > 0 {
		out.WriteString("\n")
		for _, l := range trimLeadingBlank(trailer) {
			out.WriteString(l + "\n")
		}
	}
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if failed {
		t.Logf("rerun with -update to accept the new output")
	}
}

func runCase(t *testing.T, path string, c goldenCase, dataDir, testdata, addr string, clock *testClock, norm *normalizer) []string {
	words, err := splitCommand(c.cmd, map[string]string{"DATA": dataDir, "TESTDATA": testdata})
	if err != nil {
		t.Fatalf("%s:%d: %v", path, c.line, err)
	}
	env := map[string]string{
		envDataDir: dataDir,
		envUser:    "tester",
		"HOME":     dataDir,
	}
	if addr != "" {
		env[envAddr] = addr
	}
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		k, v, _ := strings.Cut(words[0], "=")
		env[k] = v
		words = words[1:]
	}
	if len(words) == 0 || words[0] != "lakehouse" {
		t.Fatalf("%s:%d: a command starts with `lakehouse`: %s", path, c.line, c.cmd)
	}
	var stdout, stderr bytes.Buffer
	e := &Env{
		Stdin:  strings.NewReader(""),
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string { return env[k] },
		Now:    clock.now,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, words, e)

	var got []string
	for _, l := range splitLines(stdout.String()) {
		got = append(got, norm.apply(l))
	}
	for _, l := range splitLines(stderr.String()) {
		got = append(got, "! "+norm.apply(l))
	}
	if code != 0 {
		got = append(got, fmt.Sprintf("[exit %d]", code))
	}
	return got
}

func splitLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return lines
}

func trimLeadingBlank(ls []string) []string {
	for len(ls) > 0 && strings.TrimSpace(ls[0]) == "" {
		ls = ls[1:]
	}
	return ls
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testClock is the commit clock of a script: it starts at a fixed time and
// ticks one second per reading, so commit times (and time refs) are
// predictable.
// A server started by the test reads it too.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

var repeatRE = regexp.MustCompile(`\{(.)\*(\d+)\}`)

// splitCommand splits a command line into words like a shell: whitespace
// separates, single quotes are literal, double quotes group, $NAME expands
// from vars. {x*N} expands to N copies of x.
func splitCommand(s string, vars map[string]string) ([]string, error) {
	s = repeatRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := repeatRE.FindStringSubmatch(m)
		var n int
		fmt.Sscan(sub[2], &n)
		return strings.Repeat(sub[1], n)
	})
	var words []string
	var cur strings.Builder
	inWord := false
	expand := func(i int) int {
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z') {
			j++
		}
		name := s[i+1 : j]
		v, ok := vars[name]
		if !ok {
			cur.WriteString(s[i:j])
		} else {
			cur.WriteString(v)
		}
		return j
	}
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 2
		case ch == '"':
			inWord = true
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '$' {
					i = expand(i)
					continue
				}
				cur.WriteByte(s[i])
				i++
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \" in %q", s)
			}
			i++
		case ch == '$':
			inWord = true
			i = expand(i)
		default:
			inWord = true
			cur.WriteByte(ch)
			i++
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// normalizer rewrites the parts of output that differ between runs.
type normalizer struct {
	paths   [][2]string // longest first
	commits map[string]string
}

var (
	uuidRE     = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	commitRE   = regexp.MustCompile(`\b[0-9a-f]{12}(?:[0-9a-f]{52})?\b`)
	timeRE     = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})`)
	snapshotRE = regexp.MustCompile(`\b\d{10,20}\b`)
	// Data file names start with writer task numbers that vary between runs.
	dataFileRE = regexp.MustCompile(`\b\d{5}-\d+-<uuid>-\d{5}\.parquet`)
	// Sizes of files written by parallel partition writers vary with row order.
	sizeRE = regexp.MustCompile(`\b\d+(?:\.\d)? (?:B|KiB|MiB)\b`)
	// How functions are isolated depends on the machine (root, kernel).
	isolationRE = regexp.MustCompile(`(?m)^(isolation: +|  "isolation": ")(?:isolated|functions are NOT isolated)[^"\n]*`)
)

func newNormalizer(dataDir, testdata string) *normalizer {
	n := &normalizer{commits: map[string]string{}}
	add := func(p, name string) {
		n.paths = append(n.paths, [2]string{p, name})
		if r, err := filepath.EvalSymlinks(p); err == nil && r != p {
			n.paths = append(n.paths, [2]string{r, name})
		}
	}
	add(dataDir, "$DATA")
	add(testdata, "$TESTDATA")
	sort.Slice(n.paths, func(i, j int) bool { return len(n.paths[i][0]) > len(n.paths[j][0]) })
	return n
}

func (n *normalizer) apply(s string) string {
	for _, p := range n.paths {
		s = strings.ReplaceAll(s, p[0], p[1])
	}
	s = uuidRE.ReplaceAllString(s, "<uuid>")
	s = isolationRE.ReplaceAllString(s, "${1}<isolation>")
	s = dataFileRE.ReplaceAllString(s, "<data-file>.parquet")
	s = sizeRE.ReplaceAllString(s, "<size>")
	s = timeRE.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "2001-") {
			return m // the test clock
		}
		return "YYYY-MM-DDTHH:MM:SSZ"
	})
	s = commitRE.ReplaceAllStringFunc(s, func(m string) string {
		key := m[:12]
		if _, ok := n.commits[key]; !ok {
			n.commits[key] = fmt.Sprintf("<commit-%03d>", len(n.commits)+1)
		}
		return n.commits[key]
	})
	s = snapshotRE.ReplaceAllString(s, "<snapshot>")
	s = strings.ReplaceAll(s, runtime.Version(), "goX.Y")
	s = strings.ReplaceAll(s, runtime.GOOS+"/"+runtime.GOARCH, "OS/ARCH")
	return s
}

// writeFailedRun records run 0c0ffee0deadbeef: model second raised
// ZeroDivisionError after first succeeded; third was skipped.
func writeFailedRun(t *testing.T, dataDir string) {
	t.Helper()
	runs, err := runrec.Open(filepath.Join(dataDir, "runs"))
	if err != nil {
		t.Fatal(err)
	}
	at := func(s float64) time.Time {
		return time.Date(2001, 1, 1, 0, 1, 0, 0, time.UTC).Add(time.Duration(s * float64(time.Second)))
	}
	rec := &runrec.Record{
		ID: "0c0ffee0deadbeef", Project: "failing", User: "tester", Target: "tester.dev",
		Status: runrec.StatusFailed, Error: "model second failed: ZeroDivisionError: division by zero", FailedModel: "second",
		Params: map[string]any{"fail": "exception"}, ProjectDir: "/home/tester/failing", Launcher: "process",
		StartCommit: strings.Repeat("ab", 32), CodeHash: strings.Repeat("cd", 32), Files: []string{"lakehouse.yml", "models.py"},
		Models: []*runrec.Model{
			{Name: "first", Kind: "model", Language: "python", State: runrec.StateDone, Started: at(1), Ended: at(2), Seconds: 1, Rows: 400},
			{Name: "second", Kind: "model", Language: "python", State: runrec.StateFailed, Started: at(2), Ended: at(2.5), Seconds: 0.5,
				Error: "model second failed: ZeroDivisionError: division by zero",
				Traceback: "  File \"/home/tester/failing/models.py\", line 20, in second\n" +
					"    return data.num_rows / 0\n" +
					"ZeroDivisionError: division by zero\n"},
			{Name: "third", Kind: "model", Language: "python", State: runrec.StateSkipped},
		},
		Started: at(0), Ended: at(3), Duration: 3,
	}
	if err := runs.Create(rec); err != nil {
		t.Fatal(err)
	}
	logs, err := runs.OpenLogs(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []runrec.LogLine{
		{Time: at(1.1), Model: "first", Stream: "stdout", Text: "first started"},
		{Time: at(2.1), Model: "second", Stream: "stdout", Text: "second started"},
		{Time: at(2.2), Model: "second", Stream: "stderr", Text: "a warning on stderr"},
	} {
		logs.Write(l)
	}
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}
}
