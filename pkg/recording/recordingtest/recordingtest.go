// Package recordingtest helps test what writes and feeds recordings: it reads asciicast files,
// makes slow and failing disks, and keeps what a session's frame readers record.
package recordingtest

import (
	"bufio"
	"encoding/json"
	"os"
	"sync"
	"testing"
)

// ReadCast reads an asciicast v2 file: its header and its events.
func ReadCast(t *testing.T, path string) (map[string]interface{}, [][]interface{}) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20) // an event carries up to 64 KiB of data (a recording's chunk), escaped
	var header map[string]interface{}
	var events [][]interface{}
	for i := 0; sc.Scan(); i++ {
		if i == 0 {
			if err := json.Unmarshal(sc.Bytes(), &header); err != nil {
				t.Fatalf("header: %v", err)
			}
			continue
		}
		var ev []interface{}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return header, events
}

// GatedFile is a recording file on a disk that takes nothing until Release is closed, or fails.
type GatedFile struct {
	F       *os.File
	Release <-chan struct{}
	Fail    error
}

func (g *GatedFile) Write(p []byte) (int, error) {
	if g.Fail != nil {
		return 0, g.Fail
	}
	<-g.Release
	return g.F.Write(p)
}

func (g *GatedFile) Close() error { return g.F.Close() }

// Event is one event a Sink was given.
type Event struct{ Kind, Data string }

// Sink is a recording.Sink that keeps the events it is given, for tests of the frame readers.
type Sink struct {
	RecordStdin bool
	mu          sync.Mutex
	events      []Event
}

func (s *Sink) Add(kind string, data []byte) {
	if kind == "i" && !s.RecordStdin {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, Event{Kind: kind, Data: string(data)})
}

func (s *Sink) Stdin() bool    { return s.RecordStdin }
func (s *Sink) Path() string   { return "" }
func (s *Sink) Dropped() int64 { return 0 }
func (s *Sink) Close() error   { return nil }
func (s *Sink) Discard()       {}

// Events are the events given so far.
func (s *Sink) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}
