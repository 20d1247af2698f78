namespace TokenGateway.Core.Optimization.Stages;

/// <summary>Stage 6: applies the policy's <c>max_tokens</c> default (client sent none) and cap. Saves no input tokens.</summary>
internal sealed class OutputCapStage : IOptimizationStage
{
    public string Name => OptimizationStages.OutputCap;

    public bool IsEnabled(OptimizationPolicy policy) => policy.OutputCap.Enabled;

    public int Apply(StageContext context)
    {
        var request = context.Request;
        var limits = context.Limits;
        var current = request.MaxTokens;
        var target = current ?? limits.DefaultMaxTokens;
        if (target is { } t && limits.CapMaxTokens is { } cap && t > cap)
        {
            target = cap;
        }

        if (target is { } value && value > 0 && value != current)
        {
            request.SetMaxTokens(value);
        }

        return 0;
    }
}
