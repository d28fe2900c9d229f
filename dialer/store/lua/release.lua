-- release: a stopping worker hands back the claims of the messages it had fetched but not processed: those
-- still leased go back to be claimed again at `now`, counted as `released|WHY` (a clean stop is told
-- from a crash, whose leases run out: `released|expired`, in tick.lua).
-- KEYS: leased due stats
-- ARGV[1] now (ms)  ARGV[2] why  ARGV[3..] members
-- Returns the members released.
return release_leases(K.leased, K.due, K.stats, tonumber(ARGV[1]), 0, ARGV[2], {unpack(ARGV, 3)})
