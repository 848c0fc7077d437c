-- Leaky bucket, single decision: the fast path (see clock.lua and decide.lua).
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
          u = c
        else
          if f > pu - 1 then
            f = pu - 1
          end
          u = w * pu + f
        end
        u = u - d * rate
        if u < 0 then
          u = 0
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
      local uw = math.floor(u / pu)
      if u - uw * pu < 0 then
        uw = uw - 1
      end
      local uf = u - uw * pu
      local v = string.format('%d:%d:%d', now, uw, uf)
      redis.call('SET', key, v, 'PX', ms)
    end
    return {allowed, remaining, rus, rns, q, cq}
  end
end
