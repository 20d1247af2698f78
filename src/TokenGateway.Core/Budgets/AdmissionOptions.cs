namespace TokenGateway.Core.Budgets;

/// <summary>Configuration section <c>Budgets</c>: how admission reserves and when it lowers <c>max_tokens</c>.</summary>
public sealed class AdmissionOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Budgets";

    /// <summary>Lower <c>max_tokens</c> to what the budget can afford instead of refusing (default true).</summary>
    public bool LowerMaxTokens { get; set; } = true;

    /// <summary>Fewest output tokens worth forwarding when lowering (default 256; never more than was requested).</summary>
    public int MinimumOutputTokens { get; set; } = 256;

    /// <summary>Alternative minimum as a fraction of the requested <c>max_tokens</c>; the larger minimum wins (default 0.1).</summary>
    public double MinimumOutputFraction { get; set; } = 0.1;

    /// <summary>How long an unsettled reservation lives before the reaper releases it (default 20 min, above the 15 min request ceiling).</summary>
    public TimeSpan ReservationTtl { get; set; } = TimeSpan.FromMinutes(20);

    /// <summary>How often the in-process reaper runs (default 30 s).</summary>
    public TimeSpan ReapInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Most completions (<c>n</c>) one request may ask for (default 16; OpenAI allows 128). Each is reserved at the
    /// full output cap, so this also bounds one request's share of a budget; above it → 400 <c>invalid_request</c>.
    /// </summary>
    public int MaxChoices { get; set; } = 16;
}
