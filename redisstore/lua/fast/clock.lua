-- Single decisions start with a fast path: the common case decided in plain arithmetic,
-- without the helpers of the general path that follows it in the same script (a local
-- function is a new closure on every run, and defining them all costs more than the
-- decision). A fast path returns when every number it holds is an integer below 2^53 and
-- the state reads as expected; otherwise it falls through to the general path, which then
-- decides on the same instant, fast_now (fast_test telling whether it is simulated).
local fast_now, fast_test = tonumber(ARGV[6]), true
if not fast_now then
  local tm = redis.call('TIME')
  fast_now, fast_test = tonumber(tm[1]) * 1000000 + tonumber(tm[2]), false
end
