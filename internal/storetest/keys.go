package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/go-ratelimit/ratelimit"
)

// testReset checks that Reset restores the full capacity of one (key, algorithm) and
// touches nothing else.
func (s *suite) testReset(t *testing.T) {
	l := ratelimit.Limit{Rate: 3, Period: countPeriod}
	for _, alg := range algorithms {
		s.run(t, alg.String(), func(t *testing.T, st ratelimit.Store) {
			ctx := context.Background()
			s.room(countPeriod, countRoom)
			exhaust := func(key string, a ratelimit.Algorithm) *probe {
				p := s.probe(t, st, key, a, l)
				p.expect(3, true, 0)
				return p
			}
			target := exhaust("k", alg)
			var others []*probe
			for _, a := range algorithms {
				if a != alg {
					others = append(others, exhaust("k", a))
				}
			}
			others = append(others, exhaust("k2", alg), exhaust("K", alg))

			if err := st.Reset(ctx, "k", alg); err != nil {
				t.Fatalf("Reset(k, %v) = %v, want nil", alg, err)
			}
			if r := target.expect(0, true, 3); r.ResetAfter != 0 {
				t.Errorf("%s: ResetAfter = %v after Reset, want 0", target.call(0), r.ResetAfter)
			}
			for _, p := range others {
				p.expect(0, true, 0)
				p.expect(1, false, 0)
			}
			target.expect(3, true, 0)
			target.expect(1, false, 0)

			// Resetting twice, or a key never seen, is no error and leaves a full key.
			for range 2 {
				if err := st.Reset(ctx, "k", alg); err != nil {
					t.Fatalf("Reset(k, %v) = %v, want nil", alg, err)
				}
			}
			target.expect(0, true, 3)
			if err := st.Reset(ctx, "never seen", alg); err != nil {
				t.Fatalf("Reset(%q, %v) = %v, want nil", "never seen", alg, err)
			}
			s.probe(t, st, "never seen", alg, l).expect(3, true, 0)
		})
	}
}

// trickyKeys must all name distinct state: keys with the bytes that key layouts, hash
// tags and protocols treat specially, keys that a careless encoding with the algorithm's
// name or number would confuse, and keys that differ in case, length, or an invalid byte.
var trickyKeys = []string{
	"a", "A", "b", "a ", " a", "aa",
	"a:", ":a", "a:b", "a:b:c", "a::b",
	"{a}", "{a", "a}", "}a{", "{}", "{a}:b", "a:{b}", "{a}{b}", "{{a}}",
	"\x00", "a\x00", "\x00a", "a\x00b", "\x00\x00",
	"\xff", "\xfe\xff", "a\xc3", "\xc3\xa9", "e\u0301", "\U0001F600",
	"a\nb", "a\r\nb", "a\tb", "*", "?", "[a]", `\`, `"a"`, "'a'", "%s", "%",
	"a:1", "a:4", "a:fixed_window", "a:gcra", "a}:1", "{a}:1", "1", "01", "-1",
	"a\x01", "a\x02", "a\x04", "a\x06",
}

// testIsolation checks that distinct keys, and one key under distinct algorithms, are
// independent.
func (s *suite) testIsolation(t *testing.T) {
	l := ratelimit.Limit{Rate: 1, Period: countPeriod}
	for _, alg := range algorithms {
		s.run(t, "keys/"+alg.String(), func(t *testing.T, st ratelimit.Store) {
			s.room(countPeriod, countRoom)
			probes := make([]*probe, len(trickyKeys))
			for i, key := range trickyKeys {
				probes[i] = s.probe(t, st, key, alg, l)
				probes[i].expect(1, true, 0)
			}
			for _, p := range probes {
				p.expect(0, true, 0)
				p.expect(1, false, 0)
			}
		})
	}
	s.run(t, "algorithms", func(t *testing.T, st ratelimit.Store) {
		s.room(countPeriod, countRoom)
		for _, key := range []string{"k", "{k}:1"} {
			var probes []*probe
			for _, alg := range algorithms {
				p := s.probe(t, st, key, alg, l)
				p.expect(1, true, 0)
				probes = append(probes, p)
			}
			for _, p := range probes {
				p.expect(1, false, 0)
			}
		}
	})
	s.run(t, "long keys", func(t *testing.T, st ratelimit.Store) {
		// Keys of MaxKeyLen bytes work, and differ by their last byte.
		s.room(countPeriod, countRoom)
		long := strings.Repeat("k", ratelimit.MaxKeyLen-1)
		var probes []*probe
		for _, last := range []string{"a", "b", "\x00", "\xff"} {
			for _, alg := range algorithms {
				p := s.probe(t, st, long+last, alg, l)
				p.expect(1, true, 0)
				probes = append(probes, p)
			}
		}
		for _, p := range probes {
			p.expect(1, false, 0)
		}
	})
}

// testManyKeys checks that 10,000 keys each get their own capacity, the six algorithms
// taking turns.
func (s *suite) testManyKeys(t *testing.T) {
	const keys = 10_000
	l := ratelimit.Limit{Rate: 2, Period: countPeriod}
	s.run(t, "all", func(t *testing.T, st ratelimit.Store) {
		ctx := context.Background()
		s.room(countPeriod, 2*countRoom)
		// Half the keys differ only at their end, half only at their start.
		pad := strings.Repeat("-", 48)
		key := func(i int) (string, ratelimit.Algorithm) {
			k := fmt.Sprintf("key%s%d", pad, i)
			if i%2 == 1 {
				k = fmt.Sprintf("%d%skey", i, pad)
			}
			return k, algorithms[i%len(algorithms)]
		}
		failures := 0
		fail := func(format string, args ...any) {
			t.Helper()
			if failures++; failures <= 10 {
				t.Errorf(format, args...)
			}
		}
		for _, want := range []struct {
			n       int
			allowed bool
		}{{2, true}, {1, false}} {
			for i := range keys {
				k, alg := key(i)
				r, err := st.Take(ctx, k, alg, l, want.n)
				if err != nil {
					t.Fatalf("%v: Take(%q, %d) error %v, want none", alg, k, want.n, errText(err))
				}
				if r.Allowed != want.allowed || r.Remaining != 0 {
					fail("%v: Take(%q, %d) = %s, want %s", alg, k, want.n, outcome(r.Allowed, r.Remaining), outcome(want.allowed, 0))
				}
			}
		}
		if failures > 10 {
			t.Errorf("… and %d more failures", failures-10)
		}
	})
}
