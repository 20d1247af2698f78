using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Ledger;

namespace TokenGateway.Storage.Usage;

/// <summary>Which table an aggregate reads: the per-request events, the hourly rollup or the daily rollup.</summary>
internal enum UsageSource
{
    Events,
    Hourly,
    Daily,
}

/// <summary>
/// The provider-neutral half of the usage queries (SQLite and PostgreSQL): the split of a time range into whole
/// days (daily rollup), whole hours (hourly rollup) and partial edge hours (per-request events), group-key
/// formatting, accumulation and result shaping. Providers supply only the connection, the SQL and the event row
/// mapping.
/// </summary>
/// <remarks>
/// Group keys: team/key/model ids ('' when the event had none), <c>yyyy-MM-dd</c> for day and
/// <c>yyyy-MM-ddTHH:00:00Z</c> for hour (UTC). Groups are ordered by key (ordinal; time keys chronologically).
/// An aggregate command returns one row per group: the group value (seconds since the epoch for day/hour, a
/// string otherwise, anything when ungrouped), then requests, input tokens received, input tokens sent, input
/// tokens, output tokens, cached input tokens, reasoning tokens, cost nanos and tokens saved, all 64-bit.
/// </remarks>
internal abstract class DbUsageQueryService : IUsageQueryService
{
    /// <summary>Accepted values of <see cref="UsageQuery.GroupBy"/>.</summary>
    public static readonly IReadOnlyList<string> GroupByValues = ["team", "key", "model", "day", "hour"];

    private const long MsPerHour = 3_600_000;

    private const long MsPerDay = 86_400_000;

    public async Task<UsageReport> QueryAsync(UsageQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var groupBy = NormalizeGroupBy(query.GroupBy);
        var groups = new SortedDictionary<string, Accumulator>(StringComparer.Ordinal);
        var lo = query.From?.ToUnixTimeMilliseconds() ?? long.MinValue;
        var hi = query.To?.ToUnixTimeMilliseconds() ?? long.MaxValue;
        if (lo >= hi)
        {
            return new UsageReport(new UsageTotals(), []);
        }

        await using var connection = await OpenAsync(cancellationToken);
        foreach (var (source, segmentLo, segmentHi) in Segments(lo, hi, hoursOnly: groupBy == "hour"))
        {
            await AggregateAsync(connection, source, query, groupBy, segmentLo, segmentHi, groups, cancellationToken);
        }

        var total = new Accumulator();
        var list = new List<UsageGroup>(groups.Count);
        foreach (var (key, accumulator) in groups)
        {
            total.Add(accumulator);
            if (groupBy is not null)
            {
                list.Add(new UsageGroup(key, accumulator.ToTotals()));
            }
        }

        return new UsageReport(total.ToTotals(), list);
    }

    public async Task<UsageEvent?> GetAsync(string requestId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(requestId);
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = CreateGetCommand(connection, requestId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadEvent(reader) : null;
    }

    public async IAsyncEnumerable<UsageEvent> ListAsync(UsageQuery query, int limit, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (limit <= 0)
        {
            yield break;
        }

        await using var connection = await OpenAsync(cancellationToken);
        await using var command = CreateListCommand(connection, query, limit);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return ReadEvent(reader);
        }
    }

    /// <summary>
    /// Token anatomy per team and model over [<paramref name="from"/>, <paramref name="to"/>), from the same split as
    /// <see cref="QueryAsync"/>: whole days and hours from the rollups' anatomy columns, edge hours from the events that
    /// carry an anatomy.
    /// </summary>
    public async Task<IReadOnlyList<TokenAnatomyRollup>> GetTokenAnatomyAsync(string? teamId, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        var lo = from.ToUnixTimeMilliseconds();
        var hi = to.ToUnixTimeMilliseconds();
        if (lo >= hi)
        {
            return [];
        }

        var team = string.IsNullOrEmpty(teamId) ? null : teamId;
        var rows = new SortedDictionary<(string Team, string Model), long[]>(TeamModelComparer.Instance);
        await using var connection = await OpenAsync(cancellationToken);
        foreach (var (source, segmentLo, segmentHi) in Segments(lo, hi, hoursOnly: false))
        {
            await using var command = CreateAnatomyCommand(connection, source, team, segmentLo, segmentHi);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var key = (reader.GetString(0), reader.GetString(1));
                if (!rows.TryGetValue(key, out var sums))
                {
                    sums = new long[AnatomySums];
                    rows[key] = sums;
                }

                for (var i = 0; i < AnatomySums; i++)
                {
                    sums[i] += reader.GetInt64(2 + i);
                }
            }
        }

        var result = new List<TokenAnatomyRollup>(rows.Count);
        foreach (var ((teamKey, model), s) in rows)
        {
            if (s[0] > 0)
            {
                result.Add(new TokenAnatomyRollup(teamKey, model, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], LedgerSchema.FromNanos(s[8])));
            }
        }

        return result;
    }

    /// <summary>Opens a connection to the ledger database.</summary>
    protected abstract ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The aggregate over <paramref name="source"/> for the bucket range [<paramref name="loMs"/>,
    /// <paramref name="hiMs"/>) (long.MinValue/MaxValue: open), filtered by <paramref name="query"/> and grouped by
    /// <paramref name="groupBy"/>, in the row shape described on this class.
    /// </summary>
    protected abstract DbCommand CreateAggregateCommand(
        DbConnection connection, UsageSource source, UsageQuery query, string? groupBy, long loMs, long hiMs);

    /// <summary>The select of one event by request id.</summary>
    protected abstract DbCommand CreateGetCommand(DbConnection connection, string requestId);

    /// <summary>The select of the newest <paramref name="limit"/> events matching <paramref name="query"/>.</summary>
    protected abstract DbCommand CreateListCommand(DbConnection connection, UsageQuery query, int limit);

    /// <summary>Maps the current event row (the provider's event column list) to a <see cref="UsageEvent"/>.</summary>
    protected abstract UsageEvent ReadEvent(DbDataReader reader);

    /// <summary>Number of 64-bit sums in an anatomy row after its team and model.</summary>
    protected const int AnatomySums = 9;

    /// <summary>
    /// The anatomy aggregate over <paramref name="source"/> for [<paramref name="loMs"/>, <paramref name="hiMs"/>),
    /// optionally for one team, grouped by team and model ('' for none): one row per group with the team, the model,
    /// then the number of events with an anatomy, Σ system, tools, history, tool results, latest user, Σ billed output,
    /// Σ reasoning and Σ cost nanos of those events, all 64-bit. Events without an anatomy contribute nothing.
    /// </summary>
    protected abstract DbCommand CreateAnatomyCommand(DbConnection connection, UsageSource source, string? teamId, long loMs, long hiMs);

    /// <summary>Reads the five anatomy columns starting at <paramref name="first"/> (all NULL: no anatomy).</summary>
    protected static TokenAnatomy? ReadAnatomy(DbDataReader reader, int first) =>
        reader.IsDBNull(first)
            ? null
            : new TokenAnatomy(
                Convert.ToInt32(reader.GetValue(first), CultureInfo.InvariantCulture),
                Convert.ToInt32(reader.GetValue(first + 1), CultureInfo.InvariantCulture),
                Convert.ToInt32(reader.GetValue(first + 2), CultureInfo.InvariantCulture),
                Convert.ToInt32(reader.GetValue(first + 3), CultureInfo.InvariantCulture),
                Convert.ToInt32(reader.GetValue(first + 4), CultureInfo.InvariantCulture));

    /// <summary>
    /// Splits [lo, hi) into whole days (daily rollup), whole hours (hourly rollup) and the partial hours at the edges
    /// (raw events); long.MinValue/MaxValue stand for an open bound. <paramref name="hoursOnly"/> reads whole days from
    /// the hourly rollup too (grouping by hour).
    /// </summary>
    private static List<(UsageSource Source, long Lo, long Hi)> Segments(long lo, long hi, bool hoursOnly)
    {
        var segments = new List<(UsageSource, long, long)>(5);
        var hourLo = lo == long.MinValue ? lo : Ceil(lo, MsPerHour);
        var hourHi = hi == long.MaxValue ? hi : Floor(hi, MsPerHour);
        if (hourLo >= hourHi)
        {
            segments.Add((UsageSource.Events, lo, hi));
            return segments;
        }

        if (lo < hourLo)
        {
            segments.Add((UsageSource.Events, lo, hourLo));
        }

        if (hourHi < hi)
        {
            segments.Add((UsageSource.Events, hourHi, hi));
        }

        var dayLo = hourLo == long.MinValue ? hourLo : Ceil(hourLo, MsPerDay);
        var dayHi = hourHi == long.MaxValue ? hourHi : Floor(hourHi, MsPerDay);
        if (hoursOnly || dayLo >= dayHi)
        {
            segments.Add((UsageSource.Hourly, hourLo, hourHi));
            return segments;
        }

        segments.Add((UsageSource.Daily, dayLo, dayHi));
        if (hourLo < dayLo)
        {
            segments.Add((UsageSource.Hourly, hourLo, dayLo));
        }

        if (dayHi < hourHi)
        {
            segments.Add((UsageSource.Hourly, dayHi, hourHi));
        }

        return segments;
    }

    private async Task AggregateAsync(
        DbConnection connection, UsageSource source, UsageQuery query, string? groupBy, long loMs, long hiMs,
        SortedDictionary<string, Accumulator> groups, CancellationToken cancellationToken)
    {
        await using var command = CreateAggregateCommand(connection, source, query, groupBy, loMs, hiMs);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var key = groupBy switch
            {
                "day" => DateTimeOffset.FromUnixTimeSeconds(reader.GetInt64(0)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                "hour" => DateTimeOffset.FromUnixTimeSeconds(reader.GetInt64(0)).ToString("yyyy-MM-dd'T'HH':00:00Z'", CultureInfo.InvariantCulture),
                null => string.Empty,
                _ => reader.GetString(0),
            };
            if (!groups.TryGetValue(key, out var accumulator))
            {
                accumulator = new Accumulator();
                groups[key] = accumulator;
            }

            // An empty range yields no row (GROUP BY), so the sums are never NULL here.
            accumulator.Requests += reader.GetInt64(1);
            accumulator.InputTokensReceived += reader.GetInt64(2);
            accumulator.InputTokensSent += reader.GetInt64(3);
            accumulator.InputTokens += reader.GetInt64(4);
            accumulator.OutputTokens += reader.GetInt64(5);
            accumulator.CachedInputTokens += reader.GetInt64(6);
            accumulator.ReasoningTokens += reader.GetInt64(7);
            accumulator.CostNanos += reader.GetInt64(8);
            accumulator.TokensSaved += reader.GetInt64(9);
        }
    }

    private static string? NormalizeGroupBy(string? groupBy)
    {
        if (string.IsNullOrWhiteSpace(groupBy))
        {
            return null;
        }

        foreach (var value in GroupByValues)
        {
            if (string.Equals(value, groupBy.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }

        throw new ArgumentException($"groupBy must be one of {string.Join(", ", GroupByValues)}.", nameof(groupBy));
    }

    private static long Floor(long ms, long unit)
    {
        var (quotient, remainder) = Math.DivRem(ms, unit);
        return (remainder < 0 ? quotient - 1 : quotient) * unit;
    }

    private static long Ceil(long ms, long unit)
    {
        var floor = Floor(ms, unit);
        return floor == ms ? ms : floor + unit;
    }

    /// <summary>Orders anatomy rows by team, then model (ordinal).</summary>
    private sealed class TeamModelComparer : IComparer<(string Team, string Model)>
    {
        public static readonly TeamModelComparer Instance = new();

        public int Compare((string Team, string Model) x, (string Team, string Model) y)
        {
            var team = string.CompareOrdinal(x.Team, y.Team);
            return team != 0 ? team : string.CompareOrdinal(x.Model, y.Model);
        }
    }

    private sealed class Accumulator
    {
        public long Requests;
        public long InputTokensReceived;
        public long InputTokensSent;
        public long InputTokens;
        public long OutputTokens;
        public long CachedInputTokens;
        public long ReasoningTokens;
        public long CostNanos;
        public long TokensSaved;

        public void Add(Accumulator other)
        {
            Requests += other.Requests;
            InputTokensReceived += other.InputTokensReceived;
            InputTokensSent += other.InputTokensSent;
            InputTokens += other.InputTokens;
            OutputTokens += other.OutputTokens;
            CachedInputTokens += other.CachedInputTokens;
            ReasoningTokens += other.ReasoningTokens;
            CostNanos += other.CostNanos;
            TokensSaved += other.TokensSaved;
        }

        public UsageTotals ToTotals() => new()
        {
            Requests = Requests,
            InputTokensReceived = InputTokensReceived,
            InputTokensSent = InputTokensSent,
            InputTokens = InputTokens,
            OutputTokens = OutputTokens,
            CachedInputTokens = CachedInputTokens,
            ReasoningTokens = ReasoningTokens,
            CostUsd = LedgerSchema.FromNanos(CostNanos),
            TokensSaved = TokensSaved,
        };
    }
}
