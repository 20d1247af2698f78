using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using TokenGateway.Core.Metering;
using TokenGateway.Providers;

namespace TokenGateway.Telemetry;

/// <summary>
/// The gateway's instruments (meter <c>TokenGateway</c>), created once from <see cref="IMeterFactory"/>. Follows the
/// OpenTelemetry GenAI conventions where they exist. Every label has a bounded value set: catalogue model names,
/// configured providers, team ids, stage names and error codes — never request ids, keys or client-supplied strings.
/// </summary>
internal sealed class GatewayMetrics
{
    public const string MeterName = "TokenGateway";

    private const string None = "none";

    // Seconds buckets suited to LLM calls (sub-second cache hits to multi-minute reasoning streams).
    private static readonly double[] _durationBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84];

    // Token-count buckets from the GenAI semantic conventions.
    private static readonly long[] _tokenBuckets = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

    private readonly Histogram<long> _tokenUsage;
    private readonly Histogram<double> _operationDuration;
    private readonly Histogram<double> _timeToFirstChunk;
    private readonly Counter<long> _requests;
    private readonly Counter<double> _cost;
    private readonly Counter<long> _tokensSaved;
    private readonly Counter<long> _cacheReadTokens;
    private readonly Counter<long> _rejections;
    private readonly UpDownCounter<long> _activeRequests;
    private readonly Counter<long> _cacheRequests;
    private readonly Counter<double> _cacheSaved;
    private readonly ConcurrentDictionary<string, double> _budgetUtilization = new(StringComparer.Ordinal);

    public GatewayMetrics(IMeterFactory meterFactory, IUsageLedger ledger)
    {
        var meter = meterFactory.Create(MeterName);
        _tokenUsage = meter.CreateHistogram("gen_ai.client.token.usage", "{token}",
            "Tokens billed per request, by token type (input = prompt tokens billed by the provider, output = generated).",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = _tokenBuckets });
        _operationDuration = meter.CreateHistogram("gen_ai.client.operation.duration", "s",
            "Duration of a proxied LLM request, from arrival at the gateway to the end of the response body.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = _durationBuckets });
        _timeToFirstChunk = meter.CreateHistogram("gen_ai.client.operation.time_to_first_chunk", "s",
            "Time from arrival at the gateway to the first response chunk sent to the client (streamed requests).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = _durationBuckets });
        _requests = meter.CreateCounter<long>("tokengateway.requests", "{request}", "Proxied LLM requests by outcome.");
        _cost = meter.CreateCounter<double>("tokengateway.cost.usd", "{USD}", "Cost of proxied requests in US dollars (catalogue prices).");
        _tokensSaved = meter.CreateCounter<long>("tokengateway.tokens.saved", "{token}", "Prompt tokens removed by optimization, by stage.");
        _cacheReadTokens = meter.CreateCounter<long>("tokengateway.tokens.cache_read", "{token}", "Input tokens served from the provider's prompt cache.");
        _rejections = meter.CreateCounter<long>("tokengateway.rejections", "{request}", "Requests the gateway refused, by error code.");
        _activeRequests = meter.CreateUpDownCounter<long>("tokengateway.requests.active", "{request}", "LLM requests in flight.");
        _cacheRequests = meter.CreateCounter<long>("tokengateway.cache.requests", "{request}",
            "Requests of teams with the response cache on, by result (hit, miss, bypass); hit rate = hit / (hit + miss).");
        _cacheSaved = meter.CreateCounter<double>("tokengateway.cache.saved.usd", "{USD}",
            "Dollars response-cache hits saved: the prompt as it would have been sent plus the stored answer's output tokens, at catalogue prices.");
        meter.CreateObservableGauge("tokengateway.budget.utilization", ObserveBudgets, "1",
            "Share of the team's current budget window spent (0-1, the larger of the USD and token ratios), updated when a request settles.");
        meter.CreateObservableGauge("tokengateway.ledger.queue.depth", () => (long)ledger.QueueDepth, "{event}",
            "Usage events waiting in memory for the ledger writer.");
        meter.CreateObservableGauge("tokengateway.ledger.spool.depth", () => ledger.SpoolDepth, "{event}",
            "Usage events waiting in the on-disk spool.");
    }

    public void RequestStarted()
    {
        if (_activeRequests.Enabled)
        {
            _activeRequests.Add(1);
        }
    }

    public void RequestEnded()
    {
        if (_activeRequests.Enabled)
        {
            _activeRequests.Add(-1);
        }
    }

    /// <summary>Records one finished request; called once by <c>ExchangeCompletion</c>.</summary>
    public void RecordCompletion(in CompletedRequest request)
    {
        var team = request.TeamId ?? None;
        var model = request.Model ?? None;
        var provider = request.Provider ?? None;

        if (_tokenUsage.Enabled && request.Usage is { } usage)
        {
            _tokenUsage.Record(usage.InputTokens, new TagList
            {
                { "gen_ai.token.type", "input" }, { "gen_ai.request.model", model }, { "gen_ai.provider.name", provider }, { "tokengateway.team", team },
            });
            _tokenUsage.Record(usage.OutputTokens, new TagList
            {
                { "gen_ai.token.type", "output" }, { "gen_ai.request.model", model }, { "gen_ai.provider.name", provider }, { "tokengateway.team", team },
            });
        }

        if (_operationDuration.Enabled)
        {
            var tags = new TagList { { "gen_ai.request.model", model }, { "gen_ai.provider.name", provider }, { "tokengateway.team", team } };
            if (request.ErrorCode is { } error)
            {
                tags.Add("error.type", error);
            }

            _operationDuration.Record(request.DurationMs / 1000d, tags);
        }

        if (_timeToFirstChunk.Enabled && request.Stream && request.TtftMs is { } ttft)
        {
            _timeToFirstChunk.Record(ttft / 1000d, new TagList { { "gen_ai.request.model", model }, { "gen_ai.provider.name", provider }, { "tokengateway.team", team } });
        }

        if (_requests.Enabled)
        {
            _requests.Add(1, new TagList
            {
                { "tokengateway.status", request.Status }, { "gen_ai.request.model", model }, { "gen_ai.provider.name", provider }, { "tokengateway.team", team },
            });
        }

        if (_cost.Enabled && request.CostUsd > 0)
        {
            _cost.Add((double)request.CostUsd, new TagList { { "gen_ai.request.model", model }, { "gen_ai.provider.name", provider }, { "tokengateway.team", team } });
        }

        if (_tokensSaved.Enabled)
        {
            foreach (var stage in request.Stages)
            {
                if (stage.TokensSaved > 0)
                {
                    _tokensSaved.Add(stage.TokensSaved, new TagList { { "tokengateway.stage", stage.Name }, { "tokengateway.team", team } });
                }
            }
        }

        if (_cacheReadTokens.Enabled && request.Usage is { CachedInputTokens: > 0 } cached)
        {
            _cacheReadTokens.Add(cached.CachedInputTokens, new TagList { { "gen_ai.request.model", model }, { "gen_ai.provider.name", provider }, { "tokengateway.team", team } });
        }

        if (_rejections.Enabled && request.Status == UsageStatus.Rejected)
        {
            _rejections.Add(1, new TagList { { "tokengateway.error.code", request.ErrorCode ?? "unknown" }, { "tokengateway.team", team } });
        }
    }

    /// <summary>Counts one request of a cache-enabled team by its cache result (<c>hit</c>, <c>miss</c>, <c>bypass</c>).</summary>
    public void CacheResult(string? teamId, string result)
    {
        if (_cacheRequests.Enabled)
        {
            _cacheRequests.Add(1, new TagList { { "tokengateway.cache.result", result }, { "tokengateway.team", teamId ?? None } });
        }
    }

    /// <summary>Adds what one cache hit saved.</summary>
    public void CacheSaved(string? teamId, string? model, decimal usd)
    {
        if (_cacheSaved.Enabled && usd > 0)
        {
            _cacheSaved.Add((double)usd, new TagList { { "gen_ai.request.model", model ?? None }, { "tokengateway.team", teamId ?? None } });
        }
    }

    /// <summary>Updates a team's budget utilisation (spent ÷ budget of the current window).</summary>
    public void SetBudgetUtilization(string teamId, double ratio) => _budgetUtilization[teamId] = ratio;

    /// <summary>The OpenTelemetry <c>gen_ai.provider.name</c> value for a provider type.</summary>
    public static string ProviderName(ResolvedProvider? provider) => provider?.Type switch
    {
        null => None,
        ProviderType.OpenAI => "openai",
        ProviderType.Anthropic => "anthropic",
        ProviderType.AzureOpenAI => "azure.ai.openai",
        ProviderType.OpenAICompatible => "openai_compatible",
        ProviderType.Simulator => "simulator",
        _ => "other",
    };

    private IEnumerable<Measurement<double>> ObserveBudgets()
    {
        foreach (var (team, ratio) in _budgetUtilization)
        {
            yield return new Measurement<double>(ratio, new KeyValuePair<string, object?>("tokengateway.team", team));
        }
    }
}

/// <summary>What <see cref="GatewayMetrics.RecordCompletion"/> needs from a finished exchange.</summary>
internal readonly record struct CompletedRequest(
    string? TeamId, string? Model, string? Provider, string Status, string? ErrorCode, bool Stream, TokenUsage? Usage,
    decimal CostUsd, IReadOnlyList<StageSaving> Stages, double DurationMs, double? TtftMs);
