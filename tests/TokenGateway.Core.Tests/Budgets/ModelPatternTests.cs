using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Tests.Budgets;

public sealed class ModelPatternTests
{
    [Theory]
    [InlineData("*", "gpt-4o", true)]
    [InlineData("*", "", true)]
    [InlineData("gpt-4o*", "gpt-4o", true)]
    [InlineData("gpt-4o*", "gpt-4o-mini", true)]
    [InlineData("gpt-4o*", "GPT-4O-MINI", true)]
    [InlineData("gpt-4o*", "gpt-4", false)]
    [InlineData("gpt-4o*", "my-gpt-4o", false)]
    [InlineData("claude-*", "claude-sonnet-4-5", true)]
    [InlineData("claude-*", "claude", false)]
    [InlineData("gpt-4o", "gpt-4o", true)]
    [InlineData("gpt-4o", "gpt-4o-mini", false)]
    [InlineData("*-mini", "gpt-4o-mini", true)]
    [InlineData("*-mini", "gpt-4o-mini-2024", false)]
    [InlineData("gpt-*-mini", "gpt-4o-mini", true)]
    [InlineData("gpt-*-mini", "gpt-mini", false)]
    [InlineData("a*a", "a", false)]
    [InlineData("a*a", "aa", true)]
    [InlineData("*sonnet*", "claude-sonnet-4", true)]
    [InlineData("o1**", "o1-pro", true)]
    public void IsMatch_Table_MatchesGlobSemantics(string pattern, string model, bool expected)
    {
        var sut = new ModelPattern(pattern);

        Assert.Equal(expected, sut.IsMatch(model));
    }

    [Fact]
    public void IsAllowed_AllowIntersectionAndDenyUnion_AppliesBothScopes()
    {
        var sut = new ModelAccess([["gpt-*", "claude-*"], ["gpt-4o*"]], ["gpt-4o-realtime*", "o1*"]);

        Assert.True(sut.IsAllowed("gpt-4o-mini"));
        Assert.False(sut.IsAllowed("claude-sonnet-4"));
        Assert.False(sut.IsAllowed("gpt-4o-realtime-preview"));
        Assert.False(sut.IsAllowed("o1-pro"));
    }

    [Fact]
    public void IsAllowed_AliasDenied_RefusesEvenIfCanonicalAllowed()
    {
        var sut = new ModelAccess([["*"]], ["cheap-alias"]);

        Assert.False(sut.IsAllowed("gpt-4o-mini", "cheap-alias"));
        Assert.True(sut.IsAllowed("gpt-4o-mini", "other-alias"));
    }

    [Fact]
    public void IsAllowed_EmptyAllowList_RefusesEverything()
    {
        var sut = new ModelAccess([[]], []);

        Assert.False(sut.IsAllowed("gpt-4o"));
    }
}
