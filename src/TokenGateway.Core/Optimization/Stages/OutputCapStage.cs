using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Optimization.Stages;

/// <summary>
/// Stage 6: applies the policy's <c>max_tokens</c> default (client sent none) and cap through
/// <see cref="MaxTokensRule"/>, the same decision admission makes. Saves no input tokens.
/// </summary>
internal sealed class OutputCapStage : IOptimizationStage
{
    public string Name => OptimizationStages.OutputCap;

    public bool IsEnabled(OptimizationPolicy policy) => policy.OutputCap.Enabled;

    public int Apply(StageContext context)
    {
        var request = context.Request;
        var decision = MaxTokensRule.Decide(request.MaxTokens, context.Limits.DefaultMaxTokens, context.Limits.CapMaxTokens, context.Model);
        if (decision.ToSend is { } value && value > 0 && value != request.MaxTokens)
        {
            request.SetMaxTokens(value);
        }

        return 0;
    }
}
