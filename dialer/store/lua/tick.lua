-- tick: the scheduler's look at the queues, in one round trip (an idle tick is this call alone): expired
-- leases go back to due (counted `released|expired`), the due live-call checks are claimed at once (they
-- change no hash), the due schedules and attempts are returned for the caller to claim (claim.lua, with
-- their hashes) within the room the queue has, and the scheduler's heartbeat is written.
-- KEYS: leased due sched_leased sched_due checks checks_leased stats waiting_index tick alive messages
-- (messages: the Dramatiq queue's hash of waiting messages)
-- ARGV[1] now (ms)  ARGV[2] attempts due up to (ms)  ARGV[3] lease until (ms)  ARGV[4] claim batch
-- ARGV[5] this scheduler's name  ARGV[6] how long its previous tick took (ms)
-- Returns {released, due schedules, due attempts, checks claimed, waiting sets, more}: `more` is 1 when
-- the room ran out with work still due (the caller may look again as soon as workers take messages).
local now = tonumber(ARGV[1])
local batch = tonumber(ARGV[4])
local released = 0
for _, pair in ipairs({{K.leased, K.due}, {K.sched_leased, K.sched_due}, {K.checks_leased, K.checks}}) do
  released = released + #release_leases(pair[1], pair[2], K.stats, now, 1000, 'expired')
end
local room = math.max(0, batch - redis.call('HLEN', K.messages))
local schedules, attempts = {}, {}
if room > 0 then
  schedules = redis.call('ZRANGEBYSCORE', K.sched_due, '-inf', now, 'LIMIT', 0, room)
  if room > #schedules then
    attempts = redis.call('ZRANGEBYSCORE', K.due, '-inf', ARGV[2], 'LIMIT', 0, room - #schedules)
  end
end
-- checks (outcomes free live slots and money) are never held back behind dials
local checks = redis.call('ZRANGEBYSCORE', K.checks, '-inf', now, 'LIMIT', 0, batch)
for _, m in ipairs(checks) do
  redis.call('ZREM', K.checks, m)
  redis.call('ZADD', K.checks_leased, ARGV[3], m)
end
redis.call('HSET', K.tick, 'at', now, 'took_ms', ARGV[6], 'by', ARGV[5])
redis.call('ZADD', K.alive, now, ARGV[5])
local more = 0
if room == 0 then
  if redis.call('ZCOUNT', K.due, '-inf', ARGV[2]) > 0 or redis.call('ZCOUNT', K.sched_due, '-inf', now) > 0 then
    more = 1
  end
elseif #schedules + #attempts >= room then
  more = 1
end
return {released, schedules, attempts, checks, redis.call('HLEN', K.waiting_index), more}
