-- Token bucket, single decision: the fast path (see clock.lua and decide.lua).
do
  local key, now = KEYS[1], fast_now
  local rate, pu, cap, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local fill = tonumber(ARGV[5])
  local lim = 2251799813685248 -- 2^51
  local c, np, u = cap * pu, n * pu, 0
  local ok = c < lim and np < lim
  local s = ok and redis.call('GET', key)
  if s then
    local a, x, y = string.match(s, '^(%d+):(%d+):(%d+)$')
    if a then
      local at = tonumber(a)
      if now < at then
        now = at
      end
      local d = now - at
      if d < fill then
        -- d * rate < fill * rate <= c + rate: exact.
        local w, f = tonumber(x), tonumber(y)
        if w >= cap then
          u = 0
        else
          if f > pu - 1 then
            f = pu - 1
          end
          u = c - w * pu - f - d * rate
          if u < 0 then
            u = 0
          end
        end
      end
    else
      ok = false
    end
  end
  if ok then
    local allowed, remaining, rus, rns, q, cq, r, ms
    do
      --@decide
    end
    if allowed == 1 and n > 0 then
      local t = c - u
      local tw = math.floor(t / pu)
      if t - tw * pu < 0 then
        tw = tw - 1
      end
      local tf = t - tw * pu
      local v = string.format('%d:%d:%d', now, tw, tf)
      redis.call('SET', key, v, 'PX', ms)
    end
    return {allowed, remaining, rus, rns, q, cq}
  end
end
