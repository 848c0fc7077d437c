-- Sliding window log. State: a list holding the entries "at:count" of the units allowed,
-- newest first, units allowed at the same microsecond merged, followed by their sum as the
-- last element. Allow n if the units in (now - pu, now] plus n <= rate. Entries at or
-- before now - pu are dropped only when units are taken: a denial or n = 0 writes nothing.
local function step_sliding_window_log()
  local key, now = key, now
  local function parse(e)
    local a, c = string.match(e or '', '^(%d+):(%d+)$')
    if not a then
      return nil
    end
    return tonumber(a), tonumber(c)
  end

  local len = redis.call('LLEN', key)
  local entries = 0
  local sum = 0
  local newest_at, newest_n
  if len > 0 then
    entries = len - 1
    sum = tonumber(redis.call('LINDEX', key, -1))
    newest_at, newest_n = parse(redis.call('LINDEX', key, 0))
    if entries < 1 or not sum or not newest_at then
      return corrupt()
    end
    if now < newest_at then
      now = newest_at
    end
  end

  -- The entries oldest first, read from the tail in chunks.
  local pos, chunk, ci = 0, nil, 0 -- entries consumed; the current chunk and index in it
  local function next_entry()
    if pos >= entries then
      return nil
    end
    if not chunk or ci < 1 then
      local from = pos + 2 -- the oldest unread entry is at -(pos + 2)
      chunk = redis.call('LRANGE', key, -(from + 63), -from)
      ci = #chunk
      if ci == 0 then
        return nil
      end
    end
    local at, c = parse(chunk[ci])
    ci = ci - 1
    pos = pos + 1
    return at, c
  end

  -- Skip the expired entries.
  local cutoff = now - pu
  local expired, expired_units = 0, 0
  local live_sum = sum
  local first_at, first_n -- the oldest live entry, already read
  while true do
    local at, c = next_entry()
    if not at then
      break
    end
    if at > cutoff then
      first_at, first_n = at, c
      break
    end
    expired = expired + 1
    live_sum = live_sum - c
  end
  if expired + (first_at and 1 or 0) < pos or live_sum < 0 then
    return corrupt()
  end

  local allowed, retry, write = 0, 0, nil
  if live_sum + n <= rate then
    allowed = 1
    if n > 0 then
      live_sum = live_sum + n
      local merge = expired < entries and newest_at == now
      local entry, sum_s, ms = fmt(now) .. ':' .. fmt(n), fmt(live_sum), ttl_ms(pu, 0)
      if merge then
        entry = fmt(now) .. ':' .. fmt(newest_n + n)
      end
      write = function()
        if expired > 0 then
          redis.call('RPOP', key, expired + 1) -- the sum and the expired entries
        end
        if merge then
          redis.call('LSET', key, 0, entry)
        else
          redis.call('LPUSH', key, entry)
        end
        if expired > 0 or len == 0 then
          redis.call('RPUSH', key, sum_s)
        else
          redis.call('LSET', key, -1, sum_s)
        end
        redis.call('PEXPIRE', key, ms)
      end
      newest_at = now
    end
  else
    -- Wait until the oldest live_sum + n - rate units have expired.
    local excess = live_sum + n - rate
    local acc = 0
    local at, c = first_at, first_n
    while at do
      acc = acc + c
      if acc >= excess then
        retry = at + pu - now
        break
      end
      at, c = next_entry()
    end
    if retry == 0 then
      return corrupt()
    end
  end
  local remaining = rate - live_sum
  if remaining < 0 then
    remaining = 0
  end
  local reset = 0
  if live_sum > 0 then
    reset = newest_at + pu - now
  end
  return {allowed, remaining, retry, 0, reset, 0}, write
end
