-- update: name and launch time of a draft or scheduled campaign; a scheduled one moves its PENDING
-- schedule in the same step (refused once the scheduler has claimed it).
-- KEYS: campaign schedule sched_due
-- ARGV[1] unused  ARGV[2] new campaign doc (JSON)  ARGV[3] schedule member
-- ARGV[4] new start_at (ms)  ARGV[5] new schedule doc (JSON, '' = none)  ARGV[6] now
-- ARGV[7] the doc_version the new doc was built from (a concurrent update in between: 'changed')
-- Returns {'ok', status} or {'refused', status}.
local cur = status_of(K.campaign)
if not cur or not TRANSITIONS['update'][cur] then return {'refused', cur or 'missing'} end
if (redis.call('HGET', K.campaign, 'doc_version') or '0') ~= ARGV[7] then return {'refused', 'changed'} end
if cur == 'scheduled' then
  if redis.call('HGET', K.schedule, 'status') ~= 'PENDING' or not redis.call('ZSCORE', K.sched_due, ARGV[3]) then
    return {'refused', 'running'}
  end
  redis.call('ZADD', K.sched_due, ARGV[4], ARGV[3])
  redis.call('HSET', K.schedule, 'doc', ARGV[5])
end
redis.call('HSET', K.campaign, 'doc', ARGV[2], 'updated_at', ARGV[6])
redis.call('HINCRBY', K.campaign, 'doc_version', 1)
return {'ok', cur}
