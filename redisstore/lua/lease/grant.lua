-- Lease grant: follows the prelude and the bodies of fixed_window.lua and
-- sliding_window_counter.lua. It takes up to n units of KEYS[1] by the algorithm's own step,
-- so a lease is exactly what that many single decisions would have taken:
--
-- KEYS[1]  the key holding the state, shared with single decisions
-- ARGV     as a single decision (Rate, Period µs, capacity, n, fill), then ARGV[6] 'fw' or
--          'swc', the algorithm
--
-- Reply: {granted, remaining, window start µs, µs until the window ends}. granted is
-- min(n, what the algorithm has left now); remaining is what is left after the grant.
clock(nil)
params(KEYS[1], 1)
local step = step_fixed_window
if ARGV[6] == 'swc' then
  step = step_sliding_window_counter
end
local want = n
n = 0
local peek = step()
if peek.err then
  return peek
end
local grant = peek[2]
if grant > want then
  grant = want
end
local left = peek[2]
if grant > 0 then
  n = grant
  local reply, write = step()
  if reply.err then
    return reply
  end
  if write then
    write()
  end
  left = reply[2]
end
local _, m = divmod(now, pu)
return {grant, left, now - m, pu - m}
