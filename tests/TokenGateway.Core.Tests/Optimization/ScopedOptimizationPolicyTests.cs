using System.Text.Json.Nodes;
using TokenGateway.Core.Optimization;

namespace TokenGateway.Core.Tests.Optimization;

public sealed class ScopedOptimizationPolicyTests
{
    private static ScopedOptimizationPolicy Parse(string json, out IReadOnlyList<string> errors) =>
        ScopedOptimizationPolicy.Parse(JsonNode.Parse(json)!.AsObject(), out errors);

    [Fact]
    public void Resolve_ModelOverride_WinsOverRouteAndBase()
    {
        var sut = Parse("""
            {"compact": false, "dedupe": false,
             "routes": {"/v1/messages": {"dedupe": true}},
             "models": {"gpt-4o*": {"compact": true}, "gpt-4o-mini": {"dedupe": true}}}
            """, out var errors);

        Assert.Empty(errors);
        var gpt4o = sut.Resolve("gpt-4o", "/v1/chat/completions");
        Assert.True(gpt4o.Compact.Enabled);
        Assert.False(gpt4o.Dedupe.Enabled);
        var mini = sut.Resolve("gpt-4o-mini", "/v1/chat/completions");
        Assert.True(mini.Compact.Enabled);
        Assert.True(mini.Dedupe.Enabled);
        var claude = sut.Resolve("claude-sonnet-4-5", "/v1/messages");
        Assert.False(claude.Compact.Enabled);
        Assert.True(claude.Dedupe.Enabled);
    }

    [Fact]
    public void Resolve_NoOverrides_ReturnsTheBasePolicyInstance()
    {
        var sut = Parse("""{"dedupe": {"minTokens": 128}}""", out _);

        Assert.Same(sut.Resolve("a", "/x"), sut.Resolve("b", "/y"));
        Assert.Equal(128, sut.Resolve("a", "/x").Dedupe.MinTokens);
    }

    [Fact]
    public void Parse_InvalidOverride_ReportsItsPath()
    {
        Parse("""{"models": {"gpt-4o": 5, "o3*": {"compact": {"toonMinGainPercent": "lots"}}}, "routes": []}""", out var errors);

        Assert.Contains(errors, e => e.StartsWith("models.gpt-4o:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("models.o3*:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("routes:", StringComparison.Ordinal));
    }
}
