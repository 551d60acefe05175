package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Target is one request to send, again and again.
type Target struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// Validate checks that the target can make a request.
func (t Target) Validate() error {
	u, err := url.Parse(t.URL)
	if err != nil {
		return fmt.Errorf("url %q: %v", t.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("url %q: want an absolute http:// or https:// URL", t.URL)
	}
	if _, err := http.NewRequest(t.method(), t.URL, nil); err != nil {
		return fmt.Errorf("method %q: %v", t.Method, err)
	}
	return nil
}

func (t Target) method() string {
	if t.Method == "" {
		return http.MethodGet
	}
	return t.Method
}

// request builds one request for t under ctx.
func (t Target) request(ctx context.Context) (*http.Request, error) {
	var body io.Reader
	if len(t.Body) > 0 {
		body = bytes.NewReader(t.Body)
	}
	req, err := http.NewRequestWithContext(ctx, t.method(), t.URL, body)
	if err != nil {
		return nil, err
	}
	req.Header = t.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if len(t.Body) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// do sends one request and reads the whole answer. It returns the status
// code, or the error that left no answer.
func (t Target) do(ctx context.Context, client *http.Client, timeout time.Duration) (int, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := t.request(ctx)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// Options tune Constant and Rounds.
type Options struct {
	// MaxInFlight caps the requests outstanding at once (Constant only);
	// at the cap a request due is dropped, not delayed. 0 means 10000.
	MaxInFlight int
	// Timeout bounds each request, from its actual send to the end of its
	// body; 0 leaves only the client's own timeout.
	Timeout time.Duration
	// Progress, if set, is called once per request due (sent or dropped) in
	// Constant and once per request in Rounds, from one goroutine.
	Progress func()
}

// DefaultMaxInFlight is the in-flight cap when Options.MaxInFlight is 0.
const DefaultMaxInFlight = 10000

// Latency summarises an HDR histogram, in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p99_9"`
	Max   int64   `json:"max"`
	Mean  float64 `json:"mean"`
}

// Result is what Constant measured; see the package doc for the JSON.
type Result struct {
	Method       string         `json:"method"`
	URL          string         `json:"url"`
	Rate         float64        `json:"rate"`
	DurationS    float64        `json:"duration_s"`
	MaxInFlight  int            `json:"max_inflight"`
	Scheduled    int            `json:"scheduled"`
	Sent         int            `json:"sent"`
	Dropped      int            `json:"dropped"`
	Interrupted  bool           `json:"interrupted"`
	AchievedRate float64        `json:"achieved_rate"`
	SendS        float64        `json:"send_s"`
	ElapsedS     float64        `json:"elapsed_s"`
	MaxSendLagUS int64          `json:"max_send_lag_us"`
	SuccessPct   float64        `json:"success_pct"`
	Status       map[string]int `json:"status"`
	Errors       map[string]int `json:"errors"`
	Latency      Latency        `json:"latency_us"`
}

// Succeeded is the number of 2xx answers.
func (r Result) Succeeded() int {
	n := 0
	for code, c := range r.Status {
		if v, err := strconv.Atoi(code); err == nil && v >= 200 && v < 300 {
			n += c
		}
	}
	return n
}

// Histogram bounds, in microseconds.
const (
	minLatencyUS = 1
	maxLatencyUS = 60_000_000
	sigFigs      = 3
)

// tally gathers answers from many goroutines.
type tally struct {
	mu     sync.Mutex
	hist   *hdrhistogram.Histogram
	status map[string]int
	errs   map[string]int
}

func newTally() *tally {
	return &tally{
		hist:   hdrhistogram.New(minLatencyUS, maxLatencyUS, sigFigs),
		status: map[string]int{},
		errs:   map[string]int{},
	}
}

func (t *tally) add(code int, err error, latency time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.errs[ErrorKind(err)]++
		return
	}
	t.status[strconv.Itoa(code)]++
	us := min(max(latency.Microseconds(), minLatencyUS), maxLatencyUS)
	_ = t.hist.RecordValue(us) // cannot fail: us is within the bounds
}

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.TotalCount(),
		P50:   h.ValueAtQuantile(50),
		P90:   h.ValueAtQuantile(90),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
		Mean:  math.Round(h.Mean()*10) / 10,
	}
}

// ErrorKind names the kind of a request error: timeout, canceled, reset,
// refused, eof or other.
func ErrorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "other"
}

// Scheduled is the number of requests a schedule of rate for d holds:
// requests are due at i/rate for every i/rate < d.
func Scheduled(rate float64, d time.Duration) int {
	return int(math.Ceil(rate*d.Seconds() - 1e-9))
}

// Constant runs the open-loop schedule described in the package doc: rate
// requests per second for duration, then waits for the requests in flight.
// It returns early (Interrupted) when ctx ends; requests in flight are then
// canceled. The error is for invalid arguments only.
func Constant(ctx context.Context, client *http.Client, target Target, rate float64, duration time.Duration, opts Options) (Result, error) {
	if err := target.Validate(); err != nil {
		return Result{}, err
	}
	if !(rate > 0) || math.IsInf(rate, 0) {
		return Result{}, fmt.Errorf("rate must be a positive number, got %v", rate)
	}
	if duration <= 0 {
		return Result{}, fmt.Errorf("duration must be positive, got %s", duration)
	}
	maxIn := opts.MaxInFlight
	if maxIn <= 0 {
		maxIn = DefaultMaxInFlight
	}
	res := Result{
		Method: target.method(), URL: target.URL, Rate: rate, DurationS: duration.Seconds(),
		MaxInFlight: maxIn, Scheduled: Scheduled(rate, duration),
	}
	t := newTally()
	start := time.Now()
	sched := OpenLoop(ctx, rate, duration, maxIn, opts.Progress, func(_ int, due time.Time) {
		code, err := target.do(ctx, client, opts.Timeout)
		t.add(code, err, time.Since(due)) // from the schedule: no coordinated omission
	})
	elapsed := time.Since(start)
	res.Sent, res.Dropped, res.Interrupted = sched.Sent, sched.Dropped, sched.Interrupted
	res.SendS = sched.SendWindow.Seconds()
	res.ElapsedS = elapsed.Seconds()
	res.AchievedRate = float64(res.Sent) / sched.SendWindow.Seconds()
	res.MaxSendLagUS = sched.MaxLag.Microseconds()
	res.Status, res.Errors = t.status, t.errs
	res.Latency = summarize(t.hist)
	if res.Scheduled > 0 {
		res.SuccessPct = 100 * float64(res.Succeeded()) / float64(res.Scheduled)
	}
	return res, nil
}

// Schedule is what OpenLoop did.
type Schedule struct {
	Sent        int           // calls started
	Dropped     int           // calls due while maxInFlight were running: not made
	Interrupted bool          // ctx ended before the schedule did
	SendWindow  time.Duration // start to the last call due, plus one interval
	MaxLag      time.Duration // worst lateness of a call behind its due time
}

// OpenLoop is the open-loop schedule of Constant, for callers that make
// their own requests: call i (0-based) is due at start + i/rate for every
// i/rate < duration and runs send(i, due) in a goroutine of its own, whether
// or not earlier calls have returned. At most maxInFlight calls run at once
// (0 means DefaultMaxInFlight); a call due at the cap is dropped, never
// delayed. progress, if set, is called once per call due (made or dropped),
// from one goroutine. OpenLoop returns when the schedule is over (or ctx
// ended) and every call made has returned; send decides itself whether ctx
// also bounds its request. rate and duration must be positive (see
// Constant, which checks them).
func OpenLoop(ctx context.Context, rate float64, duration time.Duration, maxInFlight int, progress func(), send func(i int, due time.Time)) Schedule {
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	var s Schedule
	interval := float64(time.Second) / rate
	slots := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	start := time.Now()
schedule:
	for i := range Scheduled(rate, duration) {
		due := start.Add(time.Duration(float64(i) * interval))
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				s.Interrupted = true
				break schedule
			}
		} else if ctx.Err() != nil {
			s.Interrupted = true
			break
		}
		s.MaxLag = max(s.MaxLag, time.Since(due))
		select {
		case slots <- struct{}{}:
			s.Sent++
			wg.Go(func() {
				defer func() { <-slots }()
				send(i, due)
			})
		default:
			s.Dropped++
		}
		if progress != nil {
			progress()
		}
	}
	s.SendWindow = time.Since(start) + time.Duration(interval)
	wg.Wait()
	return s
}
