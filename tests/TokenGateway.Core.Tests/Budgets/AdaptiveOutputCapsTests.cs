using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Tests.Budgets;

public sealed class AdaptiveOutputCapsTests
{
    private static readonly AdaptiveMaxTokensSettings Settings = new(Floor: 10, MarginPercent: 20, MinSamples: 50);

    [Fact]
    public void CapFor_BeforeMinSamples_IsNullThenActs()
    {
        var caps = new AdaptiveOutputCaps();
        for (var i = 0; i < 49; i++)
        {
            caps.Observe("t1", "gpt-4o", 100, 4096, Settings, 4096);
        }

        Assert.Null(caps.CapFor("t1", "gpt-4o", Settings, 4096));
        caps.Observe("t1", "gpt-4o", 100, 4096, Settings, 4096);
        Assert.Equal(120, caps.CapFor("t1", "gpt-4o", Settings, 4096)); // p99 100 + 20 %
    }

    [Fact]
    public void CapFor_P99PlusMargin_NearestRank()
    {
        var caps = new AdaptiveOutputCaps();
        foreach (var length in Enumerable.Range(1, 100).Reverse())
        {
            caps.Observe("t1", "m", length, null, Settings, 4096);
        }

        // Nearest rank: the 99th of 100 sorted values is 99; 99 × 1.2 = 118.8 → 119.
        Assert.Equal(119, caps.CapFor("t1", "m", Settings, 4096));
    }

    [Fact]
    public void CapFor_ShortAnswers_NeverBelowTheFloor()
    {
        var caps = new AdaptiveOutputCaps();
        var settings = Settings with { Floor = 256 };
        for (var i = 0; i < 60; i++)
        {
            caps.Observe("t1", "m", 20, null, settings, 4096);
        }

        Assert.Equal(256, caps.CapFor("t1", "m", settings, 4096));
    }

    [Fact]
    public void CapFor_LongAnswers_NeverAboveTheCeiling()
    {
        var caps = new AdaptiveOutputCaps();
        for (var i = 0; i < 60; i++)
        {
            caps.Observe("t1", "m", 3900, null, Settings, 4096);
        }

        Assert.Equal(4096, caps.CapFor("t1", "m", Settings, 4096)); // 3,900 × 1.2 = 4,680 > the 4,096 cap
        Assert.Equal(1000, caps.CapFor("t1", "m", Settings, 1000)); // the policy cap can be lowered later
    }

    [Fact]
    public void Observe_TruncatedAnswer_DoublesTheRouteCapForAWindowThenItRelearns()
    {
        var caps = new AdaptiveOutputCaps();
        for (var i = 0; i < 50; i++)
        {
            caps.Observe("t1", "m", 100, 4096, Settings, 4096);
        }

        Assert.Equal(120, caps.CapFor("t1", "m", Settings, 4096));

        caps.Observe("t1", "m", 120, 120, Settings, 4096); // used all of max_tokens: finish_reason length

        Assert.Equal(240, caps.CapFor("t1", "m", Settings, 4096));
        caps.Observe("t1", "m", 240, 240, Settings, 4096); // truncated again at the raised cap
        Assert.Equal(480, caps.CapFor("t1", "m", Settings, 4096));
        for (var i = 0; i < AdaptiveOutputCaps.Window; i++)
        {
            caps.Observe("t1", "m", 100, 480, Settings, 4096);
        }

        Assert.Equal(120, caps.CapFor("t1", "m", Settings, 4096)); // the truncated lengths left the window
    }

    [Fact]
    public void Observe_TruncationRaise_NeverExceedsTheCeiling()
    {
        var caps = new AdaptiveOutputCaps();
        for (var i = 0; i < 50; i++)
        {
            caps.Observe("t1", "m", 900, 1000, Settings, 1000);
        }

        caps.Observe("t1", "m", 1000, 1000, Settings, 1000);

        Assert.Equal(1000, caps.CapFor("t1", "m", Settings, 1000));
    }

    [Fact]
    public void Observe_OldAnswersLeaveTheWindow()
    {
        var caps = new AdaptiveOutputCaps();
        for (var i = 0; i < AdaptiveOutputCaps.Window; i++)
        {
            caps.Observe("t1", "m", 2000, null, Settings, 4096);
        }

        for (var i = 0; i < AdaptiveOutputCaps.Window; i++)
        {
            caps.Observe("t1", "m", 50, null, Settings, 4096);
        }

        Assert.Equal(60, caps.CapFor("t1", "m", Settings, 4096));
    }

    [Fact]
    public void CapFor_TeamsAndModelsAreSeparate()
    {
        var caps = new AdaptiveOutputCaps();
        for (var i = 0; i < 50; i++)
        {
            caps.Observe("t1", "a", 100, null, Settings, 4096);
        }

        Assert.Null(caps.CapFor("t2", "a", Settings, 4096));
        Assert.Null(caps.CapFor("t1", "b", Settings, 4096));
    }

    [Fact]
    public void Admit_AdaptiveCap_LowersMaxTokensAndTheReservationButKeepsASmallerClientValue()
    {
        var model = new TokenGateway.Core.Models.ModelCard { Name = "m", Provider = "openai", MaxOutputTokens = 16_384, Prices = new TokenGateway.Core.Models.ModelPrices { Input = 1m, Output = 4m } };
        var policy = EffectivePolicy.Resolve("t1", null, null, PolicyJson.Parse("""{"maxTokens":{"cap":4096,"adaptive":true}}""").Policy!, null);
        var options = new AdmissionOptions();
        var pricing = new TokenGateway.Core.Metering.PricingOptions();

        var lowered = AdmissionPlanner.Plan(new AdmissionRequest { Policy = policy, Model = model, InputTokens = 1000, RequestedMaxTokens = 2000, AdaptiveMaxTokens = 300 }, options, pricing, TimeSpan.FromMinutes(1), DateTimeOffset.UnixEpoch);
        var kept = AdmissionPlanner.Plan(new AdmissionRequest { Policy = policy, Model = model, InputTokens = 1000, RequestedMaxTokens = 200, AdaptiveMaxTokens = 300 }, options, pricing, TimeSpan.FromMinutes(1), DateTimeOffset.UnixEpoch);
        var defaulted = AdmissionPlanner.Plan(new AdmissionRequest { Policy = policy, Model = model, InputTokens = 1000, AdaptiveMaxTokens = 300 }, options, pricing, TimeSpan.FromMinutes(1), DateTimeOffset.UnixEpoch);

        Assert.Equal(300, lowered.MaxTokensToSend);
        Assert.Equal(300, lowered.Reserve!.MaxOutputTokens);
        Assert.Null(kept.MaxTokensToSend);
        Assert.Equal(200, kept.Reserve!.MaxOutputTokens);
        Assert.Equal(300, defaulted.MaxTokensToSend); // no client value: the adaptive cap, not the 4,096 cap
    }
}
