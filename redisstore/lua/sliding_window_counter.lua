-- Sliding window counter. State: "start:curr:prev", the current window's start in
-- microseconds, the units taken in it and in the window before. Allow n if
-- prev * (pu - elapsed) + (curr + n) * pu <= rate * pu.
-- prod_less reports whether a * b < c * d, exactly.
local function prod_less(a, b, c, d)
  local p1, e1 = two_prod(a, b)
  local p2, e2 = two_prod(c, d)
  if p1 ~= p2 then
    return p1 < p2
  end
  return e1 < e2
end

local function step_sliding_window_counter()
  local key, now = key, now
  local at, curr, prev = 0, 0, 0
  local s = redis.call('GET', key)
  if s then
    local a, c, p = string.match(s, '^(%d+):(%d+):(%d+)$')
    if not a then
      return corrupt()
    end
    at, curr, prev = tonumber(a), tonumber(c), tonumber(p)
  end
  if now < at then
    now = at
  end
  local _, m = divmod(now, pu)
  local start = now - m
  local stop = start + pu
  if start == at then
    -- same window
  elseif start == at + pu then
    prev, curr = curr, 0
  else
    prev, curr = 0, 0
  end
  local elapsed = now - start

  local allowed, rus, rns, write = 0, 0, 0, nil
  if curr + n <= rate and not prod_less(rate - curr - n, pu, prev, pu - elapsed) then
    allowed = 1
    if n > 0 then
      curr = curr + n
      local v, ms = fmt(start) .. ':' .. fmt(curr) .. ':' .. fmt(prev), ttl_ms(stop + pu - now, 0)
      write = function()
        redis.call('SET', key, v, 'PX', ms)
      end
    end
  elseif curr + n <= rate then
    -- Denied by prev's weight: the first elapsed e' with prev * (P - e') <= (rate - curr - n) * P.
    local qa, ra = muldivmod(rate - curr - n, pu, prev)
    local qb = divmod(1000 * ra, prev)
    rus, rns = pu - qa - elapsed, -qb
  else
    local tonext = pu - elapsed
    if curr <= rate - n then
      rus = tonext
    else
      local qa, ra = muldivmod(rate - n, pu, curr)
      local qb = divmod(1000 * ra, curr)
      rus, rns = tonext + pu - qa, -qb
    end
  end

  -- remaining = floor(rate - curr - prev * (pu - elapsed) / pu)
  local remaining = rate - curr
  if remaining < 0 then
    remaining = 0
  end
  local wq, wr = muldivmod(prev, pu - elapsed, pu)
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
  return {allowed, remaining, rus, rns, reset, 0}, write
end
