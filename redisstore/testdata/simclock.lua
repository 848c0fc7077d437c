-- The test build's clock: prepended to a production script, it makes the script decide at
-- a simulated instant, sent as one more argument after the script's own (ARGV[#ARGV], in
-- microseconds since the Unix epoch), instead of the server's TIME. The production source
-- that follows is unchanged: it sees this redis table in place of the server's, whose TIME
-- answers the simulated instant and whose writes keep their TTL an hour longer, so that
-- state written at a simulated instant outlives the test's real time.
local server_redis = redis
local sim_now = tonumber(ARGV[#ARGV])
local redis = setmetatable({}, {__index = server_redis})

local hour_ms = 3600000

redis.call = function(cmd, ...)
  local a = {...}
  if cmd == 'TIME' then
    local s = math.floor(sim_now / 1000000)
    return {string.format('%d', s), string.format('%d', sim_now - s * 1000000)}
  elseif cmd == 'SET' then
    if a[3] ~= 'PX' or a[5] ~= nil then
      return server_redis.error_reply('simclock: a SET without a PX TTL last')
    end
    a[4] = a[4] + hour_ms
  elseif cmd == 'PEXPIRE' then
    a[2] = a[2] + hour_ms
  elseif cmd == 'EXPIRE' or cmd == 'SETEX' or cmd == 'PSETEX' or cmd == 'EXPIREAT' or cmd == 'PEXPIREAT' then
    return server_redis.error_reply('simclock: ' .. cmd .. ' has no simulated TTL')
  end
  return server_redis.call(cmd, unpack(a))
end
