-- start: draft -> scheduled and the PENDING CampaignSchedule at its launch time, in one step (a crash can
-- never leave a scheduled campaign that nothing launches). Starting a scheduled campaign again answers the
-- same schedule (and writes it if an older version left it without one).
-- KEYS: campaign schedule sched_due
-- ARGV[1] schedule member (ACCOUNT|CAMPAIGN)  ARGV[2] start_at (ms)  ARGV[3] schedule doc (JSON)
-- ARGV[4] now (ms)
-- Returns {'ok', schedule doc} (started now), {'same', schedule doc} or {'refused', current status}.
local cur = status_of(K.campaign)
if not cur then return {'refused', 'missing'} end
if cur == 'scheduled' then
  local doc = redis.call('HGET', K.schedule, 'doc')
  if doc then return {'same', doc} end
elseif not TRANSITIONS['start'][cur] or TRANSITIONS['start'][cur] ~= 'scheduled' then
  return {'refused', cur}
end
redis.call('HSET', K.campaign, 'status', 'scheduled', 'status_reason', '', 'updated_at', ARGV[4])
redis.call('HSET', K.schedule, 'doc', ARGV[3], 'status', 'PENDING')
redis.call('ZADD', K.sched_due, ARGV[2], ARGV[1])
return {'ok', ARGV[3]}
