-- Leaky bucket (meter). State: "at:whole:frac", the last update in microseconds and the
-- level then, whole units plus a fraction in unit-microseconds. A missing key is empty.
local function step_leaky_bucket()
  local key, now = key, now
  local uw, uf = 0, 0 -- the level
  local s = redis.call('GET', key)
  if s then
    local a, x, y = string.match(s, '^(%d+):(%d+):(%d+)$')
    if not a then
      return corrupt()
    end
    local at = tonumber(a)
    if now < at then
      now = at
    end
    local d = now - at
    if d < fill then
      local dw, df = refill(d)
      uw, uf = amount(tonumber(x), tonumber(y))
      uw, uf = amt_sub(uw, uf, dw, df)
    end
  end
  local reply, write
  uw, uf, reply = decide(uw, uf)
  if reply[1] == 1 and n > 0 then
    local v, ms = fmt(now) .. ':' .. fmt(uw) .. ':' .. fmt(uf), ttl_ms(reply[5], reply[6])
    write = function()
      redis.call('SET', key, v, 'PX', ms)
    end
  end
  return reply, write
end
