-- recheck: a live call the provider reports as not over yet is checked again at `at`; a progress state
-- (ringing, in-progress) is kept, never moving back (a late `ringing` after `in-progress` changes nothing).
-- A call that ended meanwhile is left alone (its finish removed it from the checks).
-- KEYS: attempt checks checks_leased
-- ARGV[1] ref  ARGV[2] check again at (ms; '' = only keep the progress state: a callback)
-- ARGV[3] the sid the check was about  ARGV[4] provider status ('' = unknown)
-- Returns 'ok' or 'stale'.
local a = redis.call('HMGET', K.attempt, 'state', 'sid')
local mine = LIVE[a[1]] and not (a[2] and a[2] ~= '' and a[2] ~= ARGV[3])
-- a progress callback counts only once the dial is recorded (before that the attempt must stay `dialing`
-- for record_dial's compare-and-set)
if ARGV[2] == '' and (not a[2] or a[2] ~= ARGV[3]) then mine = false end
if ARGV[2] ~= '' then redis.call('ZREM', K.checks_leased, ARGV[1]) end
if not mine then
  if ARGV[2] ~= '' then redis.call('ZREM', K.checks, ARGV[1]) end
  return 'stale'
end
local rank = {dialing = 0, queued = 1, ringing = 2, ['in-progress'] = 3}
if rank[ARGV[4]] and rank[ARGV[4]] > rank[a[1]] then
  redis.call('HSET', K.attempt, 'state', ARGV[4])
end
if ARGV[2] ~= '' then redis.call('ZADD', K.checks, ARGV[2], ARGV[1]) end
return 'ok'
