-- change_status: a campaign command (pause, resume, stop, cancel, delete, launch, fail, ...) applied by the
-- one transition table, check and write in one step, so two racing commands cannot both succeed. A
-- campaign that runs again gets back every attempt parked while it did not run (in the same step, so none
-- parked by a concurrent admit is left behind); the completion is re-checked (the last call may have ended
-- while it was paused).
-- KEYS: campaign parked due
-- ARGV[1] command  ARGV[2] status reason  ARGV[3] now (ms)  ARGV[4..] field, value pairs written too
-- Returns {'ok', status before, status after} or {'refused', current status, ''}.
local now = tonumber(ARGV[3])
local cur = status_of(K.campaign)
if not cur then return {'refused', 'missing', ''} end
local nxt = TRANSITIONS[ARGV[1]][cur]
if not nxt then return {'refused', cur, ''} end
redis.call('HSET', K.campaign, 'status', nxt, 'status_reason', ARGV[2], 'updated_at', now)
for i = 4, #ARGV, 2 do
  redis.call('HSET', K.campaign, ARGV[i], ARGV[i + 1])
end
if nxt == 'running' then release_parked(K.parked, K.due, now) end
return {'ok', cur, maybe_complete(K.campaign, now)}
