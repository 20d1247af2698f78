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

    [Fact]
    public void FromJson_ToolsAndStaleToolResults_ParsedWithDefaultsOff()
    {
        Assert.False(OptimizationPolicy.Default.Tools.Enabled);
        Assert.Null(OptimizationPolicy.Default.Trim.StaleToolResults);
        var json = JsonNode.Parse("""{"tools":{"enabled":true,"maxTools":8,"always":["reject_request"]},"trim":{"staleToolResults":{"keepRecent":3}}}""")!.AsObject();

        var policy = OptimizationPolicy.FromJson(json, out var errors);

        Assert.Empty(errors);
        Assert.True(policy.Tools.Enabled);
        Assert.Equal(8, policy.Tools.MaxTools);
        Assert.Equal(["reject_request"], policy.Tools.Always);
        Assert.Equal(3, policy.Trim.StaleToolResults!.KeepRecent);
        Assert.Equal(200, policy.Trim.StaleToolResults.MinTokens);
        Assert.Null(OptimizationPolicy.FromJson(JsonNode.Parse("""{"trim":{"staleToolResults":false}}""")!.AsObject(), out _, policy).Trim.StaleToolResults);
        Assert.Null(OptimizationPolicy.FromJson(JsonNode.Parse("""{"trim":{"staleToolResults":{"enabled":false}}}""")!.AsObject(), out _, policy).Trim.StaleToolResults);
        Assert.Equal(4, OptimizationPolicy.FromJson(JsonNode.Parse("""{"trim":{"staleToolResults":true}}""")!.AsObject(), out _).Trim.StaleToolResults!.KeepRecent);
    }

    [Fact]
    public void FromJson_InvalidToolsSettings_ReportedWithTheirPath()
    {
        var json = JsonNode.Parse("""{"tools":{"maxTools":0,"always":"reject_request","x":1},"trim":{"staleToolResults":{"minTokens":5,"y":2}}}""")!.AsObject();

        var policy = OptimizationPolicy.FromJson(json, out var errors);

        Assert.Equal(
        [
            "optimization.tools.maxTools: must be an integer between 1 and 10000.",
            "optimization.tools.always: must be an array of tool names.",
            "optimization.tools.x: unknown field.",
            "optimization.trim.staleToolResults.minTokens: must be an integer between 32 and 10000000.",
            "optimization.trim.staleToolResults.y: unknown field.",
        ], errors);
        Assert.Equal(16, policy.Tools.MaxTools);
        Assert.Empty(policy.Tools.Always);
    }
}
