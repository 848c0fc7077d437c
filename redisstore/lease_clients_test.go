package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/redis/rueidis"
)

// TestLeaseFrom: a LeaseStore on the client of a Store, whichever kind, admits exactly the
// limit, refills again after the server forgot its scripts (SCRIPT FLUSH answers NOSCRIPT
// on the next refill), and gives back every unspent unit on Close.
func TestLeaseFrom(t *testing.T) {
	t.Parallel()
	addr := redistest.Addr(t)
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) *Store
	}{
		{"go-redis", func(t *testing.T) *Store { return newStoreOn(t, newClient(t, addr), nil) }},
		{"rueidis", func(t *testing.T) *Store { return newRueidisStore(t, newRueidis(t, addr), nil) }},
		{"dialed", func(t *testing.T) *Store {
			s := DialRueidis(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true}, &Options{Prefix: testPrefix(t)})
			t.Cleanup(func() { s.Close() })
			<-s.Dialed()
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			strict := tc.store(t)
			s := NewLeaseFrom(strict, &LeaseOptions{Options: Options{Prefix: strict.prefix, Policy: ratelimit.FailClosed, Timeout: 5 * time.Second}, Accuracy: 0.05})
			t.Cleanup(func() { _ = s.Close(context.Background()) })
			c := newClient(t, addr)
			l := ratelimit.Limit{Rate: 2000, Period: 24 * time.Hour}
			key := func(int, int) string { return "k" }
			got, err := takeUntil(s, 4, time.Now().Add(5*time.Second), 1000, key, ratelimit.FixedWindow, l)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.ScriptFlush(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			more, err := takeUntil(s, 4, time.Now().Add(2*time.Second), 0, key, ratelimit.FixedWindow, l)
			if err != nil {
				t.Fatal(err)
			}
			if got+more != int64(l.Rate) {
				t.Errorf("admitted %d+%d, want exactly %d", got, more, l.Rate)
			}
			rkey := s.strict.key("k", ratelimit.FixedWindow)
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := count(t, c, rkey); n != int(got+more) {
				t.Errorf("Redis counts %d after Close, want the %d admitted", n, got+more)
			}
			if st := s.Stats(); st.Lost != 0 || st.Failures != 0 {
				t.Errorf("stats %+v: want no unit lost and no failure", st)
			}
		})
	}
}

// TestLeaseFromRueidisCluster: on a Cluster through rueidis, one refill round trip carries
// keys of several slots (DoMulti splits it per node), and each key admits its limit.
func TestLeaseFromRueidisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Parallel()
	cl := redistest.StartCluster(t)
	strict := newRueidisStore(t, newRueidis(t, cl.Addrs()...), nil)
	s := NewLeaseFrom(strict, &LeaseOptions{Options: Options{Prefix: strict.prefix, Policy: ratelimit.FailClosed, Timeout: 5 * time.Second}, Accuracy: 0.1})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	l := ratelimit.Limit{Rate: 100, Period: 24 * time.Hour}
	const keys = 50
	got, err := takeUntil(s, 4, time.Now().Add(10*time.Second), keys*int64(l.Rate), func(g, i int) string {
		return "k" + string(rune('a'+(g*7+i)%keys))
	}, ratelimit.FixedWindow, l)
	if err != nil {
		t.Fatal(err)
	}
	if got != keys*int64(l.Rate) {
		t.Errorf("admitted %d across %d keys, want %d", got, keys, keys*l.Rate)
	}
	if st := s.Stats(); st.Failures != 0 || st.Rounds >= st.Scripts {
		t.Errorf("stats %+v: want no failure and several keys per round trip", st)
	}
}
