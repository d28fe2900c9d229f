-- update: name and launch time of a draft or scheduled campaign; a scheduled one moves its PENDING
-- schedule in the same step (refused once the scheduler has claimed it).
-- KEYS[1] campaign hash  KEYS[2] schedule hash  KEYS[3] schedules due zset
-- ARGV[1] allowed statuses (comma list)  ARGV[2] new campaign doc (JSON)  ARGV[3] schedule member
-- ARGV[4] new start_at (ms)  ARGV[5] new schedule doc (JSON, '' = none)  ARGV[6] now
-- ARGV[7] the doc_version the new doc was built from (a concurrent update in between: 'changed')
-- Returns {'ok', status} or {'refused', status}.
local cur = status_of(KEYS[1])
if not cur or not is_member(ARGV[1], cur) then return {'refused', cur or 'missing'} end
if (redis.call('HGET', KEYS[1], 'doc_version') or '0') ~= ARGV[7] then return {'refused', 'changed'} end
if cur == 'scheduled' then
  if redis.call('HGET', KEYS[2], 'status') ~= 'PENDING' or not redis.call('ZSCORE', KEYS[3], ARGV[3]) then
    return {'refused', 'running'}
  end
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
  redis.call('HSET', KEYS[2], 'doc', ARGV[5])
end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'updated_at', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'doc_version', 1)
return {'ok', cur}
