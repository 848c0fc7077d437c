-- The fast path of the bucket algorithms: amounts in unit-microseconds (as in bucket.lua)
-- held as single numbers, which the callers keep below 2^51 so that every sum, product and
-- quotient here is exact. A quotient a / d of integers a < 2^52 and d <= 2^50 computed in
-- doubles and rounded down is exact or one too large, never too small: each is corrected
-- by its remainder.

-- fast_decide allows n (np = n * pu) if u + np <= c = cap * pu. It returns the amount in
-- use after the step, the reply, the remainder of that amount divided by rate (the reply's
-- reset is the quotient), and the TTL in milliseconds of the state written after it.
local function fast_decide(u, c, np, rate, pu)
  local floor = math.floor
  local allowed, rus, rns, a = 0, 0, 0, u + np
  if a > c then
    local e = a - c
    rus = floor(e / rate)
    local r = e - rus * rate
    if r < 0 then
      rus, r = rus - 1, r + rate
    end
    e = 1000 * r
    rns = floor(e / rate)
    r = e - rns * rate
    if r < 0 then
      rns, r = rns - 1, r + rate
    end
    if r > 0 then
      rns = rns + 1
    end
  else
    allowed, u = 1, a
  end
  local remaining = 0
  if u < c then
    local e = c - u
    remaining = floor(e / pu)
    if e - remaining * pu < 0 then
      remaining = remaining - 1
    end
  end
  local q = floor(u / rate)
  local r = u - q * rate
  if r < 0 then
    q, r = q - 1, r + rate
  end
  local e = 1000 * r
  local cq = floor(e / rate)
  local cr = e - cq * rate
  if cr < 0 then
    cq, cr = cq - 1, cr + rate
  end
  local us = q
  if cr > 0 then
    cq, us = cq + 1, q + 1
  end
  local ms = floor(us / 1000)
  local rem = us - ms * 1000
  if rem < 0 then
    ms, rem = ms - 1, rem + 1000
  end
  if rem > 0 or ms < 1 then
    ms = ms + 1
  end
  if fast_test then
    ms = ms + 3600000
  end
  return u, {allowed, remaining, rus, rns, q, cq}, r, ms
end
