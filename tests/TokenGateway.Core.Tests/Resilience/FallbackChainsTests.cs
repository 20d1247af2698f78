using TokenGateway.Core.Models;
using TokenGateway.Core.Resilience;

namespace TokenGateway.Core.Tests.Resilience;

public sealed class FallbackChainsTests
{
    private static readonly ModelCatalog Catalog = new(
    [
        Card("gpt-4o", "openai", fallbacks: ["gpt-4.1", "gpt-4o-mini"], aliases: ["gpt-4o-2024-08-06"]),
        Card("gpt-4.1", "openai", fallbacks: ["gpt-4.1-mini"]),
        Card("gpt-4o-mini", "openai"),
        Card("gpt-4.1-mini", "openai"),
        Card("gpt-4.1-nano", "openai"),
        Card("claude-sonnet-4", "anthropic", fallbacks: ["claude-haiku-4"]),
        Card("claude-haiku-4", "anthropic"),
        Card("text-embedding-3-small", "openai", kind: ModelKind.Embedding),
        Card("loop-a", "openai", fallbacks: ["loop-b"]),
        Card("loop-b", "openai", fallbacks: ["loop-a"]),
    ]);

    [Fact]
    public void Resolve_CatalogueChain_ExpandsDepthFirstInOrder()
    {
        var chain = Resolve("gpt-4o");

        Assert.Equal(["gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini"], chain);
    }

    [Fact]
    public void Resolve_TeamChain_ReplacesTheCatalogueChainForThatModel()
    {
        var team = new Dictionary<string, IReadOnlyList<string>> { ["GPT-4O-2024-08-06"] = ["gpt-4.1-nano"] };

        Assert.Equal(["gpt-4.1-nano"], Resolve("gpt-4o", team));
    }

    [Fact]
    public void Resolve_ModelsTheTeamMayNotUse_AreSkipped()
    {
        var chain = Resolve("gpt-4o", isAllowed: m => m != "gpt-4.1");

        // gpt-4.1 itself is skipped, but its own chain still applies (the team may use gpt-4.1-mini).
        Assert.Equal(["gpt-4.1-mini", "gpt-4o-mini"], chain);
    }

    [Fact]
    public void Resolve_CrossDialectUnknownAndOtherKinds_AreSkipped()
    {
        var team = new Dictionary<string, IReadOnlyList<string>>
        {
            ["gpt-4o"] = ["claude-sonnet-4", "no-such-model", "text-embedding-3-small", "gpt-4o-mini"],
        };

        Assert.Equal(["gpt-4o-mini"], Resolve("gpt-4o", team));
    }

    [Fact]
    public void Resolve_Cycle_TerminatesWithoutRepeats()
    {
        Assert.Equal(["loop-b"], Resolve("loop-a"));
    }

    [Fact]
    public void Resolve_IsBoundedByMaxLength()
    {
        Assert.Equal(["gpt-4.1", "gpt-4.1-mini"], Resolve("gpt-4o", maxLength: 2));
        Assert.Empty(Resolve("gpt-4o", maxLength: 0));
    }

    [Fact]
    public void Validate_WithCatalogue_RefusesUnknownKindSelfAndCycles_AcceptsCrossDialect()
    {
        var chains = new Dictionary<string, IReadOnlyList<string>>
        {
            ["gpt-4o"] = ["claude-sonnet-4", "missing", "text-embedding-3-small", "gpt-4o", "gpt-4.1", "gpt-4.1"],
            ["loop-a"] = ["loop-b"],
            ["loop-b"] = ["loop-a"],
        };
        var errors = new List<SettingError>();

        FallbackChains.Validate(chains, Catalog, 5, m => $"Models:{m}:Fallbacks", errors);

        Assert.DoesNotContain(errors, e => e.Field == "Models:gpt-4o:Fallbacks[0]"); // another API: translated (issue #16)
        Assert.Contains(errors, e => e.Field == "Models:gpt-4o:Fallbacks[1]" && e.Message.Contains("not in the catalogue", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Field == "Models:gpt-4o:Fallbacks[2]" && e.Message.Contains("Embedding", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Field == "Models:gpt-4o:Fallbacks[3]" && e.Message.Contains("itself", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Field == "Models:gpt-4o:Fallbacks[5]" && e.Message.Contains("twice", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Field == "Models:gpt-4o:Fallbacks" && e.Message.Contains("At most 5", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Field == "Models:loop-a:Fallbacks" && e.Message.Contains("loop-a → loop-b → loop-a", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_ValidChains_NoErrors()
    {
        var chains = Catalog.Models.Where(m => m.Fallbacks.Count > 0 && !m.Name.StartsWith("loop", StringComparison.Ordinal))
            .ToDictionary(m => m.Name, m => m.Fallbacks);
        var errors = new List<SettingError>();

        FallbackChains.Validate(chains, Catalog, 3, m => m, errors);

        Assert.Empty(errors);
    }

    private static string[] Resolve(string model, IReadOnlyDictionary<string, IReadOnlyList<string>>? team = null, Func<string, bool>? isAllowed = null, int maxLength = 5)
    {
        Assert.True(Catalog.TryResolve(model, out var card));
        return FallbackChains.Resolve(card, Catalog, team, isAllowed ?? (_ => true), DialectOf, maxLength).Select(c => c.Name).ToArray();
    }

    private static string? DialectOf(ModelCard card) => card.Provider;

    internal static ModelCard Card(string name, string provider, string[]? fallbacks = null, string[]? aliases = null, ModelKind kind = ModelKind.Chat) => new()
    {
        Name = name,
        Provider = provider,
        Fallbacks = fallbacks ?? [],
        Aliases = aliases ?? [],
        Kind = kind,
    };
}
