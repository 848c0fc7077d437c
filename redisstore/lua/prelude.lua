-- Shared prelude of every ratelimit script; the algorithm's body follows it.
--
-- KEYS[1]  the key holding the state
-- ARGV[1]  Rate: units per Period
-- ARGV[2]  Period in microseconds
-- ARGV[3]  capacity
-- ARGV[4]  n, the cost
-- ARGV[5]  fill: ceil(capacity * Period / Rate), microseconds from empty to full
-- ARGV[6]  optional, tests only: the current instant in microseconds since the Unix epoch.
--          Production calls never send it and the clock is the server's TIME. When it is
--          given, every TTL is lengthened by an hour so that state written at a simulated
--          instant outlives the test's real time.
--
-- Reply: {allowed (0 or 1), remaining, retry_us, retry_ns, reset_us, reset_ns}, where a
-- duration is us * 1000 + ns nanoseconds (ns may be negative or up to 1000).
--
-- Lua numbers are doubles. Every number held here is an integer below 2^53: the caller
-- keeps Rate and capacity at most 2^43 and the Period at most 2^50 microseconds, and the
-- products wider than that are split exactly (two_prod, muldivmod). Numbers go to Redis
-- only through fmt, never through Lua's lossy default conversion.

local key = KEYS[1]
local rate = tonumber(ARGV[1])
local pu = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local fill = tonumber(ARGV[5])
local test = ARGV[6] ~= nil

local now
if test then
  now = tonumber(ARGV[6])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local floor = math.floor

local function fmt(x)
  return string.format('%d', x)
end

-- two_prod returns p, e with a * b = p + e exactly (Dekker), for integers a, b < 2^53.
local SPLIT = 134217729 -- 2^27 + 1
local function two_prod(a, b)
  local p = a * b
  local t = SPLIT * a
  local ah = t - (t - a)
  local al = a - ah
  t = SPLIT * b
  local bh = t - (t - b)
  local bl = b - bh
  return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl
end

-- muldivmod returns q, r with a * b = q * d + r and 0 <= r < d, exactly, for integers
-- 0 <= a, b < 2^53 and 0 < d <= 2^50 whose quotient q is below 2^53.
local function muldivmod(a, b, d)
  local p, e = two_prod(a, b)
  local q = floor(p / d)
  local p2, e2 = two_prod(q, d)
  local r = (p - p2) + (e - e2)
  while r < 0 do
    q = q - 1
    r = r + d
  end
  while r >= d do
    q = q + 1
    r = r - d
  end
  return q, r
end

local function divmod(a, d)
  return muldivmod(a, 1, d)
end

-- prod_less reports whether a * b < c * d, exactly.
local function prod_less(a, b, c, d)
  local p1, e1 = two_prod(a, b)
  local p2, e2 = two_prod(c, d)
  if p1 ~= p2 then
    return p1 < p2
  end
  return e1 < e2
end

-- Amounts of capacity are unit-microseconds (units times Period), held as w, f meaning
-- w * pu + f with 0 <= f < pu: w whole units and f a fraction of one.
local function amt_less(aw, af, bw, bf)
  return aw < bw or (aw == bw and af < bf)
end

-- amt_sub returns a - b, or 0 when b > a.
local function amt_sub(aw, af, bw, bf)
  if amt_less(aw, af, bw, bf) then
    return 0, 0
  end
  local w, f = aw - bw, af - bf
  if f < 0 then
    f = f + pu
    w = w - 1
  end
  return w, f
end

local function amt_add(aw, af, bw, bf)
  local w, f = aw + bw, af + bf
  if f >= pu then
    f = f - pu
    w = w + 1
  end
  return w, f
end

-- amt_divrate returns q, r with w * pu + f = q * rate + r: the amount as microseconds of
-- refill, and the remainder in 1/rate microseconds.
local function amt_divrate(w, f)
  local q1, r1 = muldivmod(w, pu, rate)
  local q2, r2 = divmod(r1 + f, rate)
  return q1 + q2, r2
end

-- amt_dur returns ceil(1000 * (w * pu + f) / rate) nanoseconds, the time the amount takes
-- to refill, as us, ns.
local function amt_dur(w, f)
  local q, r = amt_divrate(w, f)
  local c, cr = divmod(1000 * r, rate)
  if cr > 0 then
    c = c + 1
  end
  return q, c
end

-- ttl_ms returns a TTL in milliseconds covering us * 1000 + ns nanoseconds (ns >= 0).
local function ttl_ms(us, ns)
  if ns > 0 then
    us = us + 1
  end
  local ms, rem = divmod(us, 1000)
  if rem > 0 then
    ms = ms + 1
  end
  if ms < 1 then
    ms = 1
  end
  if test then
    ms = ms + 3600000
  end
  return ms
end

local function corrupt()
  return redis.error_reply('ratelimit: unreadable state at ' .. key)
end

-- decide allows n if used + n * pu <= cap * pu, for the bucket algorithms. It returns the
-- amount in use after the step and the reply's fields.
local function decide(uw, uf)
  local aw, af = uw + n, uf
  local allowed, rus, rns = 0, 0, 0
  if amt_less(cap, 0, aw, af) then
    rus, rns = amt_dur(amt_sub(aw, af, cap, 0))
  else
    allowed = 1
    uw, uf = aw, af
  end
  local remaining = amt_sub(cap, 0, uw, uf)
  local sus, sns = amt_dur(uw, uf)
  return uw, uf, {allowed, remaining, rus, rns, sus, sns}
end

-- amount reads a stored whole and fraction, clamped to the capacity.
local function amount(w, f)
  if w >= cap then
    return cap, 0
  end
  if f > pu - 1 then
    f = pu - 1
  end
  return w, f
end

-- refill returns the amount d microseconds refill, as w, f; d must be below fill.
local function refill(d)
  return muldivmod(d, rate, pu)
end
