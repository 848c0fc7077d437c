-- Fixed window. State: "start:count", the window's start in microseconds and the units
-- taken in it. Allow n if count + n <= rate in the epoch-aligned window holding now.
local function step_fixed_window()
  local key, now = key, now
  local at, count = 0, 0
  local s = redis.call('GET', key)
  if s then
    local a, c = string.match(s, '^(%d+):(%d+)$')
    if not a then
      return corrupt()
    end
    at, count = tonumber(a), tonumber(c)
  end
  if now < at then
    now = at
  end
  local _, m = divmod(now, pu)
  local start = now - m
  local stop = start + pu
  if start ~= at then
    count = 0
  end
  local allowed, retry, write = 0, 0, nil
  if count + n <= rate then
    allowed = 1
    if n > 0 then
      count = count + n
      local v, ms = fmt(start) .. ':' .. fmt(count), ttl_ms(stop - now, 0)
      write = function()
        redis.call('SET', key, v, 'PX', ms)
      end
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
  return {allowed, remaining, retry, 0, reset, 0}, write
end
