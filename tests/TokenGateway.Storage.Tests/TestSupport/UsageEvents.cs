using TokenGateway.Core.Metering;

namespace TokenGateway.Storage.Tests.TestSupport;

/// <summary>Builds usage events for tests.</summary>
internal static class UsageEvents
{
    public static readonly DateTimeOffset BaseTime = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);

    public static UsageEvent Create(
        int i,
        string? teamId = "team_a",
        string? keyId = "key_a1",
        string? model = "gpt-4o",
        string status = UsageStatus.Ok,
        DateTimeOffset? timestamp = null,
        decimal? cost = null,
        string? requestId = null) => new()
        {
            RequestId = requestId ?? $"req_{i:D8}",
            Timestamp = timestamp ?? BaseTime.AddSeconds(i),
            TeamId = teamId,
            KeyId = keyId,
            Route = "/v1/chat/completions",
            Provider = "openai",
            Model = model,
            Stream = i % 2 == 0,
            Status = status,
            HttpStatus = status == UsageStatus.Ok ? 200 : 502,
            InputTokensReceived = 100 + (i % 7),
            InputTokensSent = 90 + (i % 7),
            Usage = new TokenUsage(InputTokens: 90 + (i % 7), OutputTokens: 20 + (i % 5), CachedInputTokens: i % 3, ReasoningTokens: i % 4),
            CostUsd = cost ?? (0.000123456m + (i % 11) * 0.000000001m),
            TokensSaved = 10,
            Stages = [new StageSaving("compact", 6), new StageSaving("dedupe", 4)],
            LatencyMs = 12.5,
            TtftMs = 3.25,
        };
}
