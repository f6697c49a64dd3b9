//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// The reliability suite (make test-reliability) is the TestReliability* tests. Each check runs
// through a probe, which counts what the check tried and found; TestMain prints the counts as one
// table. A check reports a finding through the probe rather than failing its test itself, so
// TestReliabilityCatchesBrokenBuilds can run the same check against a deliberately broken
// exec-proxy and require findings.

// probe is one check's counts and findings.
type probe struct {
	t        *testing.T
	name     string
	quiet    bool // findings are expected (a broken build): logged, not failures
	mu       sync.Mutex
	row      summaryRow
	findings []string
}

// summaryRow is a check's line of the summary table.
type summaryRow struct {
	check                               string
	attempts, refused, sessions, errors int
	bytesChecked                        int64
	leaks                               int
	figures                             []string
}

var (
	summaryMu sync.Mutex
	summary   []summaryRow
)

// runCheck runs check as name and adds its row to the summary. A quiet probe (a broken build's)
// logs its findings instead of failing the test.
func runCheck(t *testing.T, name string, quiet bool, check func(*probe)) *probe {
	p := &probe{t: t, name: name, quiet: quiet, row: summaryRow{check: name}}
	check(p)
	p.done()
	return p
}

// finding notes what the check caught: a defect in exec-proxy.
func (p *probe) finding(format string, args ...any) {
	p.t.Helper()
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	p.findings = append(p.findings, msg)
	p.row.errors++
	p.mu.Unlock()
	if p.quiet {
		p.t.Logf("%s (expected of this build): %s", p.name, msg)
	} else {
		p.t.Errorf("%s: %s", p.name, msg)
	}
}

// count adds to the row's counters.
func (p *probe) count(attempts, refused, sessions int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.row.attempts += attempts
	p.row.refused += refused
	p.row.sessions += sessions
	p.row.bytesChecked += bytes
}

// figure records a measured value shown beside the row.
func (p *probe) figure(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.row.figures = append(p.row.figures, fmt.Sprintf(format, args...))
	p.t.Logf("%s: %s", p.name, fmt.Sprintf(format, args...))
}

// done adds the row to the summary; a broken build's row is labelled as such.
func (p *probe) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.quiet {
		p.row.check += " [broken build]"
	}
	summaryMu.Lock()
	summary = append(summary, p.row)
	summaryMu.Unlock()
}

// printSummary writes the table of every check the run made, if any.
func printSummary(w io.Writer) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	if len(summary) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCHECK\tATTEMPTS\tREFUSED\tSESSIONS\tBYTES CHECKED\tERRORS\tLEAKS\tFIGURES")
	for _, r := range summary {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.check, r.attempts, r.refused, r.sessions,
			r.bytesChecked, r.errors, r.leaks, strings.Join(r.figures, "; "))
	}
	_ = tw.Flush()
}

// userTLS trusts the cluster CA and presents user's client certificate (none for ""), to
// kube-apiserver or straight to exec-proxy's own port.
func userTLS(t *testing.T, user string) *tls.Config {
	t.Helper()
	pki := filepath.Join(clusterDir(), "pki")
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cfg := &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}}
	if user != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "user-"+user+".crt"), filepath.Join(pki, "user-"+user+".key"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

const execProxyAddr = "127.0.0.1:18443"

// processFigures is what exec-proxy's /metrics and /proc say of its resources.
type processFigures struct {
	goroutines, fds int
	rssKiB          int64
}

// execProxyFigures reads exec-proxy's goroutines and open descriptors from its /metrics, and its
// resident memory from /proc.
func execProxyFigures(t *testing.T) processFigures {
	t.Helper()
	m := execProxyMetrics(t)
	f := processFigures{goroutines: int(m["go_goroutines"]), fds: int(m["process_open_fds"])}
	if f.goroutines == 0 || f.fds == 0 {
		t.Fatalf("no go_goroutines or process_open_fds in exec-proxy's /metrics")
	}
	f.rssKiB = execProxyRSS(t)
	return f
}

// execProxyMetrics reads exec-proxy's /metrics: each series (name and labels as printed) and its value.
func execProxyMetrics(t *testing.T) map[string]float64 {
	t.Helper()
	return metricsAt(t, "exec-proxy's", execProxyAddr)
}

// metricsAt reads the /metrics of the server at address as admin: each series and its value.
func metricsAt(t *testing.T, whose, address string) map[string]float64 {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: userTLS(t, "admin")}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + address + "/metrics")
	if err != nil {
		t.Fatalf("reading %s metrics: %v", whose, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reading %s metrics: HTTP %d: %s", whose, resp.StatusCode, body)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out
}

func execProxyRSS(t *testing.T) int64 {
	t.Helper()
	kib, err := readRSS()
	if err != nil {
		t.Fatal(err)
	}
	return kib
}

// readRSS is exec-proxy's resident memory in KiB, from /proc.
func readRSS() (int64, error) {
	pid, err := os.ReadFile(filepath.Join(clusterDir(), "run", "exec-proxy.pid"))
	if err != nil {
		return 0, err
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strconv.ParseInt(strings.Fields(line)[1], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS for exec-proxy")
}

// leakCheck waits for exec-proxy's goroutines and descriptors to come back to what they were
// before the check (with slack for the informers' and HTTP keep-alive's own), and counts a leak
// for each that does not.
func (p *probe) leakCheck(before processFigures) {
	p.t.Helper()
	var now processFigures
	if !waitUntil(30*time.Second, func() bool {
		now = execProxyFigures(p.t)
		return now.goroutines <= before.goroutines+10 && now.fds <= before.fds+5
	}) {
		p.mu.Lock()
		p.row.leaks++
		p.mu.Unlock()
		p.finding("exec-proxy holds %d goroutines and %d descriptors, %d and %d before the check",
			now.goroutines, now.fds, before.goroutines, before.fds)
	}
	p.figure("goroutines %d→%d, fds %d→%d", before.goroutines, now.goroutines, before.fds, now.fds)
}
