using System.Text.Json.Nodes;
using TokenGateway.Core.Insights;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;

namespace TokenGateway.Core.Tests.Insights;

/// <summary>Each recommendation's estimator on hand-made observations, with the expected dollars worked out here.</summary>
public sealed class InsightsEstimatorTests
{
    private static readonly ModelCard Gpt = new() { Name = "gpt-4o", Provider = "openai", MaxOutputTokens = 16_384, Prices = new ModelPrices { Input = 2.5m, Output = 10m } };

    /// <summary>The ledger: $10 on gpt-4o over 2 days (×15 to a month), 1,000 requests.</summary>
    private static readonly LedgerVolume Volume = new(
        DateTimeOffset.Parse("2026-12-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture),
        DateTimeOffset.Parse("2026-12-03T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture),
        new Dictionary<string, ModelVolume> { ["gpt-4o"] = new(10m, 1000) });

    private static InsightsPolicyView View(OptimizationPolicy? policy = null, bool adaptive = false, int? cap = null, IReadOnlyList<TokenAnatomyRollup>? anatomy = null) => new()
    {
        Optimization = _ => policy ?? OptimizationPolicy.Default,
        AdaptiveMaxTokens = adaptive,
        MaxTokensCap = cap,
        Models = name => name == Gpt.Name ? Gpt : null,
        Anatomy = anatomy,
        InputPrice = card => card.Prices.Input,
    };

    private static TeamObservations Observations(ModelObservations model, params string[] called) => new("team-1", [model], called);

    private static OptimizationPolicy CompactOff => OptimizationPolicy.Default with { Compact = new CompactOptions { Enabled = false } };

    [Fact]
    public void Monthly_SampledShareTimesWindowSpendTimes30OverDays()
    {
        Assert.Equal(2, Volume.Days);
        Assert.Equal(15m, Volume.MonthFactor);
        Assert.Equal(150m, Volume.MonthlySpendUsd);

        // $1 saved on $4 of sampled cost = 25 % of the model's $10 in 2 days = $37.50 a month.
        Assert.Equal(37.5m, InsightsEstimator.Monthly([("gpt-4o", 4m, 1m)], Volume));

        // A model without ledger spend in the window, or without sampled cost, contributes nothing.
        Assert.Equal(0m, InsightsEstimator.Monthly([("other", 4m, 1m), ("gpt-4o", 0m, 1m)], Volume));
    }

    [Fact]
    public void Stage_OffAndSaving_EstimateShareAndFragment()
    {
        var model = new ModelObservations
        {
            Model = "gpt-4o", Samples = 40, CostUsd = 4m, InputTokens = 100_000,
            Savings = new Dictionary<string, StageObservation> { ["compact"] = new(20_000, 0.05m, 30) },
        };

        var item = InsightsEstimator.Stage(Observations(model), Volume, View(CompactOff), "compact")!;

        Assert.Equal("stage.compact", item.Id);
        Assert.Equal(InsightKinds.Stage, item.Kind);
        Assert.Equal(0.05m / 4m * 10m * 15m, item.EstimatedUsdPerMonth); // $1.875
        Assert.Equal(1.875 / 150, item.ShareOfSpend, 6);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"optimization":{"compact":{"enabled":true}}}"""), item.Policy));
        Assert.Equal(20_000, item.Evidence["tokensSaved"]!.GetValue<long>());
    }

    [Fact]
    public void Stage_MasterSwitchOff_FragmentTurnsItOnToo()
    {
        var model = new ModelObservations { Model = "gpt-4o", Samples = 40, CostUsd = 4m, Savings = new Dictionary<string, StageObservation> { ["dedupe"] = new(100, 0.001m, 1) } };
        var item = InsightsEstimator.Stage(Observations(model), Volume, View(OptimizationPolicy.Default with { Enabled = false }), "dedupe")!;
        Assert.True(item.Policy["optimization"]!["enabled"]!.GetValue<bool>());
        Assert.True(item.Policy["optimization"]!["dedupe"]!["enabled"]!.GetValue<bool>());
    }

    [Fact]
    public void Stage_TurnedOnSinceSampling_NotRecommended()
    {
        var model = new ModelObservations { Model = "gpt-4o", Samples = 40, CostUsd = 4m, Savings = new Dictionary<string, StageObservation> { ["compact"] = new(20_000, 0.05m, 30) } };
        Assert.Null(InsightsEstimator.Stage(Observations(model), Volume, View(OptimizationPolicy.Default), "compact"));
    }

    [Fact]
    public void Tools_ManyDeclaredTwoCalled_MaxToolsFourAndSavingOfTheRest()
    {
        var model = new ModelObservations
        {
            Model = "gpt-4o", Samples = 10, CostUsd = 0.1m,
            DeclaredTools = new Dictionary<int, DeclaredToolsObservation> { [20] = new(10, 10_000, 0.025m) },
        };

        var item = InsightsEstimator.Tools(Observations(model, "a", "b"), Volume, View())!;

        Assert.Equal(4, InsightsEstimator.RecommendedMaxTools(2));
        Assert.Equal(4, item.Policy["optimization"]!["tools"]!["maxTools"]!.GetValue<int>());
        Assert.True(item.Policy["optimization"]!["tools"]!["enabled"]!.GetValue<bool>());

        // 16 of 20 tools dropped: 0.8 × $0.025 = $0.02 of $0.10 sampled = 20 % of $150 a month.
        Assert.Equal(30m, item.EstimatedUsdPerMonth);
        Assert.Equal(8_000, item.Evidence["toolTokensSaved"]!.GetValue<long>());
    }

    [Fact]
    public void Tools_CalledNearlyAllDeclared_NotRecommended()
    {
        var model = new ModelObservations { Model = "gpt-4o", Samples = 10, CostUsd = 0.1m, DeclaredTools = new Dictionary<int, DeclaredToolsObservation> { [8] = new(10, 4_000, 0.01m) } };
        Assert.Null(InsightsEstimator.Tools(Observations(model, "a", "b", "c", "d", "e"), Volume, View()));
        var selecting = OptimizationPolicy.Default with { Tools = new ToolsOptions { Enabled = true } };
        Assert.Null(InsightsEstimator.Tools(Observations(model with { DeclaredTools = new Dictionary<int, DeclaredToolsObservation> { [40] = new(10, 4_000, 0.01m) } }), Volume, View(selecting)));
    }

    [Fact]
    public void PromptCache_RepeatedPrefixMissed_SavingNetOfTheWrites()
    {
        var model = new ModelObservations
        {
            Model = "gpt-4o", Samples = 10, CostUsd = 1m,
            PromptCache = new PromptCacheObservation(Samples: 10, Repeats: 9, PrefixTokens: 20_000, MissedTokens: 18_000, MissedUsd: 0.2m, Writes: 1, WritePremiumUsd: 0.02m),
        };
        var noHints = OptimizationPolicy.Default with { CacheHints = new CacheHintOptions { Enabled = false } };

        var item = InsightsEstimator.PromptCache(Observations(model), Volume, View(noHints))!;

        Assert.Equal(0.18m / 1m * 10m * 15m, item.EstimatedUsdPerMonth); // $27
        Assert.True(item.Policy["optimization"]!["cacheHints"]!["enabled"]!.GetValue<bool>());
        Assert.Null(InsightsEstimator.PromptCache(Observations(model), Volume, View())); // hints on now
        var writesCostMore = model with { PromptCache = model.PromptCache with { WritePremiumUsd = 0.3m } };
        Assert.Null(InsightsEstimator.PromptCache(Observations(writesCostMore), Volume, View(noHints)));
    }

    [Fact]
    public void StaleToolResults_ShadowSavingAndAnatomyShare()
    {
        var model = new ModelObservations
        {
            Model = "gpt-4o", Samples = 20, CostUsd = 2m,
            Savings = new Dictionary<string, StageObservation> { [InsightKinds.StaleToolResults] = new(40_000, 0.1m, 20) },
        };
        // 200,000 tool-result tokens at $2.50/M = $0.50 of $2 spent: 25 %.
        var anatomy = new TokenAnatomyRollup("team-1", "gpt-4o", 20, 1000, 0, 5000, 200_000, 1000, 800, 0, 2m);

        var item = InsightsEstimator.StaleToolResults(Observations(model), Volume, View(anatomy: [anatomy]), minSamples: 10)!;

        Assert.Equal(0.1m / 2m * 10m * 15m, item.EstimatedUsdPerMonth); // $7.50
        Assert.Equal(0.25, item.Evidence["toolResultsShareOfSpend"]!.GetValue<double>(), 6);
        Assert.Equal(4, item.Policy["optimization"]!["trim"]!["staleToolResults"]!["keepRecent"]!.GetValue<int>());
        Assert.Equal(200, item.Policy["optimization"]!["trim"]!["staleToolResults"]!["minTokens"]!.GetValue<int>());

        // Too few samples: no dollar figure, but the anatomy share alone (≥ 5 %) still shows the item.
        var early = InsightsEstimator.StaleToolResults(Observations(model), Volume, View(anatomy: [anatomy]), minSamples: 100)!;
        Assert.Equal(0m, early.EstimatedUsdPerMonth);

        // Already on: nothing.
        var on = OptimizationPolicy.Default with { Trim = new TrimOptions { StaleToolResults = new StaleToolResultsOptions() } };
        Assert.Null(InsightsEstimator.StaleToolResults(Observations(model), Volume, View(on, anatomy: [anatomy]), minSamples: 10));
    }

    [Fact]
    public void MaxTokens_OversizedRequests_AdaptiveRuleCapSpendAboveItAndReservationsFreed()
    {
        // 198 answers of 40 tokens and 2 of 1,000, all sent with max_tokens 4,000; each cost $0.01.
        var answers = Enumerable.Repeat(new AnswerObservation(40, 4000, 1, 0.01m), 198)
            .Concat(Enumerable.Repeat(new AnswerObservation(1000, 4000, 1, 0.01m), 2)).ToArray();
        var model = new ModelObservations { Model = "gpt-4o", Samples = 200, CostUsd = 2m, Answers = answers, OutputPricePerMillion = 10m };

        var item = InsightsEstimator.MaxTokens(Observations(model), Volume, View(), minSamples: 50)!;

        // Nearest-rank p99 of 200 values is the 198th = 40; × 1.2 = 48; the floor makes it 256.
        var evidence = item.Evidence["models"]!["gpt-4o"]!;
        Assert.Equal(40, evidence["p99OutputTokens"]!.GetValue<int>());
        Assert.Equal(256, evidence["recommendedCap"]!.GetValue<int>());
        Assert.Equal(2, evidence["answersAboveCap"]!.GetValue<int>());

        // Spend: 2 × (1000 − 256) output tokens at $10/M = $0.01488 of $2 sampled → × $10 × 15.
        Assert.Equal(Math.Round(0.01488m / 2m * 10m * 15m, 6), item.EstimatedUsdPerMonth);

        // Reservations: 3,744 tokens × $10/M per request × 1,000 requests × 15.
        Assert.Equal(Math.Round(3744 * 10m / 1_000_000m * 1000 * 15m, 6), item.ReservedUsdPerMonth);
        Assert.True(item.Policy["maxTokens"]!["adaptive"]!["enabled"]!.GetValue<bool>());
    }

    [Fact]
    public void MaxTokens_AdaptiveOnOrRequestsNearTheCapOrTooFewAnswers_NotRecommended()
    {
        var answers = Enumerable.Repeat(new AnswerObservation(40, 4000, 1, 0.01m), 60).ToArray();
        var model = new ModelObservations { Model = "gpt-4o", Samples = 60, CostUsd = 0.6m, Answers = answers, OutputPricePerMillion = 10m };
        Assert.Null(InsightsEstimator.MaxTokens(Observations(model), Volume, View(adaptive: true), minSamples: 50));
        Assert.Null(InsightsEstimator.MaxTokens(Observations(model), Volume, View(), minSamples: 100));
        var modest = model with { Answers = Enumerable.Repeat(new AnswerObservation(40, 400, 1, 0.01m), 60).ToArray() };
        Assert.Null(InsightsEstimator.MaxTokens(Observations(modest), Volume, View(), minSamples: 50)); // 400 < 2 × 256
    }

    [Fact]
    public void Estimate_RankedByDollarsAndGatedOnSamples()
    {
        var model = new ModelObservations
        {
            Model = "gpt-4o", Samples = 40, CostUsd = 4m,
            Savings = new Dictionary<string, StageObservation> { ["compact"] = new(1_000, 0.01m, 5), ["dedupe"] = new(9_000, 0.09m, 5) },
        };
        var policy = OptimizationPolicy.Default with { Compact = new CompactOptions { Enabled = false }, Dedupe = new DedupeOptions { Enabled = false } };

        var ranked = InsightsEstimator.Estimate(Observations(model), Volume, View(policy), minSamples: 20);
        Assert.Equal(["stage.dedupe", "stage.compact"], ranked.Select(r => r.Id));
        Assert.Empty(InsightsEstimator.Estimate(Observations(model), Volume, View(policy), minSamples: 41));
        Assert.Empty(InsightsEstimator.Estimate(null, Volume, View(policy), minSamples: 1));
    }
}
