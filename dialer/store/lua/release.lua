-- release: leases that expired (a worker died or a message was lost) go back to due at `now`.
-- KEYS: leased due
-- ARGV[1] now (ms)  ARGV[2] most to release
-- Returns the members released.
local now = tonumber(ARGV[1])
local members = redis.call('ZRANGEBYSCORE', K.leased, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(members) do
  redis.call('ZREM', K.leased, m)
  redis.call('ZADD', K.due, now, m)
end
return members
