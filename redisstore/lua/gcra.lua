-- GCRA. State: "tat:frac", the theoretical arrival time in whole microseconds plus a
-- fraction in 1/rate microseconds, or "tat" alone when the fraction is 0, which Redis
-- keeps as an integer. Allow n if max(tat, now) + n*T - cap*T <= now. The TAT
-- is read as is after a limit change: a key over a lowered capacity is denied until it drains.
local function step_gcra()
  local key, now = key, now
  local uw, uf = 0, 0 -- (tat - now) * rate, in use; above the capacity after a lowered limit
  local s = redis.call('GET', key)
  if s then
    local tat, frac = tonumber(string.match(s, '^%d+$')), 0
    if not tat then
      local a, x = string.match(s, '^(%d+):(%d+)$')
      if not a then
        return corrupt()
      end
      tat, frac = tonumber(a), tonumber(x)
    end
    if tat > now or (tat == now and frac > 0) then
      local d = tat - now
      if frac > rate - 1 then
        frac = rate - 1
      end
      -- A TAT written under a much longer limit could hold more units than the arithmetic
      -- keeps exact; such a key is over any capacity in range, and is read as 2^50 units.
      if d * rate >= 2 ^ 50 * pu then
        uw, uf = 2 ^ 50, 0
      else
        local fw, ff = divmod(frac, pu)
        uw, uf = refill(d)
        uw, uf = amt_add(uw, uf, fw, ff)
      end
    end
  end
  local reply, q, r, write
  uw, uf, reply, q, r = decide(uw, uf)
  if reply[1] == 1 and n > 0 then
    local v, ms = fmt(now + q), ttl_ms(reply[5], reply[6])
    if r > 0 then
      v = v .. ':' .. fmt(r)
    end
    write = function()
      redis.call('SET', key, v, 'PX', ms)
    end
  end
  return reply, write
end
