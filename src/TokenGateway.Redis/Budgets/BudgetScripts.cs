namespace TokenGateway.Redis.Budgets;

/// <summary>
/// The Lua scripts behind <see cref="RedisBudgetCounterStore"/>: one script per operation, so each is atomic on the
/// server. Every key of one call carries the team's hash tag (<c>{team}</c>), so a call touches one cluster slot.
/// </summary>
/// <remarks>
/// Clock: ARGV[1] is the time in Unix milliseconds, or empty to read Redis <c>TIME</c> inside the script (the default:
/// replicas with skewed clocks agree on bucket refills and reservation expiry). Tests pass a fake clock instead.
/// Window hashes (<c>su</c>/<c>ru</c> spent/reserved micro-dollars, <c>st</c>/<c>rt</c> spent/reserved tokens,
/// <c>n</c> open reservations, <c>s</c> = seeded from the ledger) expire an hour after the window ends plus the
/// reservation TTL. Rate hashes hold one bucket per limit (<c>r*</c> requests, <c>t*</c> tokens: <c>l</c> level,
/// <c>u</c> updated ms, <c>c</c> capacity) with the <see cref="Core.Budgets.TokenBucket"/> arithmetic; an absent
/// bucket is a full one, so a rate hash may expire once it would have refilled. Reservations live in a sorted set
/// scored by expiry plus a hash of <c>usd|tokens|teamWindowKey|keyWindowKey</c> so a reap can release them.
/// </remarks>
internal static class BudgetScripts
{
    private const string Common = """
        local function now_ms()
          if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        local function num(v) if v then return tonumber(v) or 0 end return 0 end
        local function str(x) return string.format('%.17g', x) end
        local function int(x) return string.format('%.0f', x) end
        local function expire_in(key, ms)
          if ms < 60000 then ms = 60000 end
          if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, math.ceil(ms)) end
        end
        local function unreserve(w, usd, tok)
          if redis.call('EXISTS', w) == 1 then
            redis.call('HINCRBY', w, 'ru', int(-usd))
            redis.call('HINCRBY', w, 'rt', int(-tok))
            redis.call('HINCRBY', w, 'n', -1)
          end
        end
        local function reap(res, data, now)
          local ids = redis.call('ZRANGEBYSCORE', res, '-inf', now, 'LIMIT', 0, 256)
          for _, id in ipairs(ids) do
            local d = redis.call('HGET', data, id)
            if d then
              local usd, tok, tw, kw = string.match(d, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
              unreserve(tw, tonumber(usd), tonumber(tok))
              if kw ~= '' then unreserve(kw, tonumber(usd), tonumber(tok)) end
              redis.call('HDEL', data, id)
            end
            redis.call('ZREM', res, id)
          end
          return #ids
        end
        local function adjust(h, p, permits)
          local v = redis.call('HMGET', h, p .. 'l', p .. 'c')
          if v[1] then
            local level = math.min(tonumber(v[2]), tonumber(v[1]) + permits)
            redis.call('HSET', h, p .. 'l', str(level))
          end
        end

        """;

    /// <summary>
    /// KEYS: team window, key window, team rate, key rate, reservations, reservation data.
    /// ARGV: 1 now, 2 id, 3 ttl ms, 4 team window end ms, 5 key window end ms, 6 key budget?, 7 input tokens,
    /// 8 input cost, 9 max output, 10 min output, 11 output price (µ$/M), 12 team hard?, 13 team usd limit, 14 team token
    /// limit, 15 key hard?, 16 key usd limit, 17 key token limit, 18 team rpm, 19 team tpm, 20 key rpm, 21 key tpm,
    /// 22 key scope?, 23 require seeded?, 24 window retention ms. Empty limit = none.
    /// Returns: outcome, now, scope, blocked-by-in-flight, granted, team su ru st rt, key su ru st rt, bucket levels and
    /// capacities (team rpm, team tpm, key rpm, key tpm: 8 values, empty when absent), expires at, detail.
    /// </summary>
    public const string Reserve = Common + """
        local now = now_ms()
        local tw, kw, trate, krate, res, data = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
        local hasKeyBudget = ARGV[6] == '1'
        local hasKeyScope = ARGV[22] == '1'
        reap(res, data, now)
        if ARGV[23] == '1' then
          if redis.call('HGET', tw, 's') ~= '1' or (hasKeyBudget and redis.call('HGET', kw, 's') ~= '1') then
            return {'unseeded', int(now)}
          end
        end

        local function opt(v) if v == '' then return nil end return tonumber(v) end
        local input, inputCost, maxOut, minOut, price = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
        local function affordable(micros)
          if micros <= 0 then return 0 end
          if price <= 0 then return 9007199254740991 end
          local q = math.floor(micros / price)
          local r = micros - q * price
          return q * 1000000 + math.floor(r * 1000000 / price)
        end
        local function cost_of(tokens)
          if tokens <= 0 or price <= 0 then return 0 end
          return math.floor((tokens * price + 999999) / 1000000)
        end

        local granted = maxOut
        local function check_budget(w, hard, usdLimit, tokLimit, scope)
          if not hard then return nil end
          local v = redis.call('HMGET', w, 'su', 'ru', 'st', 'rt')
          local su, ru, st, rt = num(v[1]), num(v[2]), num(v[3]), num(v[4])
          if usdLimit then
            local left = usdLimit - su - ru - inputCost
            if left < 0 or affordable(left) < minOut then
              local without = usdLimit - su - inputCost - cost_of(minOut)
              return {scope, (without >= 0 and ru > 0) and '1' or '0', 'usd'}
            end
            granted = math.min(granted, affordable(left))
          end
          if tokLimit then
            local left = tokLimit - st - rt - input
            if left < minOut then
              local without = tokLimit - st - input - minOut
              return {scope, (without >= 0 and rt > 0) and '1' or '0', 'tokens'}
            end
            granted = math.min(granted, left)
          end
          return nil
        end

        local denial = check_budget(tw, ARGV[12] == '1', opt(ARGV[13]), opt(ARGV[14]), 'team')
        if not denial and hasKeyBudget then denial = check_budget(kw, ARGV[15] == '1', opt(ARGV[16]), opt(ARGV[17]), 'key') end
        if not denial and granted < minOut then denial = {'team', '0', 'useful'} end

        local buckets = {}
        local function load(name, h, p, cap)
          if not cap then return end
          local v = redis.call('HMGET', h, p .. 'l', p .. 'u', p .. 'c')
          local level, upd, c
          if v[1] then level, upd, c = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]) else level, upd, c = cap, now, cap end
          if c ~= cap then
            c = cap
            if level > cap then level = cap end
          end
          if now > upd then
            level = math.min(c, level + (now - upd) / 1000 * c / 60)
            upd = now
          end
          buckets[name] = {h = h, p = p, l = level, u = upd, c = c}
        end
        local teamRpm, teamTpm = opt(ARGV[18]), opt(ARGV[19])
        local keyRpm, keyTpm = nil, nil
        load('tr', trate, 'r', teamRpm)
        load('tt', trate, 't', teamTpm)
        if hasKeyScope then
          keyRpm, keyTpm = opt(ARGV[20]), opt(ARGV[21])
          load('kr', krate, 'r', keyRpm)
          load('kt', krate, 't', keyTpm)
        end
        local ttl = tonumber(ARGV[3])
        local function save_buckets()
          for _, b in pairs(buckets) do
            redis.call('HSET', b.h, b.p .. 'l', str(b.l), b.p .. 'u', str(b.u), b.p .. 'c', str(b.c))
            expire_in(b.h, math.max(ttl, (b.c - b.l) * 60000 / b.c + 60000))
          end
        end
        local function level(name) local b = buckets[name] if b then return str(b.l) end return '' end
        local function cap(name) local b = buckets[name] if b then return str(b.c) end return '' end
        local function result(outcome, scope, blocked, detail, expires)
          local t = redis.call('HMGET', tw, 'su', 'ru', 'st', 'rt')
          local k = {false, false, false, false}
          if hasKeyBudget then k = redis.call('HMGET', kw, 'su', 'ru', 'st', 'rt') end
          return {outcome, int(now), scope, blocked, int(granted),
            int(num(t[1])), int(num(t[2])), int(num(t[3])), int(num(t[4])),
            int(num(k[1])), int(num(k[2])), int(num(k[3])), int(num(k[4])),
            level('tr'), cap('tr'), level('tt'), cap('tt'), level('kr'), cap('kr'), level('kt'), cap('kt'),
            expires, detail}
        end

        if denial then
          save_buckets()
          return result('budget', denial[1], denial[2], denial[3], '')
        end

        local rateTokens = input + granted
        local function check_rate(rn, tn, rpm, tpm, scope)
          if rpm and buckets[rn].l < 1 then return {'rpm', scope} end
          if tpm then
            if rateTokens > tpm then return {'tpmx', scope} end
            if buckets[tn].l < rateTokens then return {'tpm', scope} end
          end
          return nil
        end
        local rd = check_rate('tr', 'tt', teamRpm, teamTpm, 'team')
        if not rd and hasKeyScope then rd = check_rate('kr', 'kt', keyRpm, keyTpm, 'key') end
        if rd then
          save_buckets()
          return result(rd[1], rd[2], '0', '', '')
        end

        local usd = inputCost + cost_of(granted)
        local tokens = input + granted
        local function reserve(w, windowEnd)
          redis.call('HINCRBY', w, 'ru', int(usd))
          redis.call('HINCRBY', w, 'rt', int(tokens))
          redis.call('HINCRBY', w, 'n', 1)
          expire_in(w, windowEnd + tonumber(ARGV[24]) + ttl - now)
        end
        reserve(tw, tonumber(ARGV[4]))
        if hasKeyBudget then reserve(kw, tonumber(ARGV[5])) end
        if buckets.tr then buckets.tr.l = buckets.tr.l - 1 end
        if buckets.tt then buckets.tt.l = buckets.tt.l - rateTokens end
        if buckets.kr then buckets.kr.l = buckets.kr.l - 1 end
        if buckets.kt then buckets.kt.l = buckets.kt.l - rateTokens end
        save_buckets()
        local expires = now + ttl
        redis.call('ZADD', res, int(expires), ARGV[2])
        redis.call('HSET', data, ARGV[2], string.format('%.0f|%.0f|%s|%s', usd, tokens, tw, hasKeyBudget and kw or ''))
        expire_in(res, 2 * ttl + 60000)
        expire_in(data, 2 * ttl + 60000)
        return result('ok', '', '0', '', int(expires))
        """;

    /// <summary>
    /// KEYS: reservations, reservation data, team window, key window, team rate, key rate.
    /// ARGV: 1 now, 2 id, 3 reserved usd, 4 reserved tokens, 5 actual usd, 6 actual tokens, 7 bucket correction,
    /// 8 key window?, 9 key scope?, 10 team window end ms, 11 key window end ms, 12 keep ms (retention + ttl).
    /// Returns: was open, team usd before, after, tokens before, after, key (same four, or empty).
    /// </summary>
    public const string Settle = Common + """
        local now = now_ms()
        local open = redis.call('ZREM', KEYS[1], ARGV[2]) == 1
        if open then redis.call('HDEL', KEYS[2], ARGV[2]) end
        local usd, tok = tonumber(ARGV[3]), tonumber(ARGV[4])
        local function charge(w, windowEnd)
          if open then unreserve(w, usd, tok) end
          local v = redis.call('HMGET', w, 'su', 'st')
          local su, st = num(v[1]), num(v[2])
          redis.call('HINCRBY', w, 'su', ARGV[5])
          redis.call('HINCRBY', w, 'st', ARGV[6])
          expire_in(w, windowEnd + tonumber(ARGV[12]) - now)
          return {int(su), int(su + tonumber(ARGV[5])), int(st), int(st + tonumber(ARGV[6]))}
        end
        local t = charge(KEYS[3], tonumber(ARGV[10]))
        local k = {'', '', '', ''}
        if ARGV[8] == '1' then k = charge(KEYS[4], tonumber(ARGV[11])) end
        if open then
          adjust(KEYS[5], 't', tonumber(ARGV[7]))
          if ARGV[9] == '1' then adjust(KEYS[6], 't', tonumber(ARGV[7])) end
        end
        return {open and '1' or '0', t[1], t[2], t[3], t[4], k[1], k[2], k[3], k[4]}
        """;

    /// <summary>
    /// KEYS: reservations, reservation data, team window, key window, team rate, key rate.
    /// ARGV: 1 now (unused), 2 id, 3 reserved usd, 4 reserved tokens, 5 rate tokens, 6 key window?, 7 key scope?.
    /// </summary>
    public const string Release = Common + """
        if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then
          redis.call('HDEL', KEYS[2], ARGV[2])
          unreserve(KEYS[3], tonumber(ARGV[3]), tonumber(ARGV[4]))
          if ARGV[6] == '1' then unreserve(KEYS[4], tonumber(ARGV[3]), tonumber(ARGV[4])) end
          adjust(KEYS[5], 't', tonumber(ARGV[5]))
          if ARGV[7] == '1' then adjust(KEYS[6], 't', tonumber(ARGV[5])) end
          return 1
        end
        return 0
        """;

    /// <summary>KEYS: reservations, reservation data, window. ARGV: 1 now. Reaps, then returns su ru st rt n.</summary>
    public const string Snapshot = Common + """
        reap(KEYS[1], KEYS[2], now_ms())
        local v = redis.call('HMGET', KEYS[3], 'su', 'ru', 'st', 'rt', 'n')
        return {int(num(v[1])), int(num(v[2])), int(num(v[3])), int(num(v[4])), int(num(v[5]))}
        """;

    /// <summary>KEYS: window. ARGV: 1 now, 2 spent usd, 3 spent tokens, 4 window end ms, 5 keep ms. spent = max(spent, seed).</summary>
    public const string Seed = Common + """
        local now = now_ms()
        local v = redis.call('HMGET', KEYS[1], 'su', 'st')
        if num(v[1]) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], 'su', ARGV[2]) end
        if num(v[2]) < tonumber(ARGV[3]) then redis.call('HSET', KEYS[1], 'st', ARGV[3]) end
        redis.call('HSET', KEYS[1], 's', '1')
        expire_in(KEYS[1], tonumber(ARGV[4]) + tonumber(ARGV[5]) - now)
        return 1
        """;

    /// <summary>KEYS: reservations, reservation data. ARGV: 1 now. Returns how many expired reservations were released.</summary>
    public const string Reap = Common + """
        return reap(KEYS[1], KEYS[2], now_ms())
        """;
}
