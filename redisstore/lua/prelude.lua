-- Shared prelude of every ratelimit script; the algorithm's body follows it.
--
-- Each algorithm is a function step_<name>() deciding on the parameters set by params and
-- the clock: it returns the reply and, when units are taken, a function doing the writes,
-- so that a batch can decide every request before writing any. A single decision:
--
-- KEYS[1]  the key holding the state
-- ARGV[1]  Rate: units per Period
-- ARGV[2]  Period in microseconds
-- ARGV[3]  capacity
-- ARGV[4]  n, the cost
-- ARGV[5]  fill: ceil(capacity * Period / Rate), microseconds from empty to full
--
-- The clock is the server's TIME.
--
-- Reply: {allowed (0 or 1), remaining, retry_us, retry_ns, reset_us, reset_ns}, where a
-- duration is us * 1000 + ns nanoseconds (ns may be negative or up to 1000).
--
-- Lua numbers are doubles. Every number held here is an integer below 2^53: the caller
-- keeps Rate and capacity at most 2^43 and the Period at most 2^50 microseconds, and the
-- products wider than that are split exactly (two_prod, muldivmod). Numbers go to Redis
-- only through fmt, never through Lua's lossy default conversion.

-- The parameters of the decision at hand, set by params, and the clock, set by clock.
local key, rate, pu, cap, n, fill
local now

-- params reads a request's key and its five numbers from ARGV[a] on.
local function params(k, a)
  key = k
  rate = tonumber(ARGV[a])
  pu = tonumber(ARGV[a + 1])
  cap = tonumber(ARGV[a + 2])
  n = tonumber(ARGV[a + 3])
  fill = tonumber(ARGV[a + 4])
end

-- clock reads the server's TIME, in microseconds since the Unix epoch.
local function clock()
  local tm = redis.call('TIME')
  now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
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
  local p = a * b
  local q, r
  if p < 9007199254740992 then
    -- The product is below 2^53, so p is exact (a rounded product at or above 2^53 is at
    -- least 2^53): no need to split it.
    q = floor(p / d)
    r = p - q * d
  else
    local e
    p, e = two_prod(a, b)
    q = floor(p / d)
    local p2, e2 = two_prod(q, d)
    r = (p - p2) + (e - e2)
  end
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
  return ms
end

local function corrupt()
  return redis.error_reply('ratelimit: unreadable state at ' .. key)
end


-- run_one makes the single decision of KEYS[1] and ARGV with step, at the instant t of a
-- fast path that fell through, or on the clock.
local function run_one(step, t)
  if t then
    now = t
  else
    clock()
  end
  params(KEYS[1], 1)
  local reply, write = step()
  if write then
    write()
  end
  return reply
end
