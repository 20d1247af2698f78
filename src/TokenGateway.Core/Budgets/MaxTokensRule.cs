using TokenGateway.Core.Models;

namespace TokenGateway.Core.Budgets;

/// <summary>
/// The one decision of a request's <c>max_tokens</c>: what to send upstream and the worst-case output that admission
/// reserves, from the client's value, the policy's <c>maxTokens</c> default and cap, and the model card.
/// </summary>
/// <remarks>
/// Admission (<see cref="AdmissionController"/>), the output-cap optimization stage (dry run and CLI, where admission
/// does not run) and structured output's schema ceiling all go through this type, so the three can never disagree.
/// The decision is idempotent: deciding again on a request whose <c>max_tokens</c> was already rewritten changes
/// nothing.
/// </remarks>
public static class MaxTokensRule
{
    /// <summary>Decides <c>max_tokens</c> for one request.</summary>
    /// <param name="requested">The client's <c>max_tokens</c> (or <c>max_completion_tokens</c>/<c>max_output_tokens</c>), if sent.</param>
    /// <param name="policyDefault">The policy's <c>maxTokens.default</c>, applied when the client sends none.</param>
    /// <param name="policyCap">The policy's <c>maxTokens.cap</c>; larger values are lowered to it.</param>
    /// <param name="model">The routed model: its <see cref="ModelCard.MaxOutputTokens"/> bounds the worst case.</param>
    public static MaxTokensDecision Decide(int? requested, int? policyDefault, int? policyCap, ModelCard model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Kind == ModelKind.Embedding)
        {
            return default; // no output tokens, nothing to send
        }

        var wanted = requested ?? policyDefault ?? model.MaxOutputTokens;
        var capped = false;
        if (policyCap is { } cap && wanted > cap)
        {
            wanted = cap;
            capped = true;
        }

        int? toSend = capped || (requested is null && policyDefault is not null) ? wanted : null;

        // The provider never produces more than the model's maximum, so that bounds the worst case.
        var worstCase = Math.Max(0, Math.Min(wanted, model.MaxOutputTokens));
        return new MaxTokensDecision(toSend, worstCase, capped);
    }

    /// <summary>
    /// A further ceiling (a schema that bounds its answer): the value to send when <paramref name="current"/> is absent
    /// or larger than <paramref name="ceiling"/>, else null (keep the current value).
    /// </summary>
    public static int? Lower(int? current, int ceiling) => current is { } value && value <= ceiling ? null : ceiling;
}

/// <summary>The outcome of <see cref="MaxTokensRule.Decide"/>.</summary>
/// <param name="ToSend">The value to write into the request; null when the client's value (or its absence) stands.</param>
/// <param name="WorstCase">Output tokens the request can produce at most (what admission reserves); 0 for embeddings.</param>
/// <param name="CappedByPolicy">True when the policy's cap lowered the value.</param>
public readonly record struct MaxTokensDecision(int? ToSend, int WorstCase, bool CappedByPolicy);
