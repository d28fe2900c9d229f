-- resume: a paused (or stopping) campaign runs again and every attempt parked while it was not running
-- goes back to due, in one step (so no attempt parked by a concurrent admit is left behind).
-- KEYS[1] campaign hash  KEYS[2] campaign parked zset  KEYS[3] due zset
-- ARGV[1] allowed current statuses (comma list)  ARGV[2] new status  ARGV[3] now (ms)
-- Returns {'ok', old status, status after} or {'refused', current status, ''}.
local now = tonumber(ARGV[3])
local cur = status_of(KEYS[1])
if not cur or not is_member(ARGV[1], cur) then return {'refused', cur or 'missing', ''} end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'status_reason', '', 'updated_at', now)
local refs = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #refs, 2 do
  redis.call('ZADD', KEYS[3], math.max(now, tonumber(refs[i + 1])), refs[i])
end
redis.call('DEL', KEYS[2])
-- the last call may have ended while it was paused: nothing else would complete it now
return {'ok', cur, maybe_complete(KEYS[1], now)}
