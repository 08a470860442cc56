-- GCRA (generic cell rate algorithm) for mcpauth/ratelimit/redislimit.
--
-- KEYS[1]  the bucket
-- ARGV[1]  emission interval in microseconds (Per/Rate; may be fractional)
-- ARGV[2]  burst (bucket size, in units)
-- ARGV[3]  cost (0..burst; the Go side caps it)
--
-- The bucket is a string "<tat> <interval>": the theoretical arrival time in
-- microseconds on the Redis clock, and the interval it was computed with. An absent key, or a
-- t in the past, is a full bucket; the key expires when the bucket would be
-- full again, so idle buckets cost nothing. The time comes from TIME, so all
-- app instances share one clock (Redis >= 5 replicates scripts by effects).
--
-- Returns {allowed (1/0), remaining units, microseconds until full,
-- microseconds until a request of this cost can pass (0 when allowed)}.
local iv = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local eps = 1e-6

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

-- debt: units spent and not yet earned back, measured with the interval
-- they were spent under, so a changed limit keeps the units already spent.
local debt = 0
local state = redis.call('GET', KEYS[1])
if state then
  local sep = string.find(state, ' ', 1, true)
  local tat = tonumber(string.sub(state, 1, sep - 1))
  if tat > now then
    debt = (tat - now) / tonumber(string.sub(state, sep + 1))
  end
end

local after = debt + cost
if after <= burst + eps then
  if cost > 0 then
    local wait = after * iv
    redis.call('SET', KEYS[1], string.format('%.17g ', now + wait) .. ARGV[1],
      'PX', math.ceil(wait / 1000) + 1000)
  end
  return {1, math.floor(burst - after + eps), math.ceil(after * iv), 0}
end
return {0, math.floor(burst - debt + eps), math.ceil(debt * iv), math.ceil((after - burst) * iv)}
