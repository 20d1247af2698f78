using TokenGateway.Core.Metering;

namespace TokenGateway.Core.Optimization;

/// <summary>Output-token limits from the team policy plus the tokens reserved for the answer when budgeting input.</summary>
/// <param name="DefaultMaxTokens">Set when the client sent no output cap.</param>
/// <param name="CapMaxTokens">Upper bound for the client's output cap (the budget clamp may lower it further).</param>
/// <param name="ReservedOutputTokens">Output tokens kept free in the context window; 0 = derive from the request.</param>
public readonly record struct OutputLimits(int? DefaultMaxTokens, int? CapMaxTokens, int ReservedOutputTokens);

/// <summary>What the pipeline did: prompt tokens as received and as sent, and what each stage saved.</summary>
public sealed record OptimizationResult(int TokensReceived, int TokensSent, IReadOnlyList<StageSaving> Stages)
{
    /// <summary>Tokens saved in total (received − sent).</summary>
    public int TokensSaved => TokensReceived - TokensSent;

    /// <summary>
    /// <see cref="TokensSent"/> split by part of the prompt, when the pipeline counted the body (it changed, or no
    /// received count was given); null when the caller's received count stands for the unchanged body.
    /// </summary>
    public TokenAnatomy? AnatomySent { get; init; }
}

/// <summary>Stage names as reported in <see cref="StageSaving.Name"/>, the ledger and the dry-run endpoint.</summary>
public static class OptimizationStages
{
    /// <summary>Tool-definition selection.</summary>
    public const string Tools = "tools";
    /// <summary>History trimming.</summary>
    public const string Trim = "trim";
    /// <summary>Lossless compaction.</summary>
    public const string Compact = "compact";
    /// <summary>Verbatim de-duplication.</summary>
    public const string Dedupe = "dedupe";
    /// <summary>Curated retrieved context.</summary>
    public const string Curate = "curate";
    /// <summary>Prompt-cache breakpoints.</summary>
    public const string CacheHints = "cache_hints";
    /// <summary>Output cap.</summary>
    public const string OutputCap = "output_cap";
}
