// Package multi decides several limits as one decision: the mechanism every front end
// of this repository (httplimit, grpclimit and the ratelimitd engine) shares. A front end
// translates its transport into [Entry] values, calls [Set.Decide] or [TakeAll], and
// translates the [Outcome] back; it decides nothing itself.
//
// # What it owns
//
//   - Compiling rules ([Compile]): one name rule (1 to [MaxNameLen] bytes of printable
//     ASCII without '"' or '\', unique), one key namespace per rule ([Rule.Prefix] for the
//     rule's own keys, [Rule.FallbackPrefix] for its client-address fallback), and one
//     store-grouping rule: rules whose Limiters share a store (equal, comparable store
//     values) are one group.
//   - Deciding all-or-nothing per group: one Take for a group of one, one
//     [ratelimit.TakeAll] for a group of several. A store that cannot batch (not a
//     [ratelimit.BatchStore], or one answering [errors.ErrUnsupported], as a Redis
//     Cluster does for keys on several slots) gets the one fallback of [TakeAll]:
//     check every limit, then take each.
//   - Groups are decided in the order they first appear in the rules, stopping at the
//     first denial: units taken from groups decided before the denying one stay taken.
//   - The cost rule: 0 checks without taking, a negative cost is a configuration error
//     ([BadCost]), a cost above a rule's capacity can never pass ([TooCostly]).
//   - The limiting rule, whose values rate-limit headers carry ([Limiting]).
//   - The fail policy for store errors that reach it, and the [ratelimit.Observer]
//     events of every decision, to the front end's Observer and to each rule's Limiter's.
//
// # Which layer decides a store failure
//
// A store with a [ratelimit.FailPolicy] of its own (redisstore, the SQL stores) answers
// its backend's failures itself, by default from a local in-memory limit: such a failure
// is a Result, not an error, and never reaches this package. Only errors a store returns
// reach [Options.OnStoreError]: a store configured with [ratelimit.FailError], a closed
// store, a custom store. There, [ratelimit.FailOpen] (and the zero value,
// [ratelimit.FailLocal], since a front end keeps no store of its own) lets the decision
// go on without the failed group's rules, and [ratelimit.FailClosed] refuses it
// ([Unavailable]). [ratelimit.FailError] is not a front-end policy.
//
// # What the front ends translate
//
//	outcome          httplimit (HTTP)             grpclimit (gRPC)                 engine (RLS, JSON)
//	Allowed          next handler, headers        handler, ratelimit metadata      OK
//	Limited          429, Retry-After, problem    ResourceExhausted + RetryInfo    OVER_LIMIT
//	TooCostly        413                          ResourceExhausted, no RetryInfo  OVER_LIMIT (checked, see engine)
//	BadCost          500 (ErrConfig)              Internal (ErrConfig)             not possible (hits are unsigned)
//	Unavailable      503                          Unavailable                      gRPC Unavailable / 503 (store FailError)
//	missing key      400 / fallback / skip        InvalidArgument / fallback / skip  not applicable
//	ended context    decided by the fail policy   the context's status             the context's error
package multi
