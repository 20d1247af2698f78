namespace TokenGateway.Core.Insights;

/// <summary>
/// What the shadow evaluation learned from one sampled request (after it was answered). Everything the
/// recommendations need is here; the request body is not kept.
/// </summary>
public sealed record InsightSample
{
    /// <summary>The caller's team.</summary>
    public required string TeamId { get; init; }

    /// <summary>The canonical model the request was priced with.</summary>
    public required string Model { get; init; }

    /// <summary>When the request was answered.</summary>
    public required DateTimeOffset At { get; init; }

    /// <summary>What the request cost (the ledger's <c>costUsd</c>): the denominator of every share.</summary>
    public required decimal CostUsd { get; init; }

    /// <summary>Input tokens as received.</summary>
    public int InputTokens { get; init; }

    /// <summary>
    /// Input tokens the stages that are off for the team would have saved, by stage name (<c>trim</c>, <c>compact</c>,
    /// <c>dedupe</c>, <c>curate</c>, and <see cref="InsightKinds.StaleToolResults"/>), each with its value at the model's
    /// input price. Empty when every stage is on.
    /// </summary>
    public IReadOnlyList<ShadowSaving> Savings { get; init; } = [];

    /// <summary>Function tools declared (0 when none, or when the team's tool selection is on).</summary>
    public int DeclaredTools { get; init; }

    /// <summary>Tokens of those tool definitions as billed, and their value at the input price.</summary>
    public int ToolTokens { get; init; }

    /// <summary><see cref="ToolTokens"/> at the model's input price.</summary>
    public decimal ToolUsd { get; init; }

    /// <summary>Names of the tools the conversation has called (assistant tool calls in the request's history).</summary>
    public IReadOnlyList<string> CalledTools { get; init; } = [];

    /// <summary>Output tokens per choice of a complete answer; null when not observed (adaptive cap on, or not a chat answer).</summary>
    public int? OutputTokens { get; init; }

    /// <summary>The <c>max_tokens</c> the request was forwarded with (the client's or the policy default); null when none.</summary>
    public int? MaxTokens { get; init; }

    /// <summary>Choices billed (<c>n</c>).</summary>
    public int Choices { get; init; } = 1;

    /// <summary>Output price per million tokens of the model.</summary>
    public decimal OutputPricePerMillion { get; init; }

    /// <summary>The prompt's static prefix (tools + system) when it could be cached and the team does not place cache hints.</summary>
    public PrefixObservation? Prefix { get; init; }
}

/// <summary>Tokens one stage would have saved on a sampled request, and their value at the model's input price.</summary>
public readonly record struct ShadowSaving(string Stage, int Tokens, decimal Usd);

/// <summary>
/// The static prefix of an Anthropic prompt (tools, then system) whose length reaches the model's cache minimum, with
/// what the request actually read from the provider's cache.
/// </summary>
/// <param name="Hash">Hash of the prefix's blocks (the same prefix → the same hash).</param>
/// <param name="Tokens">Its tokens.</param>
/// <param name="CachedReadTokens">Input tokens the provider billed as cache reads for this request.</param>
/// <param name="ReadSavingPerMillion">Input price − cache-read price, per million tokens.</param>
/// <param name="WritePremiumPerMillion">Cache-write price − input price, per million tokens (what creating the entry costs extra).</param>
public sealed record PrefixObservation(long Hash, int Tokens, int CachedReadTokens, decimal ReadSavingPerMillion, decimal WritePremiumPerMillion);

/// <summary>Recommendation kinds (the <c>kind</c> of each item in the insights response).</summary>
public static class InsightKinds
{
    /// <summary>(a) A content stage that is off and would save.</summary>
    public const string Stage = "stage";

    /// <summary>(b) <c>max_tokens</c> far above what answers use.</summary>
    public const string MaxTokens = "maxTokens";

    /// <summary>(c) Many more tools declared than ever called.</summary>
    public const string Tools = "tools";

    /// <summary>(d) A long prefix repeated without reading the provider's prompt cache.</summary>
    public const string PromptCache = "promptCache";

    /// <summary>(e) Spend in tool results: <c>trim.staleToolResults</c>.</summary>
    public const string StaleToolResults = "staleToolResults";
}
