-- Fixed window, single decision: the fast path (see clock.lua), for instants below 2^52
-- microseconds (the year 2112), where the window's start is an exact quotient.
do
  local key, now = KEYS[1], fast_now
  local rate, pu, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
  local floor = math.floor
  local at, count = 0, 0
  local ok = now < 4503599627370496 -- 2^52
  local s = ok and redis.call('GET', key)
  if s then
    local a, c = string.match(s, '^(%d+):(%d+)$')
    if a then
      at, count = tonumber(a), tonumber(c)
      if now < at then
        now = at
      end
      ok = now < 4503599627370496
    else
      ok = false
    end
  end
  if ok then
    local start = floor(now / pu) * pu
    if start > now then
      start = start - pu
    end
    local stop = start + pu
    if start ~= at then
      count = 0
    end
    local allowed, retry = 0, 0
    if count + n <= rate then
      allowed = 1
      if n > 0 then
        count = count + n
        local us = stop - now
        local ms = floor(us / 1000)
        local rem = us - ms * 1000
        if rem < 0 then
          ms, rem = ms - 1, rem + 1000
        end
        if rem > 0 or ms < 1 then
          ms = ms + 1
        end
        redis.call('SET', key, string.format('%d:%d', start, count), 'PX', ms)
      end
    else
      retry = stop - now
    end
    local remaining = rate - count
    if remaining < 0 then
      remaining = 0
    end
    local reset = 0
    if count > 0 then
      reset = stop - now
    end
    return {allowed, remaining, retry, 0, reset, 0}
  end
end
