package cluster

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// leaseScript is the cluster-wide rate budget of one upstream: a GCRA
// (generic cell rate algorithm: one "theoretical arrival time", tat, per
// upstream) at the shared rate, from which a node leases a slice of tokens
// in one atomic call, plus the adaptation's bookkeeping:
//
//   - The caller's outcomes since its last call (accepted, throttled, and
//     whether callers waited: demand) are added to the shared counters.
//   - One node is the pilot (a key with a TTL, taken by whoever finds it
//     free, renewed by every call of its holder). The pilot runs the
//     limiter's adaptation rules on the cluster's outcomes: its calls
//     return the counters (and reset them), and set the shared rate it
//     computed. So the rate adapts to 429s seen by any node, one decision
//     at a time.
//   - The refund: tokens the caller leased and will not use (it was
//     throttled or paused, or they lapsed) go back to the budget: tat moves
//     back by their cost, not before now, so other nodes can lease them.
//   - The lease: up to want tokens while tat stays within the burst
//     tolerance of now; none, and how long until one is due, otherwise.
//
// Time is the caller's clock (ARGV), in µs: tests drive it, and skew
// between nodes only shifts tat (a node behind gets tokens later), it does
// not add budget. KEYS[1] state hash, KEYS[2] pilot key.
// ARGV: now_us, node, want, accepted, throttled, demand, pilot_ttl_ms,
// initial_rate, burst, new_rate (0: none), refund.
// Returns: granted, rate (milli-tokens/s), wait_us, pilot (0/1),
// accepted, throttled, demand (the cluster's, for the pilot).
var leaseScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local node = ARGV[2]
local want = tonumber(ARGV[3])
local pilot = 0
local holder = redis.call('GET', KEYS[2])
if holder == false then
  redis.call('SET', KEYS[2], node, 'PX', ARGV[7])
  pilot = 1
elseif holder == node then
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
  pilot = 1
end
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or ARGV[8])
local newRate = tonumber(ARGV[10])
if pilot == 1 and newRate > 0 then rate = newRate end
redis.call('HSET', KEYS[1], 'rate', string.format('%.6f', rate))
local acc = redis.call('HINCRBY', KEYS[1], 'accepted', ARGV[4])
local thr = redis.call('HINCRBY', KEYS[1], 'throttled', ARGV[5])
local dem = redis.call('HINCRBY', KEYS[1], 'demand', ARGV[6])
if pilot == 1 then
  redis.call('HSET', KEYS[1], 'accepted', 0, 'throttled', 0, 'demand', 0)
else
  acc, thr, dem = 0, 0, 0
end
local refund = tonumber(ARGV[11])
if refund > 0 and rate > 0 then
  local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or now)
  redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', math.max(now, tat - refund * 1e6 / rate)))
end
local granted, wait = 0, 0
if want > 0 and rate > 0 then
  local t = 1e6 / rate
  local tau = tonumber(ARGV[9]) * t
  local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or now)
  local base = math.max(tat, now)
  granted = math.min(want, math.floor((now + tau - base) / t))
  if granted > 0 then
    redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', base + granted * t))
  else
    granted = 0
    wait = math.ceil(base + t - tau - now)
  end
end
redis.call('PEXPIRE', KEYS[1], 600000)
return {granted, math.floor(rate * 1000), wait, pilot, acc, thr, dem}
`)

// LeaseRequest is one node's call for tokens of one upstream.
type LeaseRequest struct {
	Upstream string
	Now      time.Time // the node's clock
	Want     int       // tokens wanted now (0: only report and read the rate)
	// Outcomes since the node's last call, for the pilot's adaptation.
	Accepted, Throttled, Demand int
	InitialRate                 float64       // the shared rate when none is set yet
	Burst                       int           // burst tolerance, in tokens
	PilotTTL                    time.Duration // how long a silent pilot keeps the role
	NewRate                     float64       // the pilot's computed rate (0: none); ignored from others
	Refund                      int           // leased tokens the node gives back unused
}

// LeaseResult is Redis's answer.
type LeaseResult struct {
	Granted int
	Rate    float64       // the shared rate now
	Wait    time.Duration // with none granted: until the next token is due
	Pilot   bool          // this node runs the adaptation
	// The cluster's outcomes since the pilot's last call (pilot only).
	Accepted, Throttled, Demand int
}

// Lease runs the lease script: one round trip.
func Lease(ctx context.Context, c redis.Scripter, node string, r LeaseRequest) (LeaseResult, error) {
	keys := []string{Key("rl", r.Upstream), Key("rl", r.Upstream, "pilot")}
	args := []any{
		r.Now.UnixMicro(), node, r.Want, r.Accepted, r.Throttled, r.Demand,
		max(r.PilotTTL.Milliseconds(), 1), strconv.FormatFloat(r.InitialRate, 'g', -1, 64),
		max(r.Burst, 1), strconv.FormatFloat(r.NewRate, 'g', -1, 64), max(r.Refund, 0),
	}
	v, err := leaseScript.Run(ctx, c, keys, args...).Int64Slice()
	if err != nil {
		return LeaseResult{}, err
	}
	if len(v) != 7 {
		return LeaseResult{}, fmt.Errorf("cluster: lease script returned %d values, want 7", len(v))
	}
	return LeaseResult{
		Granted: int(v[0]), Rate: float64(v[1]) / 1000, Wait: time.Duration(v[2]) * time.Microsecond,
		Pilot: v[3] == 1, Accepted: int(v[4]), Throttled: int(v[5]), Demand: int(v[6]),
	}, nil
}
