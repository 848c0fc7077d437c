-- wrk script: spreads requests over 10,000 client addresses with X-Forwarded-For, which
-- loadserver trusts from loopback.
local n = 0
request = function()
  n = n + 1
  local i = n % 10000
  return wrk.format(nil, nil, {["X-Forwarded-For"] = "10.0." .. math.floor(i / 256) .. "." .. (i % 256)})
end
