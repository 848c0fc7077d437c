-- TakeAll: several decisions, all taken or none, in one script.
--
-- KEYS[i]  the key of request i
-- ARGV[1 + 6(i-1) ...]  request i: algorithm (1 to 6), then Rate, Period in microseconds,
--          capacity, n and fill as for a single decision
--
-- Reply: {all allowed (0 or 1)} followed by the six fields of each request's reply. When
-- one is denied nothing is written, and a request that would have passed reports what is
-- available now (its decision with n = 0).
local steps = {step_fixed_window, step_sliding_window_log, step_sliding_window_counter,
  step_token_bucket, step_leaky_bucket, step_gcra}

clock()
local replies, writes, algs = {}, {}, {}
local all = true
for i = 1, #KEYS do
  local a = 1 + 6 * (i - 1)
  local step = steps[tonumber(ARGV[a])]
  if not step then
    return redis.error_reply('ratelimit: bad algorithm in batch')
  end
  params(KEYS[i], a + 1)
  local reply, write = step()
  if reply.err then
    return reply
  end
  replies[i], writes[i], algs[i] = reply, write, step
  if reply[1] ~= 1 then
    all = false
  end
end
if all then
  for i = 1, #KEYS do
    if writes[i] then
      writes[i]()
    end
  end
else
  for i = 1, #KEYS do
    if writes[i] then
      params(KEYS[i], 2 + 6 * (i - 1))
      n = 0
      replies[i] = algs[i]()
    end
  end
end
local out = {all and 1 or 0}
for i = 1, #KEYS do
  for j = 1, 6 do
    out[#out + 1] = replies[i][j]
  end
end
return out
