-- GCRA, single decision: the fast path (see clock.lua and decide.lua).
do
  local key, now = KEYS[1], fast_now
  local rate, pu, cap, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local lim = 2251799813685248 -- 2^51
  local c, np, u = cap * pu, n * pu, 0
  local ok = c < lim and np < lim
  local s = ok and redis.call('GET', key)
  if s then
    local tat, frac = tonumber(string.match(s, '^%d+$')), 0
    if not tat then
      local a, x = string.match(s, '^(%d+):(%d+)$')
      tat, frac = tonumber(a), tonumber(x)
    end
    if not tat then
      ok = false
    elseif tat > now or (tat == now and frac > 0) then
      if frac > rate - 1 then
        frac = rate - 1
      end
      local p = (tat - now) * rate
      u = p + frac
      -- The general path reads more than 2^50 units as 2^50.
      ok = u < lim and p < 1125899906842624 * pu
    end
  end
  if ok then
    local allowed, remaining, rus, rns, q, cq, r, ms
    do
      --@decide
    end
    if allowed == 1 and n > 0 then
      local v = string.format('%d', now + q)
      if r > 0 then
        v = v .. ':' .. string.format('%d', r)
      end
      redis.call('SET', key, v, 'PX', ms)
    end
    return {allowed, remaining, rus, rns, q, cq}
  end
end
