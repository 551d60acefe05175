package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records decodes JSON lines, failing the test on anything else.
func records(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON line (%v): %q", err, line)
		}
		recs = append(recs, r)
	}
	return recs
}

func messages(t *testing.T, out string) []string {
	t.Helper()
	var msgs []string
	for _, r := range records(t, out) {
		msgs = append(msgs, r["level"].(string)+":"+r["message"].(string))
	}
	return msgs
}

func TestNewWritesJSONAndFollowsTheSwitch(t *testing.T) {
	var buf bytes.Buffer
	log, sw := New(&buf, false)
	if sw.Level() != zerolog.InfoLevel {
		t.Errorf("level = %v, want info outside debug mode", sw.Level())
	}
	log.Debug().Msg("hidden")
	log.Info().Str("k", "v").Msg("shown")
	sw.SetLevel(LevelFor(true)) // debug_mode switched on live
	log.Debug().Msg("now shown")
	sw.SetLevel(LevelFor(false))
	log.Debug().Msg("hidden again")
	log.Warn().Msg("warned")

	recs := records(t, buf.String())
	got := messages(t, buf.String())
	want := []string{"info:shown", "debug:now shown", "warn:warned"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("logged %v, want %v", got, want)
	}
	if recs[0]["k"] != "v" {
		t.Errorf("field k = %v, want v", recs[0]["k"])
	}
	if _, ok := recs[0]["time"].(string); !ok {
		t.Errorf("record has no timestamp: %v", recs[0])
	}
}

func TestNewDebugWritesConsoleFormat(t *testing.T) {
	var buf bytes.Buffer
	log, sw := New(&buf, true)
	if sw.Level() != zerolog.DebugLevel {
		t.Errorf("level = %v, want debug in debug mode", sw.Level())
	}
	log.Debug().Str("actor", "router").Msg("resizing")
	out := buf.String()
	if json.Valid(bytes.TrimSpace(buf.Bytes())) {
		t.Fatalf("debug mode wrote JSON, want console format: %s", out)
	}
	for _, want := range []string{"DBG", "resizing", "actor=", "router"} {
		if !strings.Contains(out, want) {
			t.Errorf("console line %q lacks %q", out, want)
		}
	}
	// Debug mode switched off live: the format stays, the level follows.
	buf.Reset()
	sw.SetLevel(LevelFor(false))
	log.Debug().Msg("hidden")
	log.Info().Msg("kept")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "kept") || !strings.Contains(out, "INF") {
		t.Errorf("after SetLevel(info): %q", out)
	}
}

func TestLevelFor(t *testing.T) {
	if LevelFor(true) != zerolog.DebugLevel || LevelFor(false) != zerolog.InfoLevel {
		t.Errorf("LevelFor(true, false) = %v, %v; want debug, info", LevelFor(true), LevelFor(false))
	}
}

func TestLevelSwitchDropsBelowItsLevel(t *testing.T) {
	var buf bytes.Buffer
	sw := NewLevelSwitch(&buf, zerolog.WarnLevel)
	log := zerolog.New(sw).Level(zerolog.TraceLevel)
	steps := []struct {
		set  zerolog.Level
		want []string
	}{
		{zerolog.WarnLevel, []string{"warn:m", "error:m"}},
		{zerolog.InfoLevel, []string{"info:m", "warn:m", "error:m"}},
		{zerolog.TraceLevel, []string{"trace:m", "debug:m", "info:m", "warn:m", "error:m"}},
		{zerolog.ErrorLevel, []string{"error:m"}},
		{zerolog.Disabled, nil},
	}
	for _, st := range steps {
		buf.Reset()
		sw.SetLevel(st.set)
		if sw.Level() != st.set {
			t.Errorf("Level() = %v after SetLevel(%v)", sw.Level(), st.set)
		}
		log.Trace().Msg("m")
		log.Debug().Msg("m")
		log.Info().Msg("m")
		log.Warn().Msg("m")
		log.Error().Msg("m")
		if got := messages(t, buf.String()); strings.Join(got, ",") != strings.Join(st.want, ",") {
			t.Errorf("at %v: logged %v, want %v", st.set, got, st.want)
		}
	}
	// Write (used by zerolog only for level-less output) is never filtered.
	buf.Reset()
	if n, err := sw.Write([]byte("raw\n")); n != 4 || err != nil || buf.String() != "raw\n" {
		t.Errorf("Write = %d, %v; buffer %q", n, err, buf.String())
	}
	// A dropped event still reports the whole write as done, so zerolog
	// does not treat it as an error.
	if n, err := sw.WriteLevel(zerolog.DebugLevel, []byte("dropped")); n != len("dropped") || err != nil {
		t.Errorf("WriteLevel of a dropped event = %d, %v", n, err)
	}
}

// TestLevelSwitchConcurrentUse changes the level while other goroutines log:
// under the race detector this checks the switch's concurrency contract.
func TestLevelSwitchConcurrentUse(t *testing.T) {
	var buf lockedBuffer
	sw := NewLevelSwitch(&buf, zerolog.InfoLevel)
	log := zerolog.New(sw).Level(zerolog.DebugLevel)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				log.Debug().Int("i", i).Msg("d")
				log.Error().Int("i", i).Msg("e")
			}
		}()
	}
	for i := 0; i < 200; i++ {
		sw.SetLevel(LevelFor(i%2 == 0))
	}
	wg.Wait()
	var errs int
	for _, r := range records(t, buf.String()) {
		if r["level"] == "error" {
			errs++
		}
	}
	if errs != 4*200 {
		t.Errorf("error events written = %d, want %d (never below the switch's highest level)", errs, 4*200)
	}
}
