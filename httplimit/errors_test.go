package httplimit_test

import (
	"errors"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
)

// TestErrorsNameEachLayerOnce checks whole messages of errors that wrap others: each
// package and each pattern is named once, and the sentinel still matches.
func TestErrorsNameEachLayerOnce(t *testing.T) {
	lim := ratelimit.New(newStore(t), ratelimit.GCRA, ratelimit.PerHour(1))
	for _, tc := range []struct {
		mw   *httplimit.Middleware
		want string
		is   error
	}{
		{
			&httplimit.Middleware{Limiter: lim, Rules: []httplimit.Rule{{Pattern: "GET /a/{"}}},
			`httplimit: invalid configuration: pattern "GET /a/{": at offset 7: bad wildcard segment (must end with '}')`,
			httplimit.ErrConfig,
		},
		{
			&httplimit.Middleware{Limiter: lim, Rules: []httplimit.Rule{{Name: "a", Pattern: "/a/{x}"}, {Name: "b", Pattern: "/a/{y}"}}},
			`httplimit: invalid configuration: pattern "/a/{y}" conflicts with pattern "/a/{x}": /a/{y} matches the same requests as /a/{x}`,
			httplimit.ErrConfig,
		},
		{
			&httplimit.Middleware{Rules: []httplimit.Rule{{Name: "key", Key: httplimit.Header("X-API-Key"), MissingKey: httplimit.MissingKeyReject, Limiter: lim}}},
			`httplimit: rule "key": no key: no X-Api-Key header`,
			httplimit.ErrNoKey,
		},
	} {
		_, err := tc.mw.Check(request("GET", "/a/b", "192.0.2.1:1"))
		if err == nil || err.Error() != tc.want || !errors.Is(err, tc.is) {
			t.Errorf("Check: got error %v, want %s matching %v", err, tc.want, tc.is)
		}
	}
}
