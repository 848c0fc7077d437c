-- Token bucket. State: "at:whole:frac", the last update in microseconds and the tokens
-- then, whole ones plus a fraction in unit-microseconds. A missing key is a full bucket.
local function step_token_bucket()
  local key, now = key, now
  local uw, uf = 0, 0 -- capacity in use
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
    uw, uf = amt_sub(cap, 0, amount(tonumber(x), tonumber(y)))
    local d = now - at
    if d >= fill then
      uw, uf = 0, 0
    else
      local rw, rf = refill(d)
      uw, uf = amt_sub(uw, uf, rw, rf)
    end
  end
  local reply, write
  uw, uf, reply = decide(uw, uf)
  if reply[1] == 1 and n > 0 then
    local tw, tf = amt_sub(cap, 0, uw, uf)
    local v, ms = fmt(now) .. ':' .. fmt(tw) .. ':' .. fmt(tf), ttl_ms(reply[5], reply[6])
    write = function()
      redis.call('SET', key, v, 'PX', ms)
    end
  end
  return reply, write
end
