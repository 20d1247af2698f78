using Microsoft.Extensions.Configuration;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tests.Fixtures;

namespace TokenGateway.Core.Tests.Metering;

public sealed class ModelCatalogFileTests
{
    private static readonly string[] _required =
    [
        "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano",
        "o1", "o3", "o3-mini", "o4-mini", "gpt-4-turbo", "gpt-4", "gpt-3.5-turbo",
        "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
        "claude-opus-4-1", "claude-opus-4", "claude-sonnet-4-5", "claude-sonnet-4", "claude-haiku-4-5", "claude-3-5-haiku",
    ];

    [Fact]
    public void CatalogJson_EveryModel_IsPricedWithSaneLimits()
    {
        var catalog = Load();

        foreach (var card in catalog.Models)
        {
            Assert.True(card.Prices.IsPriced, $"{card.Name} has no input/output price");
            Assert.True(card.Prices.Input > 0, $"{card.Name} input price must be positive");
            Assert.True(card.Kind == ModelKind.Embedding || card.Prices.Output > 0, $"{card.Name} output price must be positive");
            Assert.True(card.Prices.CachedInput is null || card.Prices.CachedInput <= card.Prices.Input, $"{card.Name} cached price above input");
            Assert.Contains(card.Provider, new[] { "openai", "anthropic", "gemini" }); // the shipped providers.json (gemini: issue #16)
            Assert.True(card.ContextWindow >= card.MaxOutputTokens && card.ContextWindow > 0, $"{card.Name} context window");
            Assert.Contains(card.Tokenizer, new[] { "o200k_base", "cl100k_base", "claude" });
        }
    }

    [Theory]
    [InlineData("gemini-2.5-flash", 0.30, 2.50, 0.03)]
    [InlineData("gemini-2.5-flash-lite", 0.10, 0.40, 0.01)]
    public void CatalogJson_GeminiModels_PricedAsGooglesPricingPage(string name, double input, double output, double cached)
    {
        // Google's Gemini Developer API pricing page, paid tier, prompts <= 200k tokens (docs/configuration.md cites it).
        Assert.True(Load().TryResolve(name, out var card));
        Assert.Equal("gemini", card.Provider);
        Assert.Equal((decimal)input, card.Prices.Input);
        Assert.Equal((decimal)output, card.Prices.Output);
        Assert.Equal((decimal)cached, card.Prices.CachedInput);
    }

    [Fact]
    public void CatalogJson_RequiredModels_AllPresent()
    {
        var catalog = Load();

        Assert.All(_required, name => Assert.True(catalog.TryResolve(name, out _), $"{name} missing"));
    }

    [Theory]
    [InlineData("claude-sonnet-4-5-20250929", "claude-sonnet-4-5")]
    [InlineData("claude-sonnet-4-5-latest", "claude-sonnet-4-5")]
    [InlineData("claude-3-5-haiku-latest", "claude-3-5-haiku")]
    [InlineData("claude-opus-4-0", "claude-opus-4")]
    [InlineData("gpt-4o-2024-08-06", "gpt-4o")]
    [InlineData("o4-mini-2025-04-16", "o4-mini")]
    public void CatalogJson_DatedAndLatestAliases_ResolveToCanonicalName(string alias, string canonical)
    {
        Assert.True(Load().TryResolve(alias, out var card));
        Assert.Equal(canonical, card.Name);
    }

    [Fact]
    public void CatalogJson_AnthropicModels_HaveCacheWritePricesAndMinimums()
    {
        var anthropic = Load().Models.Where(m => m.Provider == "anthropic").ToList();

        Assert.Equal(6, anthropic.Count);
        Assert.All(anthropic, card =>
        {
            Assert.Equal("claude", card.Tokenizer);
            Assert.Equal(card.Prices.Input * 1.25m, card.Prices.CacheWrite5m);
            Assert.Equal(card.Prices.Input * 2m, card.Prices.CacheWrite1h);
            Assert.Equal(card.Prices.Input / 10m, card.Prices.CachedInput);
            Assert.Contains(card.CacheMinTokens, new[] { 1024, 2048, 4096 });
        });
    }

    [Fact]
    public void CatalogJson_Embeddings_AreEmbeddingKindOnCl100k()
    {
        var embeddings = Load().Models.Where(m => m.Name.StartsWith("text-embedding", StringComparison.Ordinal)).ToList();

        Assert.Equal(3, embeddings.Count);
        Assert.All(embeddings, card => Assert.Equal((ModelKind.Embedding, "cl100k_base"), (card.Kind, card.Tokenizer)));
    }

    [Fact]
    public void CatalogJson_CostOfKnownUsage_MatchesPublishedPrices()
    {
        var catalog = Load();
        var calculator = new CostCalculator(new PricingOptions());
        catalog.TryResolve("gpt-4o", out var gpt4o);
        catalog.TryResolve("claude-sonnet-4-5", out var sonnet);

        Assert.True(calculator.TryCalculate(gpt4o, new TokenUsage(1_000_000, 1_000_000, CachedInputTokens: 500_000), out var openAiCost));
        Assert.True(calculator.TryCalculate(sonnet, new TokenUsage(4_000_000, 1_000_000, CachedInputTokens: 1_000_000, CacheWriteTokens: 2_000_000, CacheWrite1hTokens: 1_000_000), out var anthropicCost));

        Assert.Equal(0.5m * 2.50m + 0.5m * 1.25m + 10m, openAiCost);
        Assert.Equal(3m + 0.30m + 3.75m + 6m + 15m, anthropicCost);
    }

    internal static ModelCatalog Load()
    {
        var configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(FixtureFiles.RepoRoot, "src", "TokenGateway", "catalog.json"), optional: false, reloadOnChange: false)
            .Build();
        var options = new ModelCatalogOptions();
        configuration.GetSection(ModelCatalogOptions.SectionName).Bind(options.Models);
        return options.Build();
    }
}
