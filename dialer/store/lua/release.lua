-- release: claims go back to be claimed again at `now`, counted by why in the stats (`released|WHY`):
--   expired   leases that ran out (a worker died, was stopped or lost its message): ARGV[4..] empty
--   shutdown  the members a stopping worker had fetched but not processed (ARGV[4..]): only those still
--             leased; a crash is told from a clean stop by this label
-- KEYS: leased due stats
-- ARGV[1] now (ms)  ARGV[2] most to release  ARGV[3] why  ARGV[4..] members
-- Returns the members released.
local now = tonumber(ARGV[1])
local members
if #ARGV > 3 then
  members = {}
  for i = 4, #ARGV do
    if redis.call('ZSCORE', K.leased, ARGV[i]) then members[#members + 1] = ARGV[i] end
  end
else
  members = redis.call('ZRANGEBYSCORE', K.leased, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
end
for _, m in ipairs(members) do
  redis.call('ZREM', K.leased, m)
  redis.call('ZADD', K.due, now, m)
end
if #members > 0 then redis.call('HINCRBY', K.stats, 'released|' .. ARGV[3], #members) end
return members
