using System.Text.Json.Nodes;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Tests.Budgets;

public sealed class PolicyJsonTests
{
    private const string DesignExample = """
        {"budget": {"usd": 50, "tokens": null, "period": "day", "softAlertPercent": 80, "hard": true},
         "rateLimits": {"requestsPerMinute": 600, "tokensPerMinute": 200000},
         "models": {"allow": ["*"], "deny": []},
         "maxTokens": {"default": 1024, "cap": 4096},
         "optimization": {"compact": {"enabled": true}}, "structuredOutput": {"onFailure": "passthrough"}}
        """;

    [Fact]
    public void Parse_DesignExample_ReadsEveryField()
    {
        var result = PolicyJson.Parse(DesignExample);

        Assert.True(result.IsValid, string.Join(", ", result.Errors));
        var policy = result.Policy!;
        Assert.Equal(50m, policy.Budget!.Usd);
        Assert.Null(policy.Budget.Tokens);
        Assert.Equal(BudgetPeriod.Day, policy.Budget.Period);
        Assert.Equal(80, policy.Budget.SoftAlertPercent);
        Assert.True(policy.Budget.Hard);
        Assert.Equal(600, policy.RateLimits!.RequestsPerMinute);
        Assert.Equal(200_000, policy.RateLimits.TokensPerMinute);
        Assert.Equal(["*"], policy.Models!.Allow);
        Assert.Empty(policy.Models.Deny!);
        Assert.Equal(1024, policy.MaxTokens!.Default);
        Assert.Equal(4096, policy.MaxTokens.Cap);
        Assert.True(policy.Optimization!["compact"]!["enabled"]!.GetValue<bool>());
        Assert.Equal("passthrough", policy.StructuredOutput!["onFailure"]!.GetValue<string>());
    }

    [Fact]
    public void Serialize_RoundTrip_UsesCamelCaseAndLowercasePeriod()
    {
        var policy = PolicyJson.Parse(DesignExample).Policy!;

        var json = PolicyJson.Serialize(policy);
        var again = PolicyJson.Parse(json).Policy!;

        Assert.Contains("\"period\":\"day\"", json, StringComparison.Ordinal);
        Assert.Contains("\"softAlertPercent\":80", json, StringComparison.Ordinal);
        Assert.Contains("\"requestsPerMinute\":600", json, StringComparison.Ordinal);
        Assert.DoesNotContain("\"tokens\":null", json, StringComparison.Ordinal);
        Assert.Equal(policy.Budget, again.Budget);
        Assert.Equal(policy.MaxTokens, again.MaxTokens);
        Assert.True(JsonNode.DeepEquals(policy.Optimization, again.Optimization));
    }

    [Fact]
    public void Parse_EmptyObject_IsValidAndInheritsEverything()
    {
        var result = PolicyJson.Parse("{}");

        Assert.True(result.IsValid);
        Assert.Equal(TeamPolicy.Empty, result.Policy);
    }

    [Theory]
    [InlineData("""{"budjet": {}}""", "budjet", "Unknown field")]
    [InlineData("""{"budget": {"usd": "fifty"}}""", "budget.usd", "a number")]
    [InlineData("""{"budget": {"period": "year"}}""", "budget.period", "\"day\", \"week\", \"month\"")]
    [InlineData("""{"budget": {"period": 1}}""", "budget.period", "\"day\", \"week\", \"month\"")]
    [InlineData("""{"rateLimits": {"requestsPerMinute": 1.5}}""", "rateLimits.requestsPerMinute", "an integer")]
    [InlineData("""{"models": {"allow": "gpt-4o"}}""", "models.allow", "an array")]
    [InlineData("""[1, 2]""", "$", "JSON object")]
    [InlineData("""{"budget": """, "$", "Malformed")]
    public void Parse_WrongShape_ReportsFieldAndExpectation(string json, string field, string messagePart)
    {
        var result = PolicyJson.Parse(json);

        Assert.False(result.IsValid);
        var error = Assert.Single(result.Errors);
        Assert.Equal(field, error.Field);
        Assert.Contains(messagePart, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_SeveralInvalidValues_ReportsEachField()
    {
        var result = PolicyJson.Parse("""
            {"budget": {"usd": -1, "tokens": -5, "softAlertPercent": 150},
             "rateLimits": {"requestsPerMinute": 0, "tokensPerMinute": 0},
             "models": {"allow": ["", "gpt 4"], "deny": ["ok-*"]},
             "maxTokens": {"default": 5000, "cap": 4096}}
            """);

        Assert.False(result.IsValid);
        Assert.Equal(
            ["budget.usd", "budget.tokens", "budget.softAlertPercent", "rateLimits.requestsPerMinute", "rateLimits.tokensPerMinute", "models.allow[0]", "models.allow[1]", "maxTokens.default"],
            result.Errors.Select(e => e.Field));
        Assert.All(result.Errors, e => Assert.False(string.IsNullOrWhiteSpace(e.Message)));
    }

    [Fact]
    public void Validate_ZeroCap_ReportsCap()
    {
        var errors = PolicyValidator.Validate(new TeamPolicy { MaxTokens = new MaxTokensPolicy { Cap = 0 } });

        Assert.Equal("maxTokens.cap", Assert.Single(errors).Field);
    }

    [Theory]
    [InlineData("""{"optimization": {"trim": {"marginTokens": -1}}}""", "optimization", "trim.marginTokens")]
    [InlineData("""{"optimization": {"compactt": {}}}""", "optimization", "compactt: unknown field")]
    [InlineData("""{"structuredOutput": {"mode": "strict"}}""", "structuredOutput", "mode: unknown field")]
    [InlineData("""{"structuredOutput": {"maxRepairs": 9}}""", "structuredOutput", "maxRepairs")]
    public void Parse_InvalidSection_ReportedUnderItsSection(string json, string field, string messagePart)
    {
        // Issue #11: sections are validated by their typed parsers on every path (admin API, configuration, provider),
        // not only by the admin endpoint.
        var result = PolicyJson.Parse(json);

        Assert.False(result.IsValid);
        var error = Assert.Single(result.Errors);
        Assert.Equal(field, error.Field);
        Assert.Contains(messagePart, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"maxTokens": {"adaptive": "yes"}}""", "maxTokens.adaptive", "true, false or an object")]
    [InlineData("""{"maxTokens": {"adaptive": {"enabled": true, "floor": 0}}}""", "maxTokens.adaptive.floor", "at least 1")]
    [InlineData("""{"maxTokens": {"cap": 100, "adaptive": {"floor": 200}}}""", "maxTokens.adaptive.floor", "maxTokens.cap")]
    [InlineData("""{"maxTokens": {"adaptive": {"marginPercent": -5}}}""", "maxTokens.adaptive.marginPercent", "between 0 and 1000")]
    [InlineData("""{"maxTokens": {"adaptive": {"minSamples": 513}}}""", "maxTokens.adaptive.minSamples", "between 1 and 512")]
    public void Parse_InvalidAdaptiveMaxTokens_ReportsTheField(string json, string field, string messagePart)
    {
        var result = PolicyJson.Parse(json);

        Assert.False(result.IsValid);
        var error = Assert.Single(result.Errors);
        Assert.Equal(field, error.Field);
        Assert.Contains(messagePart, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_AdaptiveMaxTokens_ShorthandDefaultsObjectFieldsAndInheritance()
    {
        var shorthand = EffectivePolicy.Resolve("t", null, null, PolicyJson.Parse("""{"maxTokens": {"adaptive": true}}""").Policy, null);
        var defaults = PolicyJson.Parse("""{"maxTokens": {"cap": 4096, "adaptive": {"enabled": true, "minSamples": 20}}}""").Policy;
        var inherited = EffectivePolicy.Resolve("t", null, defaults, PolicyJson.Parse("""{"maxTokens": {"adaptive": {"floor": 64}}}""").Policy, null);
        var off = EffectivePolicy.Resolve("t", null, defaults, PolicyJson.Parse("""{"maxTokens": {"adaptive": false}}""").Policy, null);

        Assert.Equal(new AdaptiveMaxTokensSettings(256, 20, 50), shorthand.AdaptiveMaxTokens);
        Assert.Equal(new AdaptiveMaxTokensSettings(64, 20, 20), inherited.AdaptiveMaxTokens);
        Assert.Null(off.AdaptiveMaxTokens);
        Assert.Null(EffectivePolicy.Resolve("t", null, null, TeamPolicy.Empty, null).AdaptiveMaxTokens);
        Assert.Contains("\"adaptive\":{\"enabled\":true,\"minSamples\":20}", PolicyJson.Serialize(defaults!), StringComparison.Ordinal);
    }
}

public sealed class CachePolicyJsonTests
{
    [Fact]
    public void Parse_CacheSection_ReadsEveryFieldAndResolvesDefaults()
    {
        var result = PolicyJson.Parse("""{"cache": {"enabled": true, "ttlSeconds": 120, "maxEntryBytes": 4096, "requireDeterministic": true}}""");

        Assert.True(result.IsValid, string.Join(", ", result.Errors));
        var settings = ResponseCacheSettings.From(result.Policy!.Cache);
        Assert.Equal(new ResponseCacheSettings(true, TimeSpan.FromSeconds(120), 4096, true), settings);
        Assert.Equal(new ResponseCacheSettings(true, TimeSpan.FromHours(1), 1024 * 1024, false),
            ResponseCacheSettings.From(PolicyJson.Parse("""{"cache": {"enabled": true}}""").Policy!.Cache));
        Assert.False(ResponseCacheSettings.From(null).Enabled);
    }

    [Theory]
    [InlineData("""{"cache": {"ttlSeconds": 0}}""", "cache.ttlSeconds")]
    [InlineData("""{"cache": {"ttlSeconds": 99999999}}""", "cache.ttlSeconds")]
    [InlineData("""{"cache": {"maxEntryBytes": 10}}""", "cache.maxEntryBytes")]
    [InlineData("""{"cache": {"enabled": "yes"}}""", "cache.enabled")]
    [InlineData("""{"cache": {"ttl": 5}}""", "cache.ttl")]
    public void Parse_InvalidCacheSection_NamesTheField(string json, string field)
    {
        var result = PolicyJson.Parse(json);

        Assert.False(result.IsValid);
        Assert.Contains(result.Errors, e => e.Field == field);
    }

    [Fact]
    public void Resolve_KeyCacheSection_OverridesTheTeamFieldByField()
    {
        var team = PolicyJson.Parse("""{"cache": {"enabled": true, "ttlSeconds": 600}}""").Policy!;
        var key = PolicyJson.Parse("""{"cache": {"requireDeterministic": true}}""").Policy!;

        var effective = EffectivePolicy.Resolve("t", "k", defaults: null, team, key);

        Assert.Equal(new ResponseCacheSettings(true, TimeSpan.FromSeconds(600), ResponseCacheSettings.DefaultMaxEntryBytes, true), effective.Cache);
    }
}
