package redisstore

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxPipeline is the most scripts one coalesced pipeline carries.
const maxPipeline = 256

// maxInFlight is the most round trips of one store in flight at once before calls queue.
// Measured on 2 cores against one server: 1 halves the throughput of 10 goroutines
// (their round trips go one at a time), 16 batches too little at 50.
const maxInFlight = 8

// coalescer sends the scripts of concurrent calls through one go-redis client in shared
// pipelines, as rueidis does by itself. A call that finds fewer than maxInFlight round
// trips of the store in flight sends its script at once, alone, as go-redis would; calls
// that arrive while that many are in flight queue, and as one returns the first queued
// call sends the next pipeline, with every queued script. A lone caller waits no longer
// than before; under concurrency one round trip, one write and one read on each side,
// carries many decisions, which is most of what each costs Redis. Each script still runs
// atomically, and none is sent twice.
//
// A queued call whose context ends before its pipeline is sent leaves the queue with the
// context's error (its script never ran). Once sent, it waits for its pipeline, which ends
// by the earliest deadline of the calls it carries.
type coalescer struct {
	mu       sync.Mutex
	inFlight int // round trips in flight; the queue is sent as one of them returns
	queue    []*pending
	pool     sync.Pool // *pending
}

// pending is one queued call.
type pending struct {
	ctx  context.Context
	cmd  *redis.Cmd
	wake chan []*pending // the batch to send when this call leads it; nil when cmd holds its reply
}

// do sends cmd through c, alone or in a pipeline with concurrent calls, and returns when
// cmd holds its reply or error.
func (co *coalescer) do(ctx context.Context, c redis.UniversalClient, cmd *redis.Cmd) {
	co.mu.Lock()
	if co.inFlight < maxInFlight {
		co.inFlight++
		co.mu.Unlock()
		defer co.handOver() // even should a hook of the client panic
		_ = c.Process(ctx, noRetryCmd{cmd})
		return
	}
	p, _ := co.pool.Get().(*pending)
	if p == nil {
		p = &pending{wake: make(chan []*pending, 1)}
	}
	p.ctx, p.cmd = ctx, cmd
	co.queue = append(co.queue, p)
	co.mu.Unlock()

	var batch []*pending
	select {
	case batch = <-p.wake:
	case <-ctx.Done():
		if co.withdraw(p) {
			cmd.SetErr(ctx.Err())
			co.release(p)
			return
		}
		batch = <-p.wake // already in a batch: it ends by this call's deadline at the latest
	}
	if batch != nil {
		defer co.handOver()
		co.send(c, batch)
	}
	co.release(p)
}

// withdraw takes p out of the queue, and reports whether it was still there.
func (co *coalescer) withdraw(p *pending) bool {
	co.mu.Lock()
	defer co.mu.Unlock()
	i := slices.Index(co.queue, p)
	if i < 0 {
		return false
	}
	co.queue = slices.Delete(co.queue, i, i+1)
	return true
}

func (co *coalescer) release(p *pending) {
	p.ctx, p.cmd = nil, nil
	co.pool.Put(p)
}

// handOver gives the queue, as the next batch, to its first call to send, or marks the
// coalescer idle when nothing queued.
func (co *coalescer) handOver() {
	co.mu.Lock()
	if len(co.queue) == 0 {
		co.inFlight--
		co.mu.Unlock()
		return
	}
	n := min(len(co.queue), maxPipeline)
	batch := slices.Clone(co.queue[:n])
	co.queue = slices.Delete(co.queue, 0, n)
	co.mu.Unlock()
	batch[0].wake <- batch
}

// send runs batch in one pipeline through c, batch[0] being the calling goroutine's own call, and
// wakes the others once their commands hold their replies.
func (co *coalescer) send(c redis.UniversalClient, batch []*pending) {
	cmds := make([]*redis.Cmd, 0, len(batch))
	var first context.Context // of the first call still waiting
	var deadline time.Time
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.cmd.SetErr(err) // never sent
			continue
		}
		if first == nil {
			first = p.ctx
		}
		if d, ok := p.ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
			deadline = d
		}
		cmds = append(cmds, p.cmd)
	}
	if first != nil {
		// The pipeline carries the values of a caller's context, not its cancellation:
		// one caller giving up must not fail the others' scripts.
		ctx := context.WithoutCancel(first)
		if !deadline.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		_ = goRedisLease{c}.send(ctx, cmds)
	}
	for _, p := range batch[1:] {
		p.wake <- nil
	}
}
