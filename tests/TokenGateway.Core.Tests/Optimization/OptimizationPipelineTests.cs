using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tests.Optimization.Corpus;
using static TokenGateway.Core.Tests.Optimization.OptimizationTestKit;

namespace TokenGateway.Core.Tests.Optimization;

public sealed class OptimizationPipelineTests
{
    private static readonly OutputLimits _noLimits = new(null, null, 0);

    /// <summary>The policy used for the tool-conversation workload: an input cap that forces trimming.</summary>
    internal static OptimizationPolicy ToolPolicy { get; } = OptimizationPolicy.Default with
    {
        Trim = new TrimOptions { MaxInputTokens = 6000 },
    };

    [Fact]
    public void Run_PlainChat_ForwardsByteIdentical()
    {
        var json = """{"model":"gpt-4o","messages":[{"role":"user","content":"Write a haiku about autumn."}],"temperature":0.2}""";
        var request = Parse(LlmDialect.OpenAIChat, json);

        var result = Pipeline.Run(request, Gpt4o, OptimizationPolicy.Default, _noLimits);

        Assert.False(request.IsModified);
        Assert.Equal(json, Serialize(request));
        Assert.Equal(result.TokensReceived, result.TokensSent);
        Assert.All(result.Stages, s => Assert.Equal(0, s.TokensSaved));
    }

    [Fact]
    public void Run_PrettyJsonRecords_SendsFewerTokensAndReportsStages()
    {
        var records = new JsonArray(Enumerable.Range(1, 30).Select(i => (JsonNode)new JsonObject
        {
            ["id"] = i, ["name"] = $"item-{i}", ["price"] = i * 1.5, ["inStock"] = i % 2 == 0,
        }).ToArray());
        var pretty = records.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        var request = Parse("/v1/chat/completions", new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = $"Inventory:\n{pretty}\n\nWhich items cost more than 20?" }),
        });

        var result = Pipeline.Run(request, Gpt4o, OptimizationPolicy.Default, _noLimits);

        Assert.True(request.IsModified);
        Assert.True(result.TokensSent < result.TokensReceived * 0.6, $"{result.TokensReceived} → {result.TokensSent}");
        Assert.Equal(["trim", "compact", "dedupe", "cache_hints", "output_cap"], result.Stages.Select(s => s.Name));
        Assert.Contains("```toon", Serialize(request), StringComparison.Ordinal);
        Assert.Equal(result.TokensSent, Count(request));
    }

    [Fact]
    public void Run_RewrittenToolResult_AnatomyIsOfTheBodySentAndSumsToTokensSent()
    {
        var records = new JsonArray(Enumerable.Range(1, 30).Select(i => (JsonNode)new JsonObject
        {
            ["id"] = i, ["name"] = $"item-{i}", ["price"] = i * 1.5, ["inStock"] = i % 2 == 0,
        }).ToArray());
        var pretty = records.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        var json = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "system", ["content"] = "You answer inventory questions." },
                new JsonObject { ["role"] = "user", ["content"] = "Which items cost more than 20?" },
                new JsonObject
                {
                    ["role"] = "assistant",
                    ["tool_calls"] = new JsonArray(new JsonObject
                    {
                        ["id"] = "call_1", ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = "inventory", ["arguments"] = "{}" },
                    }),
                },
                new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call_1", ["content"] = pretty }),
        };
        var original = Parse("/v1/chat/completions", (JsonObject)json.DeepClone());
        var request = Parse("/v1/chat/completions", json);
        var before = Counter.CountInputTokens(original, Gpt4o, out var receivedAnatomy);

        var result = Pipeline.Run(request, Gpt4o, OptimizationPolicy.Default, _noLimits, before);

        Assert.True(request.IsModified);
        var sent = Assert.NotNull(result.AnatomySent);
        Assert.Equal(result.TokensSent, sent.Total);
        Assert.Equal(Counter.CountInputTokens(request, Gpt4o, out var recounted), result.TokensSent);
        Assert.Equal(recounted, sent);
        Assert.True(sent.ToolResults < receivedAnatomy.ToolResults, $"{receivedAnatomy.ToolResults} → {sent.ToolResults}");
        Assert.Equal(receivedAnatomy.System, sent.System); // only the tool result was rewritten
    }

    [Fact]
    public void Run_NothingRewrittenWithAReceivedCount_LeavesTheAnatomyToTheCaller()
    {
        var request = Parse(LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[{"role":"user","content":"Write a haiku about autumn."}]}""");

        var result = Pipeline.Run(request, Gpt4o, OptimizationPolicy.Default, _noLimits, tokensReceived: 17);

        Assert.False(request.IsModified);
        Assert.Null(result.AnatomySent);
        Assert.NotNull(Pipeline.Run(request, Gpt4o, OptimizationPolicy.Default, _noLimits).AnatomySent); // counted itself: it knows
    }

    [Fact]
    public void Run_OptimizationDisabled_StillAppliesOutputCap()
    {
        var request = Parse(LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[{"role":"user","content":"hi   \n\n\n\nthere"}],"max_tokens":9000}""");

        var result = Pipeline.Run(request, Gpt4o, OptimizationPolicy.Default with { Enabled = false }, new OutputLimits(512, 2048, 0));

        Assert.Equal(2048, request.MaxTokens);
        Assert.Contains("hi   \\n\\n\\n\\nthere", Serialize(request), StringComparison.Ordinal);
        Assert.Equal(["output_cap"], result.Stages.Select(s => s.Name));
    }

    [Fact]
    public void Run_EmbeddingsRequest_CountsWithoutRewriting()
    {
        var request = Parse(LlmDialect.OpenAIEmbeddings, """{"model":"text-embedding-3-small","input":"hello   \n\n\n world"}""");

        var result = Pipeline.Run(request, Gpt4o, OptimizationPolicy.Default, new OutputLimits(100, null, 0));

        Assert.False(request.IsModified);
        Assert.Empty(result.Stages);
    }

    [Fact]
    public void Run_BenchmarkCorpus_MeetsDoneWhenTargets()
    {
        var report = new StringBuilder();
        foreach (var group in BenchmarkCorpus.All(CorpusPaths.Corpus()).GroupBy(r => r.Workload))
        {
            long received = 0, sent = 0;
            foreach (var item in group)
            {
                var request = Parse(item.Endpoint, item.Body);
                var card = CardFor(request.Dialect);
                var policy = item.Workload == BenchmarkCorpus.ToolWorkload ? ToolPolicy : OptimizationPolicy.Default;
                var result = Pipeline.Run(request, card, policy, _noLimits);

                Assert.True(result.TokensSent <= result.TokensReceived, $"{item.Id} grew: {result.TokensReceived} → {result.TokensSent}");
                Assert.Equal(result.TokensSent, Counter.CountInputTokens(request, card));
                switch (item.Workload)
                {
                    case BenchmarkCorpus.DataWorkload:
                        Assert.True(result.TokensSent <= result.TokensReceived * 0.85, $"{item.Id}: {result.TokensReceived} → {result.TokensSent}");
                        break;
                    case BenchmarkCorpus.ChatWorkload:
                        Assert.False(request.IsModified, item.Id);
                        break;
                    case BenchmarkCorpus.ToolWorkload:
                        Assert.True(result.TokensSent <= 6000, $"{item.Id}: {result.TokensSent} over budget");
                        ConversationInvariants.AssertValid(request);
                        break;
                }

                received += result.TokensReceived;
                sent += result.TokensSent;
            }

            if (group.Key == BenchmarkCorpus.DataWorkload)
            {
                Assert.True(sent <= received * 0.6, $"JSON-heavy data saved only {100.0 * (received - sent) / received:F1}%");
            }

            report.AppendLine($"{group.Key}: {group.Count()} requests, {received} → {sent} ({100.0 * (received - sent) / received:F1}% saved)");
        }

        File.WriteAllText(Path.Combine(Path.GetTempPath(), "tokengateway-corpus-savings.txt"), report.ToString());
    }
}
