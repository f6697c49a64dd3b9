package concurrent

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/exec-proxy/exec-proxy/bench/internal/proc"
	"github.com/exec-proxy/exec-proxy/bench/internal/workload"
)

// streamBytes is each session's download, more than any window sees: a session is ended by the
// bench, never by its command.
const streamBytes = 1 << 40

// session is one kubectl exec download whose stdout the bench counts.
type session struct {
	cmd    *exec.Cmd
	out    workload.Counter
	stderr bytes.Buffer
	done   chan struct{} // closed once kubectl has exited
}

func start(ctx context.Context, kubectl, kubeconfig string) (*session, error) {
	args := append([]string{"--kubeconfig", kubeconfig, "-n", "demo", "exec", "-i", "demo", "-c", "main", "--"}, workload.StreamCommand(streamBytes)...)
	s := &session{cmd: exec.CommandContext(ctx, kubectl, args...), done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

func (s *session) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop kills kubectl: its connection drops, and the path ends the session.
func (s *session) stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// snapshot is what is counted at one end of the window.
type snapshot struct {
	at          time.Time
	bytes       []int64
	busy, total float64            // the machine's CPU seconds
	clients     float64            // the kubectl processes' and the bench's CPU seconds
	servers     map[string]float64 // CPU seconds by server
}

func take(cluster string, sessions []*session) snapshot {
	s := snapshot{at: time.Now(), servers: map[string]float64{}}
	for _, x := range sessions {
		s.bytes = append(s.bytes, x.out.Bytes())
	}
	s.busy, s.total = proc.Machine()
	for _, x := range sessions {
		if c, err := proc.PIDCPUSeconds(strconv.Itoa(x.cmd.Process.Pid)); err == nil {
			s.clients += c
		}
	}
	if c, err := proc.PIDCPUSeconds("self"); err == nil {
		s.clients += c
	}
	for _, name := range []string{"exec-proxy", "kube-apiserver"} {
		if c, err := proc.CPUSeconds(cluster, name); err == nil {
			s.servers[name] = c
		}
	}
	return s
}

// figures are the window's between two snapshots.
func figures(a, b snapshot) Round {
	secs := b.at.Sub(a.at).Seconds()
	r := Round{Seconds: secs, ServerCores: map[string]float64{}}
	if secs <= 0 {
		return r
	}
	for i := range b.bytes {
		rate := float64(b.bytes[i]-a.bytes[i]) / (1 << 20) / secs
		r.SessionMiBps = append(r.SessionMiBps, rate)
		r.MiBps += rate
	}
	r.Jain = Jain(r.SessionMiBps)
	if total := b.total - a.total; total > 0 {
		r.MachineBusy = (b.busy - a.busy) / total
		r.ClientShare = (b.clients - a.clients) / total
	}
	for name, c := range b.servers {
		if c0, ok := a.servers[name]; ok {
			r.ServerCores[name] = (c - c0) / secs
		}
	}
	return r
}

// measure starts o.Sessions downloads together, waits until every one is flowing and a second
// more, counts each one's bytes over o.Window, and ends them.
func measure(ctx context.Context, o Options, kubectl, kubeconfig string) (Round, error) {
	sessions := make([]*session, 0, o.Sessions)
	defer func() {
		for _, s := range sessions {
			s.stop()
		}
		if err := cleanup(context.WithoutCancel(ctx), o); err != nil {
			o.Logf("concurrent: %v", err)
		}
	}()
	for range o.Sessions {
		s, err := start(ctx, kubectl, kubeconfig)
		if err != nil {
			return Round{}, err
		}
		sessions = append(sessions, s)
	}
	// Every session has its first bytes: 64 kubectl processes starting on a small machine take
	// seconds, which the window leaves out.
	deadline := time.Now().Add(2 * time.Minute)
	for flowing := 0; flowing < len(sessions); {
		flowing = 0
		for i, s := range sessions {
			if s.ended() {
				return Round{}, fmt.Errorf("session %d ended before the window: %s", i, strings.TrimSpace(s.stderr.String()))
			}
			if s.out.Bytes() > 0 {
				flowing++
			}
		}
		if time.Now().After(deadline) {
			return Round{}, fmt.Errorf("%d of %d sessions flowing after 2 minutes", flowing, len(sessions))
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return Round{}, ctx.Err()
		}
	}
	time.Sleep(time.Second)
	a := take(o.Cluster, sessions)
	select {
	case <-time.After(o.Window):
	case <-ctx.Done():
		return Round{}, ctx.Err()
	}
	b := take(o.Cluster, sessions)
	for i, s := range sessions {
		if s.ended() {
			return Round{}, fmt.Errorf("session %d ended in the window: %s", i, strings.TrimSpace(s.stderr.String()))
		}
	}
	return figures(a, b), nil
}
