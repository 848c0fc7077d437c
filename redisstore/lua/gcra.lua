-- GCRA. State: "tat:frac", the theoretical arrival time in whole microseconds plus a
-- fraction in 1/rate microseconds. Allow n if max(tat, now) + n*T - cap*T <= now.
local uw, uf = 0, 0 -- (tat - now) * rate, clamped to the capacity
local s = redis.call('GET', key)
if s then
  local a, x = string.match(s, '^(%d+):(%d+)$')
  if not a then
    return corrupt()
  end
  local tat, frac = tonumber(a), tonumber(x)
  if tat > now or (tat == now and frac > 0) then
    local d = tat - now
    if d >= fill then
      uw, uf = cap, 0
    else
      if frac > rate - 1 then
        frac = rate - 1
      end
      local fw, ff = divmod(frac, pu)
      uw, uf = refill(d)
      uw, uf = amt_add(uw, uf, fw, ff)
      if amt_less(cap, 0, uw, uf) then
        uw, uf = cap, 0
      end
    end
  end
end
local reply
uw, uf, reply = decide(uw, uf)
if reply[1] == 1 and n > 0 then
  local q, r = amt_divrate(uw, uf)
  redis.call('SET', key, fmt(now + q) .. ':' .. fmt(r), 'PX', ttl_ms(reply[5], reply[6]))
end
return reply
