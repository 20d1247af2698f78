using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Insights;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Tests.Optimization;

namespace TokenGateway.Core.Tests.Insights;

/// <summary>The shadow run: what the stages that are off would save, the tool set, the answer and the cacheable prefix.</summary>
public sealed class ShadowEvaluatorTests
{
    private static readonly ModelCard Gpt = OptimizationTestKit.Gpt4o with { Prices = new ModelPrices { Input = 2.5m, Output = 10m } };

    private static readonly ModelCard Claude = OptimizationTestKit.Claude with
    {
        Prices = new ModelPrices { Input = 3m, Output = 15m, CachedInput = 0.3m, CacheWrite5m = 3.75m },
    };

    private static readonly ShadowEvaluator Evaluator = new(OptimizationTestKit.Pipeline, OptimizationTestKit.Counter, new CostCalculator(new PricingOptions()));

    private static string AgentBody()
    {
        var pretty = JsonSerializer.Serialize(
            new { rows = Enumerable.Range(0, 30).Select(i => new { id = i, name = $"item {i}", status = i % 2 == 0 ? "ok" : "late" }) },
            new JsonSerializerOptions { WriteIndented = true });
        var messages = new JsonArray { new JsonObject { ["role"] = "user", ["content"] = "Check the items." } };
        for (var t = 0; t < 6; t++)
        {
            messages.Add(new JsonObject
            {
                ["role"] = "assistant",
                ["content"] = null,
                ["tool_calls"] = new JsonArray { new JsonObject { ["id"] = $"c{t}", ["type"] = "function", ["function"] = new JsonObject { ["name"] = t % 2 == 0 ? "list_items" : "get_item", ["arguments"] = "{}" } } },
            });
            messages.Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = $"c{t}", ["content"] = pretty });
        }

        messages.Add(new JsonObject { ["role"] = "user", ["content"] = "Summarise." });
        var tools = new JsonArray();
        foreach (var name in new[] { "list_items", "get_item" }.Concat(Enumerable.Range(0, 10).Select(i => $"extra_{i}")))
        {
            tools.Add(new JsonObject
            {
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = name, ["description"] = $"Does {name}.", ["parameters"] = new JsonObject { ["type"] = "object" } },
            });
        }

        return new JsonObject { ["model"] = "gpt-4o", ["messages"] = messages, ["tools"] = tools, ["max_tokens"] = 4000 }.ToJsonString();
    }

    private static ShadowRequest Request(string body, OptimizationPolicy policy, ModelCard? model = null, LlmDialect dialect = LlmDialect.OpenAIChat) => new()
    {
        TeamId = "t",
        Dialect = dialect,
        Model = model ?? Gpt,
        Body = Encoding.UTF8.GetBytes(body),
        Policy = policy,
        Usage = new TokenUsage(5000, 40),
        CostUsd = 0.0129m,
        SentMaxTokens = 4000,
        ObserveOutput = true,
    };

    [Fact]
    public void ShadowPolicy_TurnsOnOnlyWhatIsOff()
    {
        Assert.Null(ShadowEvaluator.ShadowPolicy(OptimizationPolicy.Default with { Curate = new CurateOptions { Enabled = true } }));

        var (policy, stages) = ShadowEvaluator.ShadowPolicy(OptimizationPolicy.Default with { Compact = new CompactOptions { Enabled = false, Toon = false } })!.Value;
        Assert.Equal(["compact", "curate"], stages.Order(StringComparer.Ordinal));
        Assert.True(policy.Compact.Enabled);
        Assert.False(policy.Compact.Toon); // the team's own options for the stage
        Assert.False(policy.Tools.Enabled);
        Assert.False(policy.CacheHints.Enabled);

        var (all, off) = ShadowEvaluator.ShadowPolicy(OptimizationPolicy.Default with { Enabled = false })!.Value;
        Assert.True(all.Enabled);
        Assert.Equal(["compact", "curate", "dedupe", "trim"], off.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Evaluate_CompactOff_SavesWhatThePipelineWithCompactOnSaves()
    {
        var body = AgentBody();
        var policy = OptimizationPolicy.Default with { Compact = new CompactOptions { Enabled = false } };
        var sample = Evaluator.Evaluate(Request(body, policy))!;

        var reference = OptimizationTestKit.Parse(LlmDialect.OpenAIChat, body);
        var expected = OptimizationTestKit.Pipeline.Run(reference, Gpt, ShadowEvaluator.ShadowPolicy(policy)!.Value.Policy, default)
            .Stages.Single(s => s.Name == "compact").TokensSaved;
        var compact = sample.Savings.Single(s => s.Stage == "compact");
        Assert.True(expected > 0);
        Assert.Equal(expected, compact.Tokens);
        Assert.Equal(expected * 2.5m / 1_000_000m, compact.Usd);
        Assert.DoesNotContain(sample.Savings, s => s.Stage is "trim" or "dedupe"); // on for the team: not shadowed
    }

    [Fact]
    public void Evaluate_StaleToolResultsOff_MeasuredAlone()
    {
        var sample = Evaluator.Evaluate(Request(AgentBody(), OptimizationPolicy.Default))!;
        var stale = sample.Savings.Single(s => s.Stage == InsightKinds.StaleToolResults);
        Assert.True(stale.Tokens > 0); // two of the six results are older than the last four tool turns

        var on = OptimizationPolicy.Default with { Trim = new TrimOptions { StaleToolResults = new StaleToolResultsOptions() } };
        Assert.DoesNotContain(Evaluator.Evaluate(Request(AgentBody(), on))!.Savings, s => s.Stage == InsightKinds.StaleToolResults);
    }

    [Fact]
    public void Evaluate_ToolSet_DeclaredCalledAndTokensAsCountedWithout()
    {
        var body = AgentBody();
        var sample = Evaluator.Evaluate(Request(body, OptimizationPolicy.Default))!;
        Assert.Equal(12, sample.DeclaredTools);
        Assert.Equal(["get_item", "list_items"], sample.CalledTools.Order(StringComparer.Ordinal));

        var bare = JsonNode.Parse(body)!.AsObject();
        bare.Remove("tools");
        var expected = OptimizationTestKit.Count(OptimizationTestKit.Parse(LlmDialect.OpenAIChat, body))
            - OptimizationTestKit.Count(OptimizationTestKit.Parse(LlmDialect.OpenAIChat, bare.ToJsonString()));
        Assert.Equal(expected, sample.ToolTokens);

        // With the ledger's anatomy the tool tokens are read from it, not counted again.
        var withAnatomy = Evaluator.Evaluate(Request(body, OptimizationPolicy.Default) with { Anatomy = new TokenAnatomy(10, 777, 100, 2000, 20) })!;
        Assert.Equal(777, withAnatomy.ToolTokens);

        // Tool selection on: no tool observation.
        var selecting = OptimizationPolicy.Default with { Tools = new ToolsOptions { Enabled = true } };
        Assert.Equal(0, Evaluator.Evaluate(Request(body, selecting))!.DeclaredTools);
    }

    [Fact]
    public void Evaluate_Answer_OutputPerChoiceAndForwardedMaxTokens()
    {
        var sample = Evaluator.Evaluate(Request(AgentBody(), OptimizationPolicy.Default) with { Usage = new TokenUsage(5000, 90), Choices = 3 })!;
        Assert.Equal(30, sample.OutputTokens);
        Assert.Equal(4000, sample.MaxTokens);
        Assert.Equal(10m, sample.OutputPricePerMillion);
        Assert.Null(Evaluator.Evaluate(Request(AgentBody(), OptimizationPolicy.Default) with { ObserveOutput = false })!.OutputTokens);
    }

    [Fact]
    public void Evaluate_AnthropicLongSystemWithoutCacheHints_PrefixObserved()
    {
        var system = string.Join("\n", Enumerable.Range(0, 80).Select(i => $"Rule {i}: answer briefly, cite the runbook section, and never guess an incident number."));
        var body = new JsonObject
        {
            ["model"] = "claude-sonnet-4-5", ["max_tokens"] = 1000, ["system"] = system,
            ["messages"] = new JsonArray { new JsonObject { ["role"] = "user", ["content"] = "Which runbook?" } },
        }.ToJsonString();
        var noHints = OptimizationPolicy.Default with { CacheHints = new CacheHintOptions { Enabled = false } };

        var prefix = Evaluator.Evaluate(Request(body, noHints, Claude, LlmDialect.AnthropicMessages) with { Usage = new TokenUsage(2000, 40, CachedInputTokens: 100) })!.Prefix!;
        Assert.True(prefix.Tokens >= 1024);
        Assert.Equal(100, prefix.CachedReadTokens);
        Assert.Equal(2.7m, prefix.ReadSavingPerMillion);
        Assert.Equal(0.75m, prefix.WritePremiumPerMillion);

        // The same prefix hashes the same; another system prompt does not; hints on → not observed.
        var again = Evaluator.Evaluate(Request(body, noHints, Claude, LlmDialect.AnthropicMessages))!.Prefix!;
        Assert.Equal(prefix.Hash, again.Hash);
        var other = body.Replace("Rule 0:", "Rule zero:", StringComparison.Ordinal);
        Assert.NotEqual(prefix.Hash, Evaluator.Evaluate(Request(other, noHints, Claude, LlmDialect.AnthropicMessages))!.Prefix!.Hash);
        Assert.Null(Evaluator.Evaluate(Request(body, OptimizationPolicy.Default, Claude, LlmDialect.AnthropicMessages))!.Prefix);
    }

    [Fact]
    public void Evaluate_UnpricedModelOrBadBody_Null()
    {
        Assert.Null(Evaluator.Evaluate(Request(AgentBody(), OptimizationPolicy.Default, OptimizationTestKit.Gpt4o)));
        Assert.Null(Evaluator.Evaluate(Request("{not json", OptimizationPolicy.Default)));
    }
}
