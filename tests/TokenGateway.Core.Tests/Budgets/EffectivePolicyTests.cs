using System.Text.Json.Nodes;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Tests.Budgets;

public sealed class EffectivePolicyTests
{
    private static TeamPolicy Policy(string json) => PolicyJson.Parse(json).Policy ?? throw new InvalidOperationException(json);

    [Fact]
    public void Resolve_NoPolicies_UnlimitedMonthlyAllowAll()
    {
        var sut = EffectivePolicy.Resolve("t1", null, null, null, null);

        Assert.Equal(BudgetLimits.Unlimited, sut.TeamBudget);
        Assert.False(sut.TeamBudget.Enforced);
        Assert.True(sut.TeamRate.IsUnlimited);
        Assert.True(sut.Models.IsAllowed("anything"));
        Assert.Null(sut.KeyBudget);
        Assert.Null(sut.MaxTokensCap);
    }

    [Fact]
    public void Resolve_TeamWithPartialFields_InheritsTheRestFromDefault()
    {
        var defaults = Policy("""{"budget": {"usd": 10, "period": "day", "softAlertPercent": 80}, "rateLimits": {"requestsPerMinute": 60, "tokensPerMinute": 1000}, "maxTokens": {"default": 512, "cap": 2048}, "optimization": {"trim": {"enabled": true}, "compact": {"toon": false}}}""");
        var team = Policy("""{"budget": {"usd": 50}, "rateLimits": {"tokensPerMinute": 5000}, "optimization": {"compact": {"toon": true}}}""");

        var sut = EffectivePolicy.Resolve("t1", null, defaults, team, null);

        Assert.Equal(new BudgetLimits(BudgetPeriod.Day, 50_000_000, null, 80, true), sut.TeamBudget);
        Assert.Equal(new RateLimits(60, 5000), sut.TeamRate);
        Assert.Equal(512, sut.DefaultMaxTokens);
        Assert.Equal(2048, sut.MaxTokensCap);
        var optimization = sut.Optimization.Resolve("gpt-4o", "/v1/chat/completions"); // typed at resolution (issue #11)
        Assert.True(optimization.Trim.Enabled);
        Assert.True(optimization.Compact.Toon);
        Assert.Equal(50m, sut.Team.Budget!.Usd);
        Assert.Equal(BudgetPeriod.Day, sut.Team.Budget.Period);
    }

    [Fact]
    public void Resolve_TeamModelLists_ReplaceDefaultLists()
    {
        var defaults = Policy("""{"models": {"allow": ["gpt-*"], "deny": ["gpt-4o-realtime*"]}}""");
        var team = Policy("""{"models": {"allow": ["claude-*"]}}""");

        var sut = EffectivePolicy.Resolve("t1", null, defaults, team, null);

        Assert.True(sut.Models.IsAllowed("claude-haiku-4"));
        Assert.False(sut.Models.IsAllowed("gpt-4o"));
        Assert.False(sut.Models.IsAllowed("gpt-4o-realtime-preview"));
    }

    [Fact]
    public void Resolve_KeyPolicy_StricterWinsFieldByField()
    {
        var team = Policy("""{"budget": {"usd": 50, "tokens": 1000000, "period": "day"}, "rateLimits": {"requestsPerMinute": 600, "tokensPerMinute": 200000}, "models": {"allow": ["gpt-*", "claude-*"], "deny": ["o1*"]}, "maxTokens": {"default": 1024, "cap": 4096}}""");
        var key = Policy("""{"budget": {"usd": 100, "tokens": 5000}, "rateLimits": {"requestsPerMinute": 10}, "models": {"allow": ["gpt-4o*", "claude-*"], "deny": ["gpt-4o-audio*"]}, "maxTokens": {"default": 512, "cap": 1024}}""");

        var sut = EffectivePolicy.Resolve("t1", "k1", null, team, key);

        // Key budget: the smaller of each limit, in the team's period; the team scope still applies on its own.
        Assert.Equal(new BudgetLimits(BudgetPeriod.Day, 50_000_000, 5000, null, true), sut.KeyBudget);
        Assert.Equal(50_000_000, sut.TeamBudget.UsdMicros);
        Assert.Equal(new RateLimits(10, 200_000), sut.KeyRate);
        Assert.Equal(new RateLimits(600, 200_000), sut.TeamRate);
        Assert.Equal(1024, sut.MaxTokensCap);
        Assert.Equal(512, sut.DefaultMaxTokens);
        Assert.True(sut.Models.IsAllowed("gpt-4o-mini"));
        Assert.True(sut.Models.IsAllowed("claude-sonnet-4"));
        Assert.False(sut.Models.IsAllowed("gpt-4.1"));        // not in the key's allow list
        Assert.False(sut.Models.IsAllowed("gpt-4o-audio"));   // key deny
        Assert.False(sut.Models.IsAllowed("o1-mini"));        // team deny
    }

    [Fact]
    public void Resolve_KeyWithoutOwnLimits_HasNoKeyScopes()
    {
        var team = Policy("""{"budget": {"usd": 5}, "rateLimits": {"requestsPerMinute": 5}}""");
        var key = Policy("""{"maxTokens": {"cap": 100}}""");

        var sut = EffectivePolicy.Resolve("t1", "k1", null, team, key);

        Assert.Null(sut.KeyBudget);
        Assert.Null(sut.KeyRate);
        Assert.Equal(100, sut.MaxTokensCap);
    }

    [Fact]
    public void Resolve_SoftTeamBudget_KeyHardBudgetStaysHard()
    {
        var team = Policy("""{"budget": {"usd": 5, "hard": false}}""");
        var key = Policy("""{"budget": {"usd": 1}}""");

        var sut = EffectivePolicy.Resolve("t1", "k1", null, team, key);

        Assert.False(sut.TeamBudget.Hard);
        Assert.True(sut.KeyBudget!.Hard);
        Assert.Equal(1_000_000, sut.KeyBudget.UsdMicros);
    }

    [Fact]
    public void Resolve_DefaultAboveCapAfterMerge_ClampsDefault()
    {
        var defaults = Policy("""{"maxTokens": {"default": 4000}}""");
        var team = Policy("""{"maxTokens": {"cap": 1000}}""");

        var sut = EffectivePolicy.Resolve("t1", null, defaults, team, null);

        Assert.Equal(1000, sut.DefaultMaxTokens);
    }

    [Fact]
    public void Resolve_Sections_ParsedOnceIntoTypedPolicies_KeyOverridesTeam()
    {
        var team = Policy("""{"optimization": {"dedupe": {"minTokens": 128}, "models": {"gpt-4o*": {"compact": false}}}, "structuredOutput": {"maxRepairs": 2, "onFailure": "passthrough"}}""");
        var key = Policy("""{"optimization": {"dedupe": {"minTokens": 256}}, "structuredOutput": {"maxRepairs": 0}}""");

        var sut = EffectivePolicy.Resolve("t1", "k1", null, team, key);

        var forGpt = sut.Optimization.Resolve("gpt-4o-mini", "/v1/chat/completions");
        Assert.Equal(256, forGpt.Dedupe.MinTokens);
        Assert.False(forGpt.Compact.Enabled);
        Assert.True(sut.Optimization.Resolve("claude-sonnet-4-5", "/v1/messages").Compact.Enabled);
        Assert.Equal(0, sut.StructuredOutput.MaxRepairs);
        Assert.Equal(Core.StructuredOutput.SchemaFailureMode.Passthrough, sut.StructuredOutput.OnFailure);
    }

    [Fact]
    public void Resolve_NoSections_TypedDefaults()
    {
        var sut = EffectivePolicy.Resolve("t1", null, null, null, null);

        Assert.Same(Core.Optimization.ScopedOptimizationPolicy.Default, sut.Optimization);
        Assert.Same(Core.StructuredOutput.StructuredOutputPolicy.Default, sut.StructuredOutput);
    }

    [Fact]
    public void ModelAccess_MoreDistinctNamesThanCached_DecisionsStayCorrect()
    {
        var sut = EffectivePolicy.Resolve("t1", null, null, Policy("""{"models": {"allow": ["gpt-*"], "deny": ["gpt-4o-audio*"]}}"""), null).Models;

        // The decision cache is a bounded LRU (issue #11): past its capacity it evicts, it never serves a wrong answer.
        for (var i = 0; i < 5000; i++)
        {
            Assert.True(sut.IsAllowed("gpt-4o", $"alias-{i}"));
            Assert.False(sut.IsAllowed("gpt-4o-audio-preview", $"alias-{i}"));
            Assert.False(sut.IsAllowed("claude-haiku-4", $"alias-{i}"));
            Assert.True(sut.IsAllowed("gpt-4o", null));
        }
    }
}
