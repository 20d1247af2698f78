using TokenGateway.Core.Budgets;
using TokenGateway.Core.Insights;

namespace TokenGateway.Core.Tests.Insights;

/// <summary>The per-team aggregates: sums, bounded rings and sets, prefix repeats within the cache lifetime.</summary>
public sealed class InsightsStoreTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    private static InsightSample Sample(string team = "t", string model = "gpt-4o", DateTimeOffset? at = null) => new()
    {
        TeamId = team, Model = model, At = at ?? T0, CostUsd = 0.01m, InputTokens = 1000,
    };

    [Fact]
    public void Add_SumsSavingsAndToolHistogramPerModel()
    {
        var store = new InsightsStore();
        for (var i = 0; i < 3; i++)
        {
            store.Add(Sample() with
            {
                Savings = [new ShadowSaving("compact", 100, 0.001m), new ShadowSaving("dedupe", 0, 0m)],
                DeclaredTools = 20, ToolTokens = 500, ToolUsd = 0.002m, CalledTools = ["a", "b"],
            });
        }

        var snapshot = store.Snapshot("t")!;
        var model = Assert.Single(snapshot.Models);
        Assert.Equal(3, model.Samples);
        Assert.Equal(0.03m, model.CostUsd);
        Assert.Equal(new StageObservation(300, 0.003m, 3), model.Savings["compact"]);
        Assert.Equal(new StageObservation(0, 0m, 0), model.Savings["dedupe"]);
        Assert.Equal(new DeclaredToolsObservation(3, 1500, 0.006m), model.DeclaredTools[20]);
        Assert.Equal(["a", "b"], snapshot.CalledTools);
        Assert.Null(store.Snapshot("other"));
    }

    [Fact]
    public void Add_AnswersKeepTheLastWindowOnly()
    {
        var store = new InsightsStore();
        for (var i = 0; i < AdaptiveOutputCaps.Window + 10; i++)
        {
            store.Add(Sample() with { OutputTokens = i, MaxTokens = 4000 });
        }

        var answers = store.Snapshot("t")!.Models[0].Answers;
        Assert.Equal(AdaptiveOutputCaps.Window, answers.Count);
        Assert.DoesNotContain(answers, a => a.OutputTokens < 10); // the oldest ten were overwritten
    }

    [Fact]
    public void Add_PrefixSeenAgainWithinLifetime_IsARepeatAfterwardsAWrite()
    {
        var store = new InsightsStore();
        var prefix = new PrefixObservation(Hash: 42, Tokens: 2000, CachedReadTokens: 0, ReadSavingPerMillion: 2.7m, WritePremiumPerMillion: 0.75m);
        store.Add(Sample(at: T0) with { Prefix = prefix });                                   // first: a write
        store.Add(Sample(at: T0.AddMinutes(4)) with { Prefix = prefix });                     // repeat, all missed
        store.Add(Sample(at: T0.AddMinutes(5)) with { Prefix = prefix with { CachedReadTokens = 1500 } }); // repeat, 500 missed
        store.Add(Sample(at: T0.AddMinutes(11)) with { Prefix = prefix });                    // expired: a write again

        var cache = store.Snapshot("t")!.Models[0].PromptCache;
        Assert.Equal(4, cache.Samples);
        Assert.Equal(2, cache.Repeats);
        Assert.Equal(2, cache.Writes);
        Assert.Equal(2500, cache.MissedTokens);
        Assert.Equal(2500 * 2.7m / 1_000_000m, cache.MissedUsd);
        Assert.Equal(2 * 2000 * 0.75m / 1_000_000m, cache.WritePremiumUsd);
    }

    [Fact]
    public void Add_BoundedTeamsModelsAndCalledTools()
    {
        var store = new InsightsStore(maxTeams: 2);
        Assert.True(store.Add(Sample("a")));
        Assert.True(store.Add(Sample("b")));
        Assert.False(store.Add(Sample("c")));
        Assert.True(store.Add(Sample("a")));
        Assert.Equal(2, store.TeamCount);

        for (var m = 0; m < InsightsStore.MaxModelsPerTeam + 5; m++)
        {
            store.Add(Sample("a", "model-" + m) with { CalledTools = [.. Enumerable.Range(0, 20).Select(i => $"tool-{m}-{i}")] });
        }

        var snapshot = store.Snapshot("a")!;
        Assert.Equal(InsightsStore.MaxModelsPerTeam, snapshot.Models.Count);
        Assert.True(snapshot.CalledTools.Count <= InsightsStore.MaxCalledTools);
    }

    [Fact]
    public void ExportThroughJson_RestoreIntoANewStore_SameObservations()
    {
        var store = new InsightsStore();
        for (var i = 0; i < AdaptiveOutputCaps.Window + 3; i++)
        {
            store.Add(Sample(at: T0.AddSeconds(i)) with
            {
                Savings = [new ShadowSaving("compact", 10, 0.0001m)],
                DeclaredTools = 20 + (i % 2), ToolTokens = 400, ToolUsd = 0.001m, CalledTools = ["a"],
                OutputTokens = i, MaxTokens = 4000, OutputPricePerMillion = 10m,
                Prefix = new PrefixObservation(7, 2000, 0, 2.7m, 0.75m),
            });
        }

        var json = System.Text.Json.JsonSerializer.Serialize(store.Export(), new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web));
        var restored = new InsightsStore();
        restored.Restore(System.Text.Json.JsonSerializer.Deserialize<List<TeamObservations>>(json, new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web))!);

        var a = store.Snapshot("t")!.Models[0];
        var b = restored.Snapshot("t")!.Models[0];
        Assert.Equal(a.Samples, b.Samples);
        Assert.Equal(a.CostUsd, b.CostUsd);
        Assert.Equal(a.Savings["compact"], b.Savings["compact"]);
        Assert.Equal(a.DeclaredTools.OrderBy(d => d.Key), b.DeclaredTools.OrderBy(d => d.Key));
        Assert.Equal(a.Answers, b.Answers); // oldest first, the newest window kept
        Assert.Equal(3, b.Answers[0].OutputTokens);
        Assert.Equal(a.PromptCache, b.PromptCache);
        Assert.Equal(["a"], restored.Snapshot("t")!.CalledTools);

        // Restoring adds to what a store already has (samples taken before the file was read are kept).
        restored.Restore(store.Export());
        Assert.Equal(2 * a.Samples, restored.Snapshot("t")!.Models[0].Samples);
    }
}
