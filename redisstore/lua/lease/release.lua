-- Lease release: gives back units a process was granted and will not spend. For each key:
--
-- KEYS[i]  the key holding the state
-- ARGV     per key three values: the algorithm ('fw' or 'swc'), the window start in
--          microseconds the units were granted in, and the units
--
-- The units are subtracted from the window's count only if that window is still the one the
-- state holds (for a sliding window counter, its current window): a lease of a window that
-- has passed gave nothing that still counts. The TTL is kept. Reply: the units given back
-- per key.
local out = {}
for i, key in ipairs(KEYS) do
  local alg, start, units = ARGV[3 * i - 2], ARGV[3 * i - 1], tonumber(ARGV[3 * i])
  local back = 0
  local s = redis.call('GET', key)
  if s then
    local a, c, rest
    if alg == 'swc' then
      a, c, rest = string.match(s, '^(%d+):(%d+)(:%d+)$')
    else
      a, c = string.match(s, '^(%d+):(%d+)$')
      rest = ''
    end
    if a == start then
      local count = tonumber(c)
      back = units
      if back > count then
        back = count
      end
      if back > 0 then
        redis.call('SET', key, a .. ':' .. string.format('%d', count - back) .. rest, 'KEEPTTL')
      end
    end
  end
  out[i] = back
end
return out
