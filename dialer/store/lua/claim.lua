-- claim: moves members that are still due from a due zset into its leased zset (one claim per member,
-- however many schedulers race: a member already moved is skipped).
-- KEYS: due leased hash...
-- ARGV[1] claim up to (ms)  ARGV[2] lease until (ms)  ARGV[3] hash field to set  ARGV[4] when it equals
-- ARGV[5] the new value     ARGV[6..] members
-- Returns the members claimed.
local upto = tonumber(ARGV[1])
local claimed = {}
for i = 6, #ARGV do
  local m = ARGV[i]
  local s = redis.call('ZSCORE', K.due, m)
  if s and tonumber(s) <= upto then
    redis.call('ZREM', K.due, m)
    redis.call('ZADD', K.leased, ARGV[2], m)
    local h = KEYS[NK + i - 5]
    if h and ARGV[3] ~= '' and redis.call('HGET', h, ARGV[3]) == ARGV[4] then
      redis.call('HSET', h, ARGV[3], ARGV[5])
    end
    claimed[#claimed + 1] = m
  end
end
return claimed
