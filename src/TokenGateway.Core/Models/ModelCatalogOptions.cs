using TokenGateway.Core.Resilience;

namespace TokenGateway.Core.Models;

/// <summary>Configuration section <c>Models</c>: model name → card (the name key becomes <see cref="ModelCard.Name"/>).</summary>
public sealed class ModelCatalogOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Models";

    /// <summary>Cards keyed by model name.</summary>
    public Dictionary<string, ModelCardOptions> Models { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Builds the catalogue from the configured cards.</summary>
    public ModelCatalog Build() => new(Models.Select(kv => kv.Value.ToCard(kv.Key)));
}

/// <summary>The bindable shape of one <see cref="ModelCard"/>.</summary>
public sealed class ModelCardOptions
{
    /// <summary>See <see cref="ModelCard.Provider"/>.</summary>
    public string Provider { get; set; } = "openai";
    /// <summary>See <see cref="ModelCard.Aliases"/>.</summary>
    public List<string> Aliases { get; set; } = [];
    /// <summary>See <see cref="ModelCard.Tokenizer"/>.</summary>
    public string Tokenizer { get; set; } = "o200k_base";
    /// <summary>See <see cref="ModelCard.ContextWindow"/>.</summary>
    public int ContextWindow { get; set; } = 128_000;
    /// <summary>See <see cref="ModelCard.MaxOutputTokens"/>.</summary>
    public int MaxOutputTokens { get; set; } = 16_384;
    /// <summary>See <see cref="ModelCard.SupportsStructuredOutput"/>.</summary>
    public bool SupportsStructuredOutput { get; set; } = true;
    /// <summary>See <see cref="ModelCard.CacheMinTokens"/>.</summary>
    public int CacheMinTokens { get; set; } = 1024;
    /// <summary>See <see cref="ModelCard.Kind"/>.</summary>
    public ModelKind Kind { get; set; } = ModelKind.Chat;
    /// <summary>Input price per million tokens.</summary>
    public decimal? InputPrice { get; set; }
    /// <summary>Output price per million tokens.</summary>
    public decimal? OutputPrice { get; set; }
    /// <summary>Cached-input price per million tokens.</summary>
    public decimal? CachedInputPrice { get; set; }
    /// <summary>5-minute cache-write price per million tokens.</summary>
    public decimal? CacheWrite5mPrice { get; set; }
    /// <summary>1-hour cache-write price per million tokens.</summary>
    public decimal? CacheWrite1hPrice { get; set; }
    /// <summary>See <see cref="ModelCard.Fallbacks"/>.</summary>
    public List<string> Fallbacks { get; set; } = [];
    /// <summary>See <see cref="ModelCard.Resilience"/>.</summary>
    public ResilienceOverrides? Resilience { get; set; }

    /// <summary>Converts to an immutable card named <paramref name="name"/>.</summary>
    public ModelCard ToCard(string name) => new()
    {
        Name = name,
        Provider = Provider,
        Aliases = Aliases.ToArray(),
        Tokenizer = Tokenizer,
        ContextWindow = ContextWindow,
        MaxOutputTokens = MaxOutputTokens,
        SupportsStructuredOutput = SupportsStructuredOutput,
        CacheMinTokens = CacheMinTokens,
        Kind = Kind,
        Fallbacks = Fallbacks.ToArray(),
        Resilience = Resilience,
        Prices = new ModelPrices
        {
            Input = InputPrice,
            Output = OutputPrice,
            CachedInput = CachedInputPrice,
            CacheWrite5m = CacheWrite5mPrice,
            CacheWrite1h = CacheWrite1hPrice,
        },
    };
}
