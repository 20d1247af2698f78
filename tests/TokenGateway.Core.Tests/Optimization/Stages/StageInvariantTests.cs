using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Optimization.Stages;
using TokenGateway.Core.Tests.Optimization.Corpus;
using static TokenGateway.Core.Tests.Optimization.OptimizationTestKit;

namespace TokenGateway.Core.Tests.Optimization.Stages;

/// <summary>Idempotence (f(f(x)) == f(x)) and never-grows for every stage over the whole benchmark corpus.</summary>
public sealed class StageInvariantTests
{
    private static readonly OptimizationPolicy _all = OptimizationPolicy.Default with
    {
        Curate = new CurateOptions { Enabled = true, MaxTokens = 2000 },
        CacheHints = new CacheHintOptions { Conversation = true },
        Trim = new TrimOptions { MaxInputTokens = 5000 },
        Tools = new ToolsOptions { Enabled = true, MaxTools = 6 },
    };

    public static TheoryData<string> StageNames() => new(["tools", "trim", "trim_stale", "compact", "dedupe", "curate", "cache_hints", "output_cap"]);

    [Theory]
    [MemberData(nameof(StageNames))]
    public void Apply_EveryCorpusRequest_IsIdempotentAndNeverGrows(string name)
    {
        var stage = Stage(name);
        var policy = name == "trim_stale"
            ? _all with { Trim = _all.Trim with { StaleToolResults = new StaleToolResultsOptions { KeepRecent = 2, MinTokens = 100 } } }
            : _all;
        var limits = new OutputLimits(512, 2048, 0);
        foreach (var item in BenchmarkCorpus.All(CorpusPaths.Corpus()))
        {
            var dialect = item.Endpoint == "/v1/messages" ? LlmDialect.AnthropicMessages : LlmDialect.OpenAIChat;
            var json = item.Body.ToJsonString(LlmRequestParser.WriteOptions);
            var before = Count(Parse(dialect, json));

            var (once, saved, first) = RunStage(stage, dialect, json, policy, limits);
            var (twice, savedAgain, _) = RunStage(stage, dialect, once, policy, limits);

            var after = Count(first);
            Assert.True(after <= before, $"{name} grew {item.Id}: {before} → {after}");
            Assert.True(saved >= 0);
            Assert.Equal(once, twice);
            Assert.Equal(0, savedAgain);
        }
    }

    internal static IOptimizationStage Stage(string name) => name switch
    {
        "tools" => new ToolSelectionStage(),
        "trim" or "trim_stale" => new TrimStage(),
        "compact" => new CompactStage(),
        "dedupe" => new DedupeStage(),
        "curate" => new CurateStage(),
        "cache_hints" => new CacheHintStage(),
        _ => new OutputCapStage(),
    };
}
