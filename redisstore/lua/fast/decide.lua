-- The decision of the bucket algorithms' fast paths, spliced by scripts.go into each of
-- them where it says "--@decide", in a block of its own (inlined rather than a function:
-- a function is a new closure on every run). Amounts are in unit-microseconds (as in
-- bucket.lua) held as single numbers, which the fast paths keep below 2^51 so that every
-- sum, product and quotient here is exact. A quotient a / d of integers a < 2^52 and
-- d <= 2^50 computed in doubles and rounded down is exact or one too large, never too
-- small: each is corrected by its remainder.
--
-- In: the amount in use u, the capacity c = cap * pu, the cost np = n * pu, rate and
-- pu. Allows n if u + np <= c. Out: u after the step; the reply's fields allowed,
-- remaining, rus, rns and reset q, cq; r, the remainder of u divided by rate (the exact
-- reset is q + r / rate microseconds); ms, the TTL of the state written after the step.
local floor = math.floor
allowed, rus, rns = 0, 0, 0
local a = u + np
if a > c then
  local e = a - c
  rus = floor(e / rate)
  local x = e - rus * rate
  if x < 0 then
    rus, x = rus - 1, x + rate
  end
  e = 1000 * x
  rns = floor(e / rate)
  x = e - rns * rate
  if x < 0 then
    rns, x = rns - 1, x + rate
  end
  if x > 0 then
    rns = rns + 1
  end
else
  allowed, u = 1, a
end
remaining = 0
if u < c then
  local e = c - u
  remaining = floor(e / pu)
  if e - remaining * pu < 0 then
    remaining = remaining - 1
  end
end
q = floor(u / rate)
r = u - q * rate
if r < 0 then
  q, r = q - 1, r + rate
end
local e = 1000 * r
cq = floor(e / rate)
local cr = e - cq * rate
if cr < 0 then
  cq, cr = cq - 1, cr + rate
end
local us = q
if cr > 0 then
  cq, us = cq + 1, q + 1
end
ms = floor(us / 1000)
local rem = us - ms * 1000
if rem < 0 then
  ms, rem = ms - 1, rem + 1000
end
if rem > 0 or ms < 1 then
  ms = ms + 1
end
