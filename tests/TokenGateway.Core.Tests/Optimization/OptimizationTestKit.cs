using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Tests.Optimization;

/// <summary>Shared parsing, model cards and stage runners for the optimization tests.</summary>
internal static class OptimizationTestKit
{
    public static ITokenizerRegistry Tokenizers => TiktokenTokenizerRegistry.Shared;

    public static ChatRequestTokenCounter Counter { get; } = new(TiktokenTokenizerRegistry.Shared);

    public static OptimizationPipeline Pipeline { get; } = new(TiktokenTokenizerRegistry.Shared, Counter);

    public static ModelCard Gpt4o { get; } = new() { Name = "gpt-4o", Provider = "openai", ContextWindow = 128_000, CacheMinTokens = 1024 };

    public static ModelCard Claude { get; } = new()
    {
        Name = "claude-sonnet-4-5", Provider = "anthropic", Tokenizer = "claude", ContextWindow = 200_000, MaxOutputTokens = 64_000, CacheMinTokens = 1024,
    };

    public static ModelCard CardFor(LlmDialect dialect) => dialect.IsAnthropic() ? Claude : Gpt4o;

    public static LlmRequest Parse(string endpoint, JsonObject body)
    {
        Assert.True(LlmDialects.TryFromPath(endpoint, out var dialect));
        return Parse(dialect, body.ToJsonString(LlmRequestParser.WriteOptions));
    }

    public static LlmRequest Parse(LlmDialect dialect, string json)
    {
        Assert.True(LlmRequestParser.TryParse(dialect, Encoding.UTF8.GetBytes(json), out var request, out var error), error.Message);
        return request!;
    }

    public static string Serialize(LlmRequest request) => Encoding.UTF8.GetString(request.GetBytesToSend().Span);

    public static int Count(LlmRequest request) => Counter.CountInputTokens(request, CardFor(request.Dialect));

    /// <summary>Runs one stage alone on a fresh parse of <paramref name="json"/>; returns the rewritten JSON and the saving.</summary>
    public static (string Json, int Saved, LlmRequest Request) RunStage(
        IOptimizationStage stage, LlmDialect dialect, string json, OptimizationPolicy? policy = null, OutputLimits limits = default)
    {
        var request = Parse(dialect, json);
        var card = CardFor(dialect);
        var context = new StageContext(request, card, policy ?? OptimizationPolicy.Default, limits, Tokenizers, Counter, Counter.CountInputTokens(request, card));
        var saved = stage.Apply(context);
        return (Serialize(request), saved, request);
    }
}
