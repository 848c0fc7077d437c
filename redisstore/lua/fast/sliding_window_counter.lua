-- Sliding window counter, single decision: the fast path (see clock.lua), for instants
-- below 2^52 microseconds and counts whose products with the Period (and with 1000) stay
-- below 2^51, so that every product, quotient and comparison is exact.
do
  local key, now = KEYS[1], fast_now
  local rate, pu, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
  local floor = math.floor
  local lim = 2251799813685248 -- 2^51
  local at, curr, prev = 0, 0, 0
  local ok = now < 4503599627370496 and rate * pu < lim and rate * 1000 < lim
  local s = ok and redis.call('GET', key)
  if s then
    local a, c, p = string.match(s, '^(%d+):(%d+):(%d+)$')
    if a then
      at, curr, prev = tonumber(a), tonumber(c), tonumber(p)
      if now < at then
        now = at
      end
      ok = now < 4503599627370496
    else
      ok = false
    end
  end
  local start
  if ok then
    start = floor(now / pu) * pu
    if start > now then
      start = start - pu
    end
    if start == at then
      -- same window
    elseif start == at + pu then
      prev, curr = curr, 0
    else
      prev, curr = 0, 0
    end
    ok = curr * pu < lim and prev * pu < lim and curr * 1000 < lim and prev * 1000 < lim
  end
  if ok then
    local stop = start + pu
    local elapsed = now - start
    local weighted = prev * (pu - elapsed)
    local allowed, rus, rns = 0, 0, 0
    if curr + n <= rate and (rate - curr - n) * pu >= weighted then
      allowed = 1
      if n > 0 then
        curr = curr + n
        local us = stop + pu - now
        local ms = floor(us / 1000)
        local rem = us - ms * 1000
        if rem < 0 then
          ms, rem = ms - 1, rem + 1000
        end
        if rem > 0 or ms < 1 then
          ms = ms + 1
        end
        redis.call('SET', key, string.format('%d:%d:%d', start, curr, prev), 'PX', ms)
      end
    else
      -- Denied by prev's weight: the first elapsed e' with prev * (P - e') <= x * P for x
      -- the room left in this window; or, over the rate, the first in the next window
      -- with curr * (P - e') <= x * P for x the room left then.
      local w, x, base = prev, rate - curr - n, pu - elapsed
      if curr + n > rate then
        w, x, base = curr, rate - n, 2 * pu - elapsed
      end
      local e = x * pu
      local qa = floor(e / w)
      local ra = e - qa * w
      if ra < 0 then
        qa, ra = qa - 1, ra + w
      end
      e = 1000 * ra
      local qb = floor(e / w)
      if e - qb * w < 0 then
        qb = qb - 1
      end
      rus, rns = base - qa, -qb
    end
    local remaining = rate - curr
    if remaining < 0 then
      remaining = 0
    end
    local wq = floor(weighted / pu)
    local wr = weighted - wq * pu
    if wr < 0 then
      wq, wr = wq - 1, wr + pu
    end
    if wr > 0 then
      wq = wq + 1
    end
    remaining = remaining - wq
    if remaining < 0 then
      remaining = 0
    end
    local reset = 0
    if curr > 0 then
      reset = stop + pu - now
    elseif prev > 0 then
      reset = stop - now
    end
    return {allowed, remaining, rus, rns, reset, 0}
  end
end
