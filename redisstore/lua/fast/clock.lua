-- Single decisions start with a fast path: the common case decided in plain arithmetic,
-- without the helpers of the general path that follows it in the same script (a local
-- function is a new closure on every run, and defining them all costs more than the
-- decision). A fast path returns when every number it holds is an integer below 2^53 and
-- the state reads as expected; otherwise it falls through to the general path, which then
-- decides on the same instant, fast_now: the server's TIME in microseconds.
local fast_now
do
  local tm = redis.call('TIME')
  fast_now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
end
