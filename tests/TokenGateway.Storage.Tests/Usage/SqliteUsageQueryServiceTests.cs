using System.Globalization;
using CsCheck;
using TokenGateway.Core.Metering;
using TokenGateway.Storage.Tests.TestSupport;
using TokenGateway.Storage.Usage;

namespace TokenGateway.Storage.Tests.Usage;

public sealed class SqliteUsageQueryServiceTests : IDisposable
{
    private static readonly DateTimeOffset Day1 = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly StorageTestHost _host = new();

    public void Dispose() => _host.Dispose();

    private static UsageEvent Event(
        string id, DateTimeOffset at, string? team, string? key, string? model, string status,
        int received, int sent, int input, int output, int cached, int reasoning, decimal cost, int saved) => new()
        {
            RequestId = id,
            Timestamp = at,
            TeamId = team,
            KeyId = key,
            Route = "/v1/chat/completions",
            Provider = model is null ? null : "openai",
            Model = model,
            Status = status,
            HttpStatus = status == UsageStatus.Ok ? 200 : 502,
            InputTokensReceived = received,
            InputTokensSent = sent,
            Usage = new TokenUsage(input, output, CachedInputTokens: cached, ReasoningTokens: reasoning),
            CostUsd = cost,
            TokensSaved = saved,
        };

    /// <summary>Six events whose totals below were worked out by hand.</summary>
    private static readonly UsageEvent[] HandSet =
    [
        Event("e1", Day1.AddHours(10).AddMinutes(15), "team_a", "key_a1", "gpt-4o", "ok", 100, 80, 80, 20, 10, 0, 0.0004m, 20),
        Event("e2", Day1.AddHours(10).AddMinutes(45), "team_a", "key_a2", "gpt-4o", "ok", 200, 150, 150, 50, 0, 5, 0.00085m, 50),
        Event("e3", Day1.AddHours(11).AddMinutes(5), "team_b", "key_b1", "claude-sonnet-4-5", "ok", 300, 300, 300, 100, 100, 0, 0.0024m, 0),
        Event("e4", Day1.AddDays(1).AddMilliseconds(-1), "team_a", "key_a1", "claude-sonnet-4-5", "upstream_error", 50, 50, 0, 0, 0, 0, 0m, 0),
        Event("e5", Day1.AddDays(1), "team_b", "key_b1", "gpt-4o", "ok", 10, 10, 10, 1000, 0, 800, 0.010025m, 0),
        Event("e6", Day1.AddDays(1).AddMinutes(90), null, null, null, "rejected", 5, 0, 0, 0, 0, 0, 0m, 0),
    ];

    private async Task<SqliteUsageQueryService> CreateSutAsync(IReadOnlyList<UsageEvent> events)
    {
        for (var i = 0; i < events.Count; i += 500)
        {
            await _host.Store.WriteBatchAsync(events.Skip(i).Take(500).ToList(), CancellationToken.None);
        }

        return _host.CreateQueryService();
    }

    [Fact]
    public async Task QueryAsync_NoFilter_ReturnsHandComputedTotals()
    {
        var sut = await CreateSutAsync(HandSet);

        var report = await sut.QueryAsync(new UsageQuery(), CancellationToken.None);

        Assert.Equal(new UsageTotals
        {
            Requests = 6,
            InputTokensReceived = 665,
            InputTokensSent = 590,
            InputTokens = 540,
            OutputTokens = 1170,
            CachedInputTokens = 110,
            ReasoningTokens = 805,
            CostUsd = 0.013675m,
            TokensSaved = 70,
        }, report.Totals);
        Assert.Empty(report.Groups);
    }

    [Fact]
    public async Task QueryAsync_GroupByTeam_ReturnsHandComputedGroups()
    {
        var sut = await CreateSutAsync(HandSet);

        var report = await sut.QueryAsync(new UsageQuery { GroupBy = "team" }, CancellationToken.None);

        Assert.Equal(["", "team_a", "team_b"], report.Groups.Select(g => g.Key));
        Assert.Equal([1L, 3L, 2L], report.Groups.Select(g => g.Totals.Requests));
        Assert.Equal([0m, 0.00125m, 0.012425m], report.Groups.Select(g => g.Totals.CostUsd));
        Assert.Equal([5L, 350L, 310L], report.Groups.Select(g => g.Totals.InputTokensReceived));
        Assert.Equal(6, report.Totals.Requests);
    }

    [Fact]
    public async Task QueryAsync_GroupByModel_ReturnsHandComputedGroups()
    {
        var sut = await CreateSutAsync(HandSet);

        var report = await sut.QueryAsync(new UsageQuery { GroupBy = "model" }, CancellationToken.None);

        Assert.Equal(["", "claude-sonnet-4-5", "gpt-4o"], report.Groups.Select(g => g.Key));
        Assert.Equal([1L, 2L, 3L], report.Groups.Select(g => g.Totals.Requests));
        Assert.Equal([0L, 100L, 1070L], report.Groups.Select(g => g.Totals.OutputTokens));
        Assert.Equal([0L, 0L, 805L], report.Groups.Select(g => g.Totals.ReasoningTokens));
    }

    [Fact]
    public async Task QueryAsync_GroupByDayAndHour_BucketsInUtc()
    {
        var sut = await CreateSutAsync(HandSet);

        var days = await sut.QueryAsync(new UsageQuery { GroupBy = "day" }, CancellationToken.None);
        var hours = await sut.QueryAsync(new UsageQuery { GroupBy = "Hour" }, CancellationToken.None);

        Assert.Equal(["2026-03-01", "2026-03-02"], days.Groups.Select(g => g.Key));
        Assert.Equal([4L, 2L], days.Groups.Select(g => g.Totals.Requests));
        Assert.Equal([0.00365m, 0.010025m], days.Groups.Select(g => g.Totals.CostUsd));
        Assert.Equal(
            ["2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z", "2026-03-01T23:00:00Z", "2026-03-02T00:00:00Z", "2026-03-02T01:00:00Z"],
            hours.Groups.Select(g => g.Key));
        Assert.Equal([2L, 1L, 1L, 1L, 1L], hours.Groups.Select(g => g.Totals.Requests));
    }

    [Fact]
    public async Task QueryAsync_GroupByKey_SeparatesKeys()
    {
        var sut = await CreateSutAsync(HandSet);

        var report = await sut.QueryAsync(new UsageQuery { GroupBy = "key", TeamId = "team_a" }, CancellationToken.None);

        Assert.Equal(["key_a1", "key_a2"], report.Groups.Select(g => g.Key));
        Assert.Equal([2L, 1L], report.Groups.Select(g => g.Totals.Requests));
    }

    [Fact]
    public async Task QueryAsync_TeamAndStatusFilter_ReturnsMatchingOnly()
    {
        var sut = await CreateSutAsync(HandSet);

        var report = await sut.QueryAsync(new UsageQuery { TeamId = "team_a", Status = "ok" }, CancellationToken.None);

        Assert.Equal(2, report.Totals.Requests);
        Assert.Equal(0.00125m, report.Totals.CostUsd);
        Assert.Equal(70, report.Totals.TokensSaved);
    }

    [Theory]
    [InlineData("2026-03-01T10:30:00Z", "2026-03-01T11:10:00Z", 2, 500)] // partial hours at both edges: e2, e3
    [InlineData("2026-03-01T10:00:00Z", "2026-03-02T00:00:00Z", 4, 650)] // whole hours only: e1..e4
    [InlineData("2026-03-01T10:30:00Z", "2026-03-01T10:50:00Z", 1, 200)] // inside one hour: e2
    [InlineData("2026-03-01T23:59:59.999Z", "2026-03-02T00:00:00.001Z", 2, 60)] // 1 ms either side of midnight: e4, e5
    [InlineData("2026-03-02T00:00:00Z", null, 2, 15)] // open end: e5, e6
    [InlineData(null, "2026-03-01T10:15:00Z", 0, 0)] // To is exclusive
    public async Task QueryAsync_TimeRange_CombinesRollupAndEdgesExactly(string? from, string? to, long requests, long received)
    {
        var sut = await CreateSutAsync(HandSet);

        var report = await sut.QueryAsync(new UsageQuery { From = Parse(from), To = Parse(to) }, CancellationToken.None);

        Assert.Equal(requests, report.Totals.Requests);
        Assert.Equal(received, report.Totals.InputTokensReceived);
    }

    [Fact]
    public async Task QueryAsync_FromAfterTo_ReturnsEmpty()
    {
        var sut = await CreateSutAsync(HandSet);

        var report = await sut.QueryAsync(new UsageQuery { From = Day1.AddDays(2), To = Day1 }, CancellationToken.None);

        Assert.Equal(0, report.Totals.Requests);
        Assert.Empty(report.Groups);
    }

    [Fact]
    public async Task QueryAsync_UnknownGroupBy_ThrowsArgumentException()
    {
        var sut = await CreateSutAsync(HandSet);

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => sut.QueryAsync(new UsageQuery { GroupBy = "week" }, CancellationToken.None));

        Assert.Contains("team, key, model, day, hour", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QueryAsync_ManySmallCosts_SumIsExactDecimal()
    {
        var events = Enumerable.Range(0, 10_000)
            .Select(i => UsageEvents.Create(i, cost: 0.000123457m))
            .Append(UsageEvents.Create(10_000, cost: 0.1m))
            .Append(UsageEvents.Create(10_001, cost: 0.2m))
            .ToList();
        var sut = await CreateSutAsync(events);

        var report = await sut.QueryAsync(new UsageQuery(), CancellationToken.None);

        Assert.Equal(1.53457m, report.Totals.CostUsd);
    }

    [Fact]
    public async Task GetAsync_StoredEvent_RoundTripsEveryField()
    {
        var original = UsageEvents.Create(7, cost: 0.0000000375m) with
        {
            ErrorCode = "upstream_timeout",
            Usage = new TokenUsage(1000, 200, CachedInputTokens: 300, CacheWriteTokens: 40, CacheWrite1hTokens: 50, ReasoningTokens: 60),
            Estimated = true,
            TtftMs = null,
            ParentRequestId = "req_parent",
            Attempt = "repair",
            Timestamp = new DateTimeOffset(2026, 3, 1, 12, 0, 0, 123, TimeSpan.Zero),
        };
        var sut = await CreateSutAsync([original]);

        var read = await sut.GetAsync(original.RequestId, CancellationToken.None);

        Assert.NotNull(read);
        Assert.Equal(original.Stages, read.Stages);
        Assert.Equal(original with { Stages = read.Stages }, read);
        Assert.Equal("0.0000000375", read.CostUsd.ToString(CultureInfo.InvariantCulture));
        Assert.Null(await sut.GetAsync("req_missing", CancellationToken.None));
    }

    [Fact]
    public async Task ListAsync_FiltersAndLimit_ReturnsNewestFirst()
    {
        var sut = await CreateSutAsync(HandSet);
        var list = new List<UsageEvent>();

        await foreach (var e in sut.ListAsync(new UsageQuery { TeamId = "team_a" }, 2, CancellationToken.None))
        {
            list.Add(e);
        }

        Assert.Equal(["e4", "e2"], list.Select(e => e.RequestId));
    }

    [Fact]
    public async Task QueryAsync_RandomFiltersAndRanges_MatchesLinqOracle()
    {
        var random = new Random(20260301);
        string?[] teams = ["team_a", "team_b", "team_c", null];
        string?[] models = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", null];
        string[] statuses = [UsageStatus.Ok, UsageStatus.UpstreamError, UsageStatus.ClientAborted];
        const long windowMs = 3L * 24 * 3_600_000;
        var events = Enumerable.Range(0, 3000).Select(i =>
        {
            var team = teams[random.Next(teams.Length)];
            return Event(
                $"r{i}", Day1.AddMilliseconds(random.NextInt64(windowMs)), team, team is null ? null : $"{team}_k{random.Next(3)}",
                models[random.Next(models.Length)], statuses[random.Next(statuses.Length)], random.Next(5000), random.Next(5000),
                random.Next(5000), random.Next(2000), random.Next(1000), random.Next(500), random.Next(1_000_000) / 1_000_000_000m, random.Next(300));
        }).ToList();
        var sut = await CreateSutAsync(events);

        var bound = Gen.Long[-3_600_000, windowMs + 3_600_000].Nullable(0.2);
        var queries = Gen.Select(
            Gen.OneOf(teams), Gen.OneOf(models), Gen.OneOf<string?>(null, "ok", "upstream_error"),
            bound, bound, Gen.OneOf<string?>(null, "team", "key", "model", "day", "hour"),
            (team, model, status, from, to, groupBy) => new UsageQuery
            {
                TeamId = team,
                Model = model,
                Status = status,
                From = from is { } f ? Day1.AddMilliseconds(f) : null,
                To = to is { } t ? Day1.AddMilliseconds(t) : null,
                GroupBy = groupBy,
            });

        await queries.SampleAsync(
            async query =>
            {
                var report = await sut.QueryAsync(query, CancellationToken.None);
                var expected = Oracle(events, query);
                Assert.Equal(expected.Totals, report.Totals);
                Assert.Equal(expected.Groups, report.Groups);
            },
            iter: 150,
            threads: 1);
    }

    private static UsageReport Oracle(IEnumerable<UsageEvent> events, UsageQuery q)
    {
        var matching = events.Where(e =>
            (string.IsNullOrEmpty(q.TeamId) || e.TeamId == q.TeamId)
            && (string.IsNullOrEmpty(q.Model) || e.Model == q.Model)
            && (string.IsNullOrEmpty(q.Status) || e.Status == q.Status)
            && (q.From is null || e.Timestamp >= q.From)
            && (q.To is null || e.Timestamp < q.To)).ToList();
        var groups = q.GroupBy is null
            ? []
            : matching
                .GroupBy(e => q.GroupBy switch
                {
                    "team" => e.TeamId ?? "",
                    "key" => e.KeyId ?? "",
                    "model" => e.Model ?? "",
                    "day" => e.Timestamp.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                    _ => e.Timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH':00:00Z'", CultureInfo.InvariantCulture),
                })
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new UsageGroup(g.Key, Sum(g)))
                .ToList();
        return new UsageReport(Sum(matching), groups);
    }

    private static UsageTotals Sum(IEnumerable<UsageEvent> events)
    {
        var list = events.ToList();
        return new UsageTotals
        {
            Requests = list.Count,
            InputTokensReceived = list.Sum(e => (long)e.InputTokensReceived),
            InputTokensSent = list.Sum(e => (long)e.InputTokensSent),
            InputTokens = list.Sum(e => (long)e.Usage.InputTokens),
            OutputTokens = list.Sum(e => (long)e.Usage.OutputTokens),
            CachedInputTokens = list.Sum(e => (long)e.Usage.CachedInputTokens),
            ReasoningTokens = list.Sum(e => (long)e.Usage.ReasoningTokens),
            CostUsd = list.Sum(e => e.CostUsd),
            TokensSaved = list.Sum(e => (long)e.TokensSaved),
        };
    }

    private static DateTimeOffset? Parse(string? value) =>
        value is null ? null : DateTimeOffset.Parse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
