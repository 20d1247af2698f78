using TokenGateway.Core.Budgets;
using TokenGateway.Core.Resilience;

namespace TokenGateway.Core.Tests.Resilience;

public sealed class ResilienceSettingsResolverTests
{
    [Fact]
    public void Resolve_NoOverrides_ReturnsTheDefaults()
    {
        var defaults = new ResilienceOptions().ToSettings();

        Assert.Same(defaults, ResilienceSettingsResolver.Resolve(defaults, null, null));
        Assert.Equal(ResilienceSettings.Default, defaults);
    }

    [Fact]
    public void Resolve_ModelThenTeam_TeamWinsFieldByField()
    {
        var defaults = ResilienceSettings.Default;
        var model = new ResilienceOverrides
        {
            Timeouts = new TimeoutOverrides { ResponseHeaders = TimeSpan.FromSeconds(120), Idle = TimeSpan.FromSeconds(30) },
            Retry = new RetryOverrides { MaxAttempts = 5, Jitter = 0 },
        };
        var team = new ResilienceOverrides
        {
            Retry = new RetryOverrides { MaxAttempts = 2 },
            ContinueStreams = true,
        };

        var settings = ResilienceSettingsResolver.Resolve(defaults, model, team);

        Assert.Equal(TimeSpan.FromSeconds(120), settings.ResponseHeadersTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), settings.IdleTimeout);
        Assert.Equal(2, settings.MaxAttempts);
        Assert.Equal(0, settings.Jitter);
        Assert.True(settings.ContinueStreams);
        Assert.Equal(defaults.ConnectTimeout, settings.ConnectTimeout);
        Assert.Equal(defaults.RetryAfterCap, settings.RetryAfterCap);
    }

    [Fact]
    public void Resolve_TeamTotalBelowModelTimeouts_ClampsPerAttemptTimeoutsToTheTotal()
    {
        var model = new ResilienceOverrides { Timeouts = new TimeoutOverrides { ResponseHeaders = TimeSpan.FromMinutes(5) } };
        var team = new ResilienceOverrides
        {
            Timeouts = new TimeoutOverrides { Total = TimeSpan.FromSeconds(45) },
            Retry = new RetryOverrides { BaseDelay = TimeSpan.FromSeconds(20), MaxDelay = TimeSpan.FromSeconds(5) },
        };

        var settings = ResilienceSettingsResolver.Resolve(ResilienceSettings.Default, model, team);

        Assert.Equal(TimeSpan.FromSeconds(45), settings.ResponseHeadersTimeout);
        Assert.Equal(TimeSpan.FromSeconds(10), settings.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(45), settings.IdleTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), settings.BaseDelay);
    }

    [Fact]
    public void ToSettings_HeadersAndIdleUnset_UseTheBuiltInDefaults()
    {
        var options = new ResilienceOptions { Timeouts = { Connect = TimeSpan.FromSeconds(3), Idle = TimeSpan.FromSeconds(9) } };

        var settings = options.ToSettings();

        Assert.Equal(TimeSpan.FromSeconds(3), settings.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(9), settings.IdleTimeout);
        Assert.Equal(ResilienceSettings.Default.ResponseHeadersTimeout, settings.ResponseHeadersTimeout);
    }
}

public sealed class ResilienceValidationTests
{
    [Fact]
    public void Validate_Defaults_AreValid()
    {
        Assert.Empty(ResilienceValidation.Validate(new ResilienceOptions()));
    }

    [Fact]
    public void Validate_EveryBadValue_ReportsEachFieldByConfigurationPath()
    {
        var options = new ResilienceOptions
        {
            Timeouts = new TimeoutOptions { Connect = TimeSpan.Zero, ResponseHeaders = TimeSpan.FromHours(2), Total = TimeSpan.FromSeconds(30) },
            Retry = new RetryOptions { MaxAttempts = 0, BaseDelay = TimeSpan.FromSeconds(20), MaxDelay = TimeSpan.FromSeconds(10), Jitter = 1.5, RetryAfterCap = TimeSpan.FromHours(1) },
            CircuitBreaker = new CircuitBreakerOptions { FailureRatio = 0, MinimumThroughput = 1, SamplingDuration = TimeSpan.FromMilliseconds(100), BreakDuration = TimeSpan.FromDays(2) },
            MaxFallbacks = 11,
        };

        var fields = ResilienceValidation.Validate(options).Select(e => e.Field).ToHashSet();

        Assert.Superset(new HashSet<string>
        {
            "Resilience:Timeouts:Connect", "Resilience:Timeouts:ResponseHeaders",
            "Resilience:Retry:MaxAttempts", "Resilience:Retry:BaseDelay", "Resilience:Retry:Jitter", "Resilience:Retry:RetryAfterCap",
            "Resilience:CircuitBreaker:FailureRatio", "Resilience:CircuitBreaker:MinimumThroughput",
            "Resilience:CircuitBreaker:SamplingDuration", "Resilience:CircuitBreaker:BreakDuration", "Resilience:MaxFallbacks",
        }, fields);
    }

    [Fact]
    public void Validate_ConnectLongerThanTotal_IsACrossFieldError()
    {
        var options = new ResilienceOptions { Timeouts = new TimeoutOptions { Connect = TimeSpan.FromMinutes(2), Total = TimeSpan.FromMinutes(1) } };

        var error = Assert.Single(ResilienceValidation.Validate(options));

        Assert.Equal("Resilience:Timeouts:Connect", error.Field);
        Assert.Contains("Timeouts:Total", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_Overrides_UsesJsonPathsInJsonStyle()
    {
        var errors = new List<SettingError>();
        var overrides = new ResilienceOverrides
        {
            Timeouts = new TimeoutOverrides { Idle = TimeSpan.FromSeconds(-1) },
            Retry = new RetryOverrides { MaxAttempts = 11 },
        };

        ResilienceValidation.Validate(overrides, "resilience", SettingPathStyle.Json, errors);

        Assert.Equal(["resilience.timeouts.idle", "resilience.retry.maxAttempts"], errors.Select(e => e.Field));
    }
}

public sealed class ResiliencePolicyJsonTests
{
    [Fact]
    public void Parse_ResilienceAndFallbacks_ReadsTypedSections()
    {
        var result = PolicyJson.Parse("""
            {"resilience": {"continueStreams": true, "timeouts": {"total": "00:02:00"}, "retry": {"maxAttempts": 4, "retryAfterCap": "00:00:05"}},
             "fallbacks": {"gpt-4o-mini": ["gpt-4.1-mini", "gpt-4.1-nano"]}}
            """);

        Assert.True(result.IsValid, string.Join(", ", result.Errors));
        var policy = result.Policy!;
        Assert.True(policy.Resilience!.ContinueStreams);
        Assert.Equal(TimeSpan.FromMinutes(2), policy.Resilience.Timeouts!.Total);
        Assert.Equal(4, policy.Resilience.Retry!.MaxAttempts);
        Assert.Equal(TimeSpan.FromSeconds(5), policy.Resilience.Retry.RetryAfterCap);
        Assert.Equal(["gpt-4.1-mini", "gpt-4.1-nano"], policy.Fallbacks!["gpt-4o-mini"]);
        var again = PolicyJson.Parse(PolicyJson.Serialize(policy)).Policy!;
        Assert.Equal(policy.Resilience, again.Resilience);
        Assert.Equal(policy.Fallbacks["gpt-4o-mini"], again.Fallbacks!["gpt-4o-mini"]);
    }

    [Theory]
    [InlineData("""{"resilience": {"retry": {"maxAttempts": 50}}}""", "resilience.retry.maxAttempts")]
    [InlineData("""{"resilience": {"timeouts": {"connect": "-00:00:01"}}}""", "resilience.timeouts.connect")]
    [InlineData("""{"resilience": {"retry": {"jitter": 2}}}""", "resilience.retry.jitter")]
    [InlineData("""{"resilience": {"retry": {"maxAttempts": "three"}}}""", "resilience.retry.maxAttempts")]
    [InlineData("""{"resilience": {"circuitBreaker": {}}}""", "resilience.circuitBreaker")]
    [InlineData("""{"fallbacks": {"gpt-4o": ["gpt-4o"]}}""", "fallbacks.gpt-4o[0]")]
    [InlineData("""{"fallbacks": {"a": ["b"], "b": ["a"]}}""", "fallbacks.a")]
    [InlineData("""{"fallbacks": {"gpt-4o": [""]}}""", "fallbacks.gpt-4o[0]")]
    [InlineData("""{"fallbacks": {"gpt-4o": [1]}}""", "fallbacks")]
    public void Parse_InvalidResilienceOrFallbacks_NamesTheField(string json, string field)
    {
        var result = PolicyJson.Parse(json);

        Assert.False(result.IsValid);
        Assert.Contains(result.Errors, e => e.Field == field);
    }

    [Fact]
    public void Parse_TooLongChain_IsRefused()
    {
        var chain = string.Join(",", Enumerable.Range(0, ResilienceLimits.MaxFallbacks + 1).Select(i => $"\"m{i}\""));

        var result = PolicyJson.Parse("{\"fallbacks\": {\"gpt-4o\": [" + chain + "]}}");

        Assert.Contains(result.Errors, e => e.Field == "fallbacks.gpt-4o" && e.Message.Contains("At most", StringComparison.Ordinal));
    }

    [Fact]
    public void Inherit_TeamOverridesMergeFieldByFieldOverTheDefaultPolicy()
    {
        var defaults = new TeamPolicy
        {
            Resilience = new ResilienceOverrides { Retry = new RetryOverrides { MaxAttempts = 2, Jitter = 0.2 }, ContinueStreams = false },
            Fallbacks = new Dictionary<string, IReadOnlyList<string>> { ["gpt-4o"] = ["gpt-4.1"] },
        };
        var team = new TeamPolicy { Resilience = new ResilienceOverrides { Retry = new RetryOverrides { MaxAttempts = 4 }, ContinueStreams = true } };

        var merged = PolicyMerge.Inherit(team, defaults);

        Assert.Equal(4, merged.Resilience!.Retry!.MaxAttempts);
        Assert.Equal(0.2, merged.Resilience.Retry.Jitter);
        Assert.True(merged.Resilience.ContinueStreams);
        Assert.Equal(["gpt-4.1"], merged.Fallbacks!["gpt-4o"]);
    }
}
