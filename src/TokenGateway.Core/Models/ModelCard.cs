using TokenGateway.Core.Resilience;

namespace TokenGateway.Core.Models;

/// <summary>Prices in USD per million tokens. Null means "not priced" (never treated as free).</summary>
public sealed record ModelPrices
{
    /// <summary>Uncached input tokens.</summary>
    public decimal? Input { get; init; }

    /// <summary>Output tokens (reasoning tokens included, as providers bill them).</summary>
    public decimal? Output { get; init; }

    /// <summary>Input tokens read from the provider's prompt cache; defaults to <see cref="Input"/> when unset.</summary>
    public decimal? CachedInput { get; init; }

    /// <summary>Anthropic cache writes with the default 5-minute TTL.</summary>
    public decimal? CacheWrite5m { get; init; }

    /// <summary>Anthropic cache writes with the 1-hour TTL.</summary>
    public decimal? CacheWrite1h { get; init; }

    /// <summary>True when both input and output are priced.</summary>
    public bool IsPriced => Input is not null && Output is not null;
}

/// <summary>What the gateway knows about one model: where it is served, how to count it and what it costs.</summary>
public sealed record ModelCard
{
    /// <summary>The canonical model name sent upstream.</summary>
    public required string Name { get; init; }

    /// <summary>The provider (YARP cluster id) that serves the model.</summary>
    public required string Provider { get; init; }

    /// <summary>Other names clients may use; resolved to <see cref="Name"/>.</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>Tokenizer encoding: <c>o200k_base</c>, <c>cl100k_base</c> or <c>claude</c> (calibrated estimate).</summary>
    public string Tokenizer { get; init; } = "o200k_base";

    /// <summary>Total context window in tokens.</summary>
    public int ContextWindow { get; init; } = 128_000;

    /// <summary>Largest output the model can produce.</summary>
    public int MaxOutputTokens { get; init; } = 16_384;

    /// <summary>Prices per million tokens.</summary>
    public ModelPrices Prices { get; init; } = new();

    /// <summary>True when the provider enforces strict JSON-schema structured outputs natively.</summary>
    public bool SupportsStructuredOutput { get; init; } = true;

    /// <summary>Minimum prompt length, in tokens, that the provider will cache (Anthropic cache_control minimum).</summary>
    public int CacheMinTokens { get; init; } = 1024;

    /// <summary>The kind of model: chat or embedding.</summary>
    public ModelKind Kind { get; init; } = ModelKind.Chat;

    /// <summary>Models tried, in order, after this model's deployments and keys are exhausted (<c>Models:{name}:Fallbacks</c>).</summary>
    public IReadOnlyList<string> Fallbacks { get; init; } = [];

    /// <summary>Resilience overrides for this model (<c>Models:{name}:Resilience</c>); null inherits the gateway defaults.</summary>
    public ResilienceOverrides? Resilience { get; init; }
}

/// <summary>What a model does.</summary>
public enum ModelKind
{
    /// <summary>Generates text (chat, responses, messages).</summary>
    Chat,
    /// <summary>Produces embeddings.</summary>
    Embedding,
}
