package txqueue

import "github.com/redis/go-redis/v9"

// whenFull starts the consumer's scripts: Redis (7.0 and later) runs them
// also past its maxmemory, where it refuses what adds data (noeviction, the
// stack's policy). What stops at the ceiling is then only the intake
// (enqueueScript, whose XADD Redis refuses: core-api's 503, nothing queued),
// while what was accepted is still claimed, charged and recorded, each
// adding a few fields to a record that exists (the claim recreates one that
// expired). Without it, Redis refused a script whose first write adds data:
// a round's record after its charges (the round held, retried, until
// records expired and freed memory, STATUS_TTL later) and a claim whose
// first record had expired.
const whenFull = "#!lua flags=allow-oom"

// The consumer's scripts as Redis 7.0 and later run them, past their
// maxmemory too (whenFull); scriptsFor picks these or scriptsBeforeRedis7.
var (
	claimScript      = redis.NewScript(whenFull + claimLua)
	recordScript     = redis.NewScript(whenFull + recordLua)
	releaseScript    = redis.NewScript(whenFull + releaseLua)
	deadLetterScript = redis.NewScript(whenFull + deadLetterLua)
	trimScript       = redis.NewScript(whenFull + trimLua)
	forgetScript     = redis.NewScript(whenFull + forgetLua)
	uncountScript    = redis.NewScript(whenFull + uncountLua)
)

// consumerScripts are the scripts a Consumer runs, in the dialect of its
// Redis (scriptsFor).
type consumerScripts struct {
	claim, record, release, deadLetter, trim, forget, uncount *redis.Script
}

var (
	// scriptsWithAllowOOM, for Redis 7.0 and later (whenFull).
	scriptsWithAllowOOM = &consumerScripts{claimScript, recordScript, releaseScript, deadLetterScript, trimScript, forgetScript,
		uncountScript}
	// scriptsBeforeRedis7 are the same scripts without a shebang, which a
	// Redis before 7.0 cannot compile ("unexpected symbol near '#'": every
	// claim failed, and nothing was charged). Such a Redis runs them as
	// 7.0 runs a script without flags: past its maxmemory it refuses one
	// whose first write adds data, so there a round's record waits for
	// room (RELIABILITY.md D105).
	scriptsBeforeRedis7 = &consumerScripts{redis.NewScript(claimLua), redis.NewScript(recordLua), redis.NewScript(releaseLua),
		redis.NewScript(deadLetterLua), redis.NewScript(trimLua), redis.NewScript(forgetLua), redis.NewScript(uncountLua)}
)

// enqueueScript queues one transaction atomically, in one round trip.
//
// KEYS: 1 stream, 2 status hash, [3 idempotency record]
// ARGV: 1 id, 2 user_id, 3 amount, 4 currency, 5 request_id, 6 now (unix ns),
// 7 status TTL (ms), 8 request fingerprint, 9 idempotency TTL (ms)
// Returns {0, id} when queued, {1, first id} for a replay with the same
// fingerprint, {2, first id} when the key was used with another fingerprint.
// Run twice with the same id (ids are random, so only a rerun of the same
// call can do that), it queues once and answers {0, id} both times.
var enqueueScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, ARGV[1]} end
if #KEYS == 3 then
  local prev = redis.call('HMGET', KEYS[3], 'fingerprint', 'id')
  if prev[1] then
    if prev[1] == ARGV[8] then return {1, prev[2]} end
    return {2, prev[2]}
  end
end
redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'user_id', ARGV[2], 'amount', ARGV[3],
  'currency', ARGV[4], 'request_id', ARGV[5], 'enqueued_at', ARGV[6])
redis.call('HSET', KEYS[2], 'status', 'queued', 'user_id', ARGV[2], 'amount', ARGV[3],
  'currency', ARGV[4], 'created_at', ARGV[6], 'updated_at', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
if #KEYS == 3 then
  redis.call('HSET', KEYS[3], 'fingerprint', ARGV[8], 'id', ARGV[1])
  redis.call('PEXPIRE', KEYS[3], ARGV[9])
end
return {0, ARGV[1]}
`)

// claimCode is what claimScript returns for each transaction.
type claimCode int64

const (
	// claimFailed: failed before (dead-lettered).
	claimFailed claimCode = -1
	// claimDone: already processed, or a second entry of a transaction
	// already in this call (the first one carries it).
	claimDone claimCode = 0
	// claimCharge: charge it.
	claimCharge claimCode = 1
	// claimChargeUnknownRound: charge it; it was claimed before in a round
	// that may have been charged without a record (its outcome is unknown),
	// or an earlier delivery may have charged it and a later charge failed.
	claimChargeUnknownRound claimCode = 2
	// claimBusy: another consumer is charging it right now; leave it pending.
	claimBusy claimCode = 3
	// claimChargeRoundNeverStarted: charge it; it was claimed before, but its
	// round never started.
	claimChargeRoundNeverStarted claimCode = 4
	// claimChargeRecordExpired: charge it; it was delivered before, and its
	// status record is gone (expired), so an earlier delivery may have
	// charged it.
	claimChargeRecordExpired claimCode = 5
	// claimDeadLetter: delivered more than the most deliveries allowed, a
	// PSP step of it failed, and nothing has charged it since (released
	// after that failure, or its round never started): dead-letter it. Not
	// claimed; the claim of a consumer that stopped before its round is
	// dropped, so that deadLetterScript does not take it for one made since.
	claimDeadLetter claimCode = 6
)

// claimScript takes a batch of transactions for the PSP step, as the first
// of three steps (claim, charge, record), in one call for the whole batch. It
// answers, for each, whether this consumer should charge it, and marks its
// record with who is charging since when and in which round of the batch
// (the consumer charges the chargeable ones in that order, ARGV[5] per
// round, each round only after the previous one is recorded), so that a
// redelivery can tell "never charged" from "charge interrupted". A missing
// record (expired, or never written) is recreated from the message so the
// owner can still see the outcome; if the message was delivered before, an
// earlier delivery may have charged it, and the code says so. A claimed
// record with less than half of the status TTL left gets the whole of it
// again, so that it outlives the claim (a fresh record, the usual case, is
// left alone: an expiry written per claim costs Redis CPU and AOF).
// Call it through claimer.claim.
//
// A transaction answered "charge it again, at least once" (2 or 5) keeps a
// maybe_charged mark in its record until it is processed: when that charge
// fails and is released, the earlier delivery may still have charged it, so
// every later claim answers 2 too (never 1, 4 or a dead letter).
//
// A message delivered more than the most deliveries allowed (ARGV[6], 0 for
// no limit) is dead-lettered only if nothing can have charged it and a PSP
// step of it failed before (psp_failed, set by recordScript when it
// releases a failed charge): one another consumer is charging is left
// pending (busy), one an earlier delivery may have charged (its round in
// hand, or its record expired) is charged again, at least once, never
// marked failed, and one the PSP never saw (never claimed, its round never
// started, or released at a stop: its deliveries were cut short by a
// crash or a stop, not failed) is charged: dead-lettered, a transaction
// the PSP was never asked about would read "failed" (with MAX_DELIVERIES
// 1, a kill in a batch's first round failed all of its later rounds).
// An entry dead-lettered so loses the claim of the consumer that stopped
// before its round (as a release would): deadLetterScript leaves pending an
// entry whose record names another claimant, which it takes for a claim
// made since. Kept, that dead claim left the entry pending, and the next
// reclaim, finding the claim's round now the lowest unrecorded one, charged
// it again as a round in hand (maybe charged: never dead-lettered after).
//
// A claim sent again with the same consumer and the same now (ARGV[1]) is
// this consumer's retry of a call whose answer it never got
// (Consumer.claimUntilRedisAnswers): when the first call ran, its claims
// are taken as this one's, charged by nobody since, as the consumer charges
// only what an answer told it to. One the first call marked maybe_charged
// keeps that answer (2): the branch comes after the mark's.
//
// Of an earlier claim whose consumer stopped, only the first round it had
// not recorded can have been charged: the later rounds had not started.
// Among the keys of one call, that is the lowest unrecorded round of each
// earlier claim (consumer and time). A record without a round (claimed before
// rounds were stored) counts as possibly charged.
//
// KEYS: status hashes, one per transaction
// ARGV: 1 now (unix ns), 2 status TTL (ms), 3 claimant (the consumer's name
// and a suffix of its own: Consumer.claimant), 4 lease (ns),
// 5 round size, 6 most deliveries (0: no limit), then per key 5 values:
// user_id, amount, currency, enqueued_at (unix ns), deliveries (this one
// included)
// Another consumer's claim holds for its own lease from its charging_at or,
// when its consumer renewed it (recordScript), from its leased_at: the lease
// it was taken with (charging_lease, its consumer's VisibilityTimeout),
// ARGV[4] for a claim that has none (written before it was stored). Judged
// by the reclaiming consumer's lease instead, a claim taken with a longer
// one (connectors of different VISIBILITY_TIMEOUTs on one Redis) was taken
// over while its consumer still charged the batch well within its lease.
//
// Returns one claimCode per key.
const claimLua = `
local now, ttl, lease, roundSize = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
local maxDeliveries = tonumber(ARGV[6])
local recs, firstRound = {}, {}
for i, k in ipairs(KEYS) do
  local r = redis.call('HMGET', k, 'status', 'charging_by', 'charging_at', 'charging_round', 'leased_at', 'maybe_charged', 'psp_failed',
    'charging_lease')
  recs[i] = r
  if r[2] and r[1] ~= 'processed' and r[1] ~= 'failed' then
    local claim, round = r[2] .. '@' .. r[3], tonumber(r[4]) or -1
    if not firstRound[claim] or round < firstRound[claim] then firstRound[claim] = round end
  end
end
local out, charging, seen = {}, 0, {}
for i, k in ipairs(KEYS) do
  local a = 6 + 5 * (i - 1)
  local r = recs[i]
  local delivered = tonumber(ARGV[a + 5])
  local over = maxDeliveries > 0 and delivered > maxDeliveries
  if seen[k] then
    out[i] = 0
  elseif r[1] == 'processed' then
    out[i] = 0
  elseif r[1] == 'failed' then
    out[i] = -1
  elseif r[2] and r[2] ~= ARGV[3] and math.max(tonumber(r[3]), tonumber(r[5]) or 0) + (tonumber(r[8]) or lease) > now then
    out[i] = 3
  else
    if not r[1] then
      out[i] = delivered > 1 and 5 or 1
    elseif r[6] then
      out[i] = 2
    elseif not r[2] then
      out[i] = 1
    elseif r[2] == ARGV[3] and r[3] == ARGV[1] then
      out[i] = 1
    elseif (tonumber(r[4]) or -1) == firstRound[r[2] .. '@' .. r[3]] then
      out[i] = 2
    else
      out[i] = 4
    end
    if over and r[7] and (out[i] == 1 or out[i] == 4) then
      out[i] = 6
      redis.call('HDEL', k, 'charging_by', 'charging_at', 'charging_round', 'leased_at', 'charging_lease')
    end
  end
  if out[i] == 1 or out[i] == 2 or out[i] == 4 or out[i] == 5 then
    if not r[1] then
      redis.call('HSET', k, 'status', 'queued', 'user_id', ARGV[a + 1], 'amount', ARGV[a + 2],
        'currency', ARGV[a + 3], 'created_at', ARGV[a + 4], 'updated_at', ARGV[1])
      redis.call('PEXPIRE', k, ttl)
    else
      local pttl = redis.call('PTTL', k)
      if pttl >= 0 and pttl < ttl / 2 then redis.call('PEXPIRE', k, ttl) end
    end
    redis.call('HDEL', k, 'leased_at')
    redis.call('HSET', k, 'charging_by', ARGV[3], 'charging_at', ARGV[1],
      'charging_round', math.floor(charging / roundSize), 'charging_lease', ARGV[4])
    if out[i] == 2 or out[i] == 5 then redis.call('HSET', k, 'maybe_charged', '1') end
    charging = charging + 1
  end
  seen[k] = true
end
return out
`

// recordScript is the last step: the PSP step succeeded, so the records
// become processed and the stream entries are acknowledged, together. It
// runs right after each round of charges, one call for the whole round (see
// Consumer.chargeAll), so that a crash can interrupt at most the round in
// hand, and the round costs the connector one round trip to Redis. A record
// that expired meanwhile (STATUS_TTL shorter than the charge) is not written
// again: a partial record would have no expiry.
//
// The same call can renew this consumer's lease on the rest of the batch, so
// that a batch that takes longer than the lease (VISIBILITY_TIMEOUT) is not
// taken over by another consumer: for each of those transactions still
// claimed by this consumer it sets leased_at to now (charging_at stays: with
// charging_by it names the claim, whose rounds the claim script compares)
// and XCLAIMs the entry to itself (JUSTID: the idle time restarts, the
// delivery count does not grow), so no XAUTOCLAIM takes it. It answers, for
// each, whether it is still this consumer's to charge (another consumer may
// have taken it over, or its record expired).
//
// The round's failed charges are released in the same call (as
// releaseScript does), so that a crash later in the batch leaves no claim of
// an earlier round behind: the claim script takes the lowest unrecorded round
// of a dead consumer for the one in hand. Each is marked psp_failed: over
// the most deliveries, only such a one is dead-lettered (claimScript).
//
// A renewal also renews the status record's expiry, as a claim does
// (claimScript: to STATUS_TTL once less than half of it is left), so that a
// batch held longer than that half does not lose its records, and with them
// its claims, midway.
//
// KEYS: 1 stream, then the round's charged status hashes (n), then its failed
// ones (f), then those whose lease to renew
// ARGV: 1 now (unix ns), 2 group, 3 consumer (its name in the group), 4 n,
// 5 f, 6 claimant (Consumer.claimant: who it is in the claims), 7 status TTL
// (ms), then the n charged stream ids, then the renewed ones' stream ids
// Returns one flag per renewed transaction: 1 still ours, 0 not.
const recordLua = `
local n, f, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[7])
for i = 2, n + 1 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], 'status', 'processed', 'processed_at', ARGV[1], 'updated_at', ARGV[1])
    redis.call('HDEL', KEYS[i], 'charging_by', 'charging_at', 'charging_round', 'leased_at', 'maybe_charged', 'psp_failed',
      'charging_lease')
  end
end
if n > 0 then redis.call('XACK', KEYS[1], ARGV[2], unpack(ARGV, 8, 7 + n)) end
for i = n + 2, n + f + 1 do
  if redis.call('HGET', KEYS[i], 'charging_by') == ARGV[6] then
    redis.call('HDEL', KEYS[i], 'charging_by', 'charging_at', 'charging_round', 'leased_at', 'charging_lease')
    redis.call('HSET', KEYS[i], 'updated_at', ARGV[1], 'psp_failed', '1')
  end
end
local owned = {}
for j = 1, #KEYS - 1 - n - f do
  local k, id = KEYS[1 + n + f + j], ARGV[7 + n + j]
  if redis.call('HGET', k, 'charging_by') == ARGV[6] then
    redis.call('HSET', k, 'leased_at', ARGV[1])
    local pttl = redis.call('PTTL', k)
    if pttl >= 0 and pttl < ttl / 2 then redis.call('PEXPIRE', k, ttl) end
    redis.call('XCLAIM', KEYS[1], ARGV[2], ARGV[3], 0, id, 'JUSTID')
    owned[j] = 1
  else
    owned[j] = 0
  end
end
return owned
`

// releaseScript undoes claimScript after the PSP step failed, so that a
// redelivery charges it afresh; it only touches a claim of this consumer.
//
// KEYS: 1 status hash
// ARGV: 1 claimant (Consumer.claimant), 2 now (unix ns)
const releaseLua = `
if redis.call('HGET', KEYS[1], 'charging_by') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'charging_by', 'charging_at', 'charging_round', 'leased_at', 'charging_lease')
  redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
  return 1
end
return 0
`

// deadLetterScript moves one pending entry to the dead-letter stream: XACK
// (if nobody else did), XADD the entry with why, and mark the status record
// failed. An entry whose transaction was already processed is only acked.
// One that another consumer has claimed since this one decided (its claim
// names another claimant), or that a claim since found maybe charged
// (maybe_charged), is left alone, pending: the consumer decides at the end
// of its batch, and meanwhile its lease may have run out in a pause between
// the failed charge and its record, so that another consumer took the
// transaction for this one's round in hand and charged it again. Marked
// failed and acknowledged, that charge was never looked up or recorded.
//
// With ARGV[7] '1' the consumer itself found the transaction maybe charged
// (its own claim said so) and its last delivery's PSP step failed: it is
// dead-lettered all the same, so that it is not charged again for good,
// but its status record is left as it was (not failed: the money may have
// moved), for a person to settle. Another consumer's claim still leaves it
// pending.
//
// KEYS: 1 stream, 2 dead-letter stream, [3 status hash]
// ARGV: 1 group, 2 entry id, 3 now (unix ns), 4 public reason, 5 status TTL
// (ms), 6 claimant (Consumer.claimant), 7 '1' to keep the status (maybe
// charged) or '0', 8.. field/value pairs for the dead-letter entry
// Returns 1 when dead-lettered, 0 when there was nothing to do, 2 when left
// pending for the claim of another consumer.
const deadLetterLua = `
local keep = ARGV[7] == '1'
if #KEYS == 3 then
  local r = redis.call('HMGET', KEYS[3], 'status', 'charging_by', 'maybe_charged')
  if r[1] == 'processed' then
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
    return 0
  end
  if (r[2] and r[2] ~= ARGV[6]) or (r[3] and not keep) then return 2 end
end
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 8))
if #KEYS == 3 then
  if not keep then
    redis.call('HSET', KEYS[3], 'status', 'failed', 'failed_at', ARGV[3], 'updated_at', ARGV[3],
      'error', ARGV[4])
  end
  redis.call('HDEL', KEYS[3], 'charging_by', 'charging_at', 'charging_round', 'leased_at', 'charging_lease')
  if not keep and redis.call('PTTL', KEYS[3]) < 0 then redis.call('PEXPIRE', KEYS[3], ARGV[5]) end
end
return 1
`

// trimScript removes acknowledged history from the stream, atomically: for
// every consumer group the bound is its oldest pending entry or, when it has
// none, the entry after its last-delivered id; XTRIM MINID the smallest bound
// removes only entries that every group has read and acknowledged. Nothing
// undelivered or pending is ever trimmed. It does nothing when the key is not
// a stream, the stream has no group, or a group has delivered nothing.
//
// KEYS: 1 stream
// Returns the number of entries removed.
const trimLua = `
if redis.call('TYPE', KEYS[1]).ok ~= 'stream' then return 0 end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
-- Stream ids "ms-seq" compared exactly: decimal parts without leading zeros
-- order by length, then as strings.
local function lesspart(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if am ~= bm then return lesspart(am, bm) end
  return lesspart(as, bs)
end
local bound
for _, g in ipairs(groups) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  local last = f['last-delivered-id']
  if not last or last == '0-0' then return 0 end
  local b
  if f['pending'] > 0 then
    b = redis.call('XPENDING', KEYS[1], f['name'])[2]
    if less(last, b) then b = last end
  else
    local ms, seq = string.match(last, '^(%d+)-(%d+)$')
    if #seq < 15 then b = ms .. '-' .. string.format('%d', tonumber(seq) + 1) else b = last end
  end
  if not bound or less(b, bound) then bound = b end
end
return redis.call('XTRIM', KEYS[1], 'MINID', bound)
`

// forgetScript removes consumers from a group, each only while nothing is
// pending for it: XGROUP DELCONSUMER drops the consumer's pending entries
// with it, and with them the only record that they were delivered and never
// acknowledged, so a consumer that holds any stays. Removing one that still
// runs loses nothing: Redis adds it again at its next read or claim.
//
// KEYS: 1 stream
// ARGV: 1 group, 2.. consumer names
// Returns, per name, 1 when it is no longer in the group (removed, or never
// there), 0 when it stays for its pending entries.
const forgetLua = `
local out = {}
for i = 2, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[i]) > 0 then
    out[#out + 1] = 0
  else
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[i])
    out[#out + 1] = 1
  end
end
return out
`

// uncountScript takes back the delivery that a reclaim (XAUTOCLAIM) counted
// for entries the claim then found held by another consumer (claimBusy):
// such a delivery could charge nothing, and only deliveries that could
// count towards the most deliveries allowed. Counted, a connector with a
// shorter VisibilityTimeout beside one with a longer lease reclaimed the
// other's unstarted rounds every VisibilityTimeout of its own, each time
// raising their counts, so one failed PSP step dead-lettered an entry the
// PSP had been asked about once (RELIABILITY.md D134). It sets an entry's
// count one lower (XCLAIM with RETRYCOUNT and JUSTID) only while it is
// still the count the reclaim saw (XPENDING, Consumer.deliveryCounts): a
// call sent twice takes back one delivery, and one that anything counted
// since (another reclaim, whose own claim judges it) is left as it is. The
// entry keeps its consumer and its idle time; an acknowledged one is left
// alone.
//
// KEYS: 1 stream
// ARGV: 1 group, then per entry its stream id and the delivery count the
// reclaim saw (this reclaim's included)
// Returns how many counts it lowered.
const uncountLua = `
local n = 0
for i = 2, #ARGV, 2 do
  local id, seen = ARGV[i], tonumber(ARGV[i + 1])
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1]
  if p and p[1] == id and seen > 1 and tonumber(p[4]) == seen then
    redis.call('XCLAIM', KEYS[1], ARGV[1], p[2], 0, id, 'IDLE', p[3], 'RETRYCOUNT', seen - 1, 'JUSTID')
    n = n + 1
  end
end
return n
`

// allScripts are preloaded by Connect and reloaded after a NOSCRIPT.
var allScripts = []*redis.Script{enqueueScript, claimScript, recordScript, releaseScript, deadLetterScript,
	trimScript, forgetScript, uncountScript}
