-- Shared by the bucket algorithms (token bucket, leaky bucket, GCRA); follows the prelude.

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

-- decide allows n if used + n * pu <= cap * pu. It returns the amount in use after the
-- step, the reply's fields, and that amount divided by rate (q microseconds and r in
-- 1/rate microseconds), the time until the bucket is back to full capacity.
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
  local q, r = amt_divrate(uw, uf)
  local c, cr = divmod(1000 * r, rate)
  if cr > 0 then
    c = c + 1
  end
  return uw, uf, {allowed, remaining, rus, rns, q, c}, q, r
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
