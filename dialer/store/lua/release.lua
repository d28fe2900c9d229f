-- release: leases that expired (a worker died or a message was lost) go back to due at `now`.
-- KEYS[1] leased zset  KEYS[2] due zset
-- ARGV[1] now (ms)  ARGV[2] most to release
-- Returns the members released.
local now = tonumber(ARGV[1])
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(members) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZADD', KEYS[2], now, m)
end
return members
