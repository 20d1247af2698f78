using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Optimization;

/// <summary>What one stage sees: the request being rewritten, the target model and policy, and token counting.</summary>
internal sealed class StageContext(
    LlmRequest request, ModelCard model, OptimizationPolicy policy, OutputLimits limits,
    ITokenizerRegistry tokenizers, IRequestTokenCounter counter, int tokensReceived)
{
    public LlmRequest Request { get; } = request;

    public ModelCard Model { get; } = model;

    public OptimizationPolicy Policy { get; } = policy;

    public OutputLimits Limits { get; } = limits;

    public IRequestTokenCounter Counter { get; } = counter;

    /// <summary>Prompt tokens of the request as received (counted once by the pipeline).</summary>
    public int TokensReceived { get; } = tokensReceived;

    /// <summary>
    /// Exact prompt tokens of the request as it stands now: stages that recount the whole request (tools, trim) update
    /// it so a later stage budgets against what is left, not against what arrived.
    /// </summary>
    public int TokensCurrent { get; set; } = tokensReceived;

    // Stages count the same strings repeatedly (a slot before/after, candidates); memoize within one request.
    private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

    /// <summary>Counts text with the target model's tokenizer (memoized for the lifetime of this request).</summary>
    public int Count(string text)
    {
        if (text.Length < 64)
        {
            return tokenizers.Count(Model.Tokenizer, text);
        }

        if (!_counts.TryGetValue(text, out var count))
        {
            count = tokenizers.Count(Model.Tokenizer, text); // per line chunk through TokenCountCache (JsonTokenText.CountText)
            _counts[text] = count;
        }

        return count;
    }
}

/// <summary>One optimization stage: rewrites the request in place and returns the tokens it saved (≥ 0).</summary>
internal interface IOptimizationStage
{
    string Name { get; }

    bool IsEnabled(OptimizationPolicy policy);

    int Apply(StageContext context);
}
