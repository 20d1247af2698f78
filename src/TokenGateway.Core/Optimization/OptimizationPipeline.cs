using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization.Stages;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Optimization;

/// <summary>
/// Runs the optimization stages in order — tools → trim → compact → dedupe → curate → cache hints → output cap — rewriting
/// <see cref="LlmRequest.Body"/> in place. Thread-safe and stateless: register once as a singleton.
/// </summary>
/// <remarks>
/// Every stage is deterministic and idempotent and never increases the token count: each rewrite is counted with
/// the target model's tokenizer and kept only when it is smaller. A request no stage changed stays unmodified and is
/// forwarded byte-identical. Prompt tokens are counted once on entry and once more on exit, only if modified.
/// </remarks>
public sealed class OptimizationPipeline
{
    private static readonly IOptimizationStage[] _stages =
    [
        new ToolSelectionStage(),
        new TrimStage(),
        new CompactStage(),
        new DedupeStage(),
        new CurateStage(),
        new CacheHintStage(),
        new OutputCapStage(),
    ];

    private readonly ITokenizerRegistry _tokenizers;
    private readonly IRequestTokenCounter _counter;

    /// <summary>Creates the pipeline over the shared tokenizers and the provider-faithful request counter.</summary>
    public OptimizationPipeline(ITokenizerRegistry tokenizers, IRequestTokenCounter counter)
    {
        ArgumentNullException.ThrowIfNull(tokenizers);
        ArgumentNullException.ThrowIfNull(counter);
        _tokenizers = tokenizers;
        _counter = counter;
    }

    /// <summary>Optimizes <paramref name="request"/> for <paramref name="model"/> under <paramref name="policy"/>.</summary>
    /// <param name="request">The parsed request; rewritten in place.</param>
    /// <param name="model">The target model (its tokenizer counts the savings).</param>
    /// <param name="policy">Stage switches and options.</param>
    /// <param name="limits">Output defaults and caps.</param>
    /// <param name="tokensReceived">The pre-flight count when the caller already has it (the gateway counts once).</param>
    public OptimizationResult Run(LlmRequest request, ModelCard model, OptimizationPolicy policy, OutputLimits limits, int? tokensReceived = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(policy);

        TokenAnatomy? anatomy = null;
        int received;
        if (tokensReceived is { } known)
        {
            received = known;
        }
        else
        {
            received = _counter.CountInputTokens(request, model, out var counted);
            anatomy = counted;
        }

        if (request.Dialect is LlmDialect.OpenAIEmbeddings or LlmDialect.AnthropicCountTokens || !AnyEnabled(policy))
        {
            return new OptimizationResult(received, received, []) { AnatomySent = anatomy };
        }

        var context = new StageContext(request, model, policy, limits, _tokenizers, _counter, received);
        var savings = new List<StageSaving>(_stages.Length);
        ProvenNoOps? noOps = null;
        foreach (var stage in _stages)
        {
            if (stage.IsEnabled(policy))
            {
                var saved = ProvenNoOp(stage, request, policy, ref noOps) ? 0 : stage.Apply(context);
                savings.Add(new StageSaving(stage.Name, saved));
            }
        }

        var sent = received;
        if (request.IsModified)
        {
            sent = _counter.CountInputTokens(request, model, out var counted);
            anatomy = counted;
        }

        return new OptimizationResult(received, sent, savings) { AnatomySent = anatomy };
    }

    /// <summary>
    /// Off only in the equivalence tests, which compare every output with and without the pre-check.
    /// </summary>
    internal bool SkipProvenNoOps { get; init; } = true;

    /// <summary>
    /// True when <see cref="NoOpScan"/> proved, on the parsed document of a still untouched request, that
    /// <paramref name="stage"/> cannot change it: the stage would return 0 and leave the body as it is, so it is not run
    /// (no tree, no UTF-16 copies of the texts). The scan runs at most once per request, when first needed.
    /// </summary>
    private bool ProvenNoOp(IOptimizationStage stage, LlmRequest request, OptimizationPolicy policy, ref ProvenNoOps? noOps)
    {
        var flag = stage switch
        {
            CompactStage => ProvenNoOps.Compact,
            DedupeStage => ProvenNoOps.Dedupe,
            _ => ProvenNoOps.None,
        };
        if (flag == ProvenNoOps.None || !SkipProvenNoOps || !request.TryGetUntouchedRoot(out var root))
        {
            return false;
        }

        noOps ??= NoOpScan.Scan(root, policy.Dedupe.MinTokens);
        return (noOps.Value & flag) != 0;
    }

    private bool AnyEnabled(OptimizationPolicy policy)
    {
        foreach (var stage in _stages)
        {
            if (stage.IsEnabled(policy))
            {
                return true;
            }
        }

        return false;
    }
}
