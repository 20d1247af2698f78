using TokenGateway.Core.Models;

namespace TokenGateway.Core.Budgets;

/// <summary>What admission needs to know about one request.</summary>
public sealed record AdmissionRequest
{
    /// <summary>The resolved policy of the caller's team and key.</summary>
    public required EffectivePolicy Policy { get; init; }

    /// <summary>The routed model (prices, <see cref="ModelCard.MaxOutputTokens"/>).</summary>
    public required ModelCard Model { get; init; }

    /// <summary>The model name as the client sent it (an alias, say), checked against allow/deny too.</summary>
    public string? RequestedModel { get; init; }

    /// <summary>Counted input tokens (pre-flight, after optimization if it ran before admission).</summary>
    public required int InputTokens { get; init; }

    /// <summary>The client's <c>max_tokens</c> (or <c>max_completion_tokens</c>/<c>max_output_tokens</c>), if sent.</summary>
    public int? RequestedMaxTokens { get; init; }

    /// <summary>
    /// The adaptive output cap learned for this team and model (<see cref="AdaptiveOutputCaps"/>), if the policy enables
    /// it and it has warmed up: lowers <c>max_tokens</c> like the policy cap (a smaller client value stands).
    /// </summary>
    public int? AdaptiveMaxTokens { get; init; }

    /// <summary>Completions requested (OpenAI chat's <c>n</c>); each may use the whole output cap, so all are reserved.</summary>
    public int Choices { get; init; } = 1;
}
