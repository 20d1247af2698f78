using System.Text.Json.Nodes;
using TokenGateway.Core.Optimization;

namespace TokenGateway.Core.Tests.Optimization;

public sealed class OptimizationPolicyTests
{
    [Fact]
    public void FromJson_Null_ReturnsDefaults()
    {
        var policy = OptimizationPolicy.FromJson(null, out var errors);

        Assert.Empty(errors);
        Assert.Equal(OptimizationPolicy.Default, policy);
        Assert.False(policy.Curate.Enabled);
    }

    [Fact]
    public void FromJson_PartialSection_OverridesOnlyGivenFields()
    {
        var json = JsonNode.Parse("""{"trim":{"maxInputTokens":8000,"retentionRatio":0.7},"curate":true,"dedupe":{"minTokens":128},"cacheHints":{"conversation":true}}""")!.AsObject();

        var policy = OptimizationPolicy.FromJson(json, out var errors);

        Assert.Empty(errors);
        Assert.Equal(8000, policy.Trim.MaxInputTokens);
        Assert.Equal(0.7, policy.Trim.RetentionRatio);
        Assert.Equal(512, policy.Trim.MarginTokens);
        Assert.True(policy.Curate.Enabled);
        Assert.Equal(128, policy.Dedupe.MinTokens);
        Assert.True(policy.CacheHints.Conversation);
    }

    [Fact]
    public void FromJson_InvalidValues_ReportsEveryErrorAndKeepsDefaults()
    {
        var json = JsonNode.Parse("""{"trim":{"retentionRatio":2},"compact":{"toon":"yes","bogus":1},"unknown":{},"dedupe":5}""")!.AsObject();

        var policy = OptimizationPolicy.FromJson(json, out var errors);

        Assert.Equal(
        [
            "optimization.trim.retentionRatio: must be a number between 0.1 and 0.99.",
            "optimization.compact.toon: must be true or false.",
            "optimization.compact.bogus: unknown field.",
            "optimization.unknown: unknown field.",
            "optimization.dedupe: must be an object or a boolean.",
        ], errors);
        Assert.Equal(0.8, policy.Trim.RetentionRatio);
        Assert.True(policy.Compact.Toon);
    }

    [Fact]
    public void FromJson_InheritedBase_AbsentFieldsComeFromBase()
    {
        var team = OptimizationPolicy.FromJson(JsonNode.Parse("""{"curate":{"enabled":true,"maxTokens":3000}}""")!.AsObject(), out _);

        var model = OptimizationPolicy.FromJson(JsonNode.Parse("""{"curate":{"maxTokens":1500}}""")!.AsObject(), out var errors, team);

        Assert.Empty(errors);
        Assert.True(model.Curate.Enabled);
        Assert.Equal(1500, model.Curate.MaxTokens);
    }
}
