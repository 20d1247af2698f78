using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Optimization.Stages;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Insights;

/// <summary>One answered request handed to the shadow evaluation (a copy of its body and what it cost).</summary>
public sealed record ShadowRequest
{
    /// <summary>The caller's team.</summary>
    public required string TeamId { get; init; }

    /// <summary>The client's dialect.</summary>
    public required LlmDialect Dialect { get; init; }

    /// <summary>The model card the request was priced and optimized with.</summary>
    public required ModelCard Model { get; init; }

    /// <summary>The body as the client sent it (a copy owned by the evaluation).</summary>
    public required ReadOnlyMemory<byte> Body { get; init; }

    /// <summary>The team's optimization policy resolved for this model and route (what production ran).</summary>
    public required OptimizationPolicy Policy { get; init; }

    /// <summary>The output limits production ran with.</summary>
    public OutputLimits Limits { get; init; }

    /// <summary>The billed usage.</summary>
    public TokenUsage Usage { get; init; }

    /// <summary>The ledger cost of the request.</summary>
    public decimal CostUsd { get; init; }

    /// <summary>Input tokens as received (the pre-flight count).</summary>
    public int TokensReceived { get; init; }

    /// <summary>The <c>max_tokens</c> forwarded; null when none.</summary>
    public int? SentMaxTokens { get; init; }

    /// <summary>Choices (<c>n</c>).</summary>
    public int Choices { get; init; } = 1;

    /// <summary>Observe the answer length for the output-cap recommendation (false when the team's adaptive cap is on).</summary>
    public bool ObserveOutput { get; init; }

    /// <summary>When the request was answered.</summary>
    public DateTimeOffset At { get; init; }

    /// <summary>
    /// The request's token anatomy from its ledger event (counted once, pre-flight, on the body as sent); when present,
    /// the tool-definition and static-prefix tokens are read from it instead of being counted again.
    /// </summary>
    public TokenAnatomy? Anatomy { get; init; }
}

/// <summary>
/// Evaluates one answered request in the shadow: parses a private copy of its body, runs the optimization pipeline
/// with the stages that are off for the team turned on, and measures what they would have saved; also reads the
/// tool set, the answer length and the cacheable prefix. Never touches the live request. Thread-safe, stateless.
/// </summary>
public sealed class ShadowEvaluator
{
    private readonly OptimizationPipeline _pipeline;
    private readonly IRequestTokenCounter _counter;
    private readonly CostCalculator _costs;

    /// <summary>Creates an evaluator over the gateway's pipeline, request counter and prices.</summary>
    public ShadowEvaluator(OptimizationPipeline pipeline, IRequestTokenCounter counter, CostCalculator costs)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(counter);
        ArgumentNullException.ThrowIfNull(costs);
        _pipeline = pipeline;
        _counter = counter;
        _costs = costs;
    }

    /// <summary>The content stages the shadow turns on when they are off (recommendation (a)).</summary>
    public static IReadOnlyList<string> ShadowStages { get; } = [OptimizationStages.Trim, OptimizationStages.Compact, OptimizationStages.Dedupe, OptimizationStages.Curate];

    /// <summary>What <paramref name="input"/> tells; null when its body does not parse or its model is not priced.</summary>
    public InsightSample? Evaluate(ShadowRequest input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!_costs.TryGetEffectivePrices(input.Model, out var prices) ||
            !LlmRequestParser.TryParse(input.Dialect, input.Body, out var request, out _) || request is null)
        {
            return null;
        }

        var policy = input.Policy;
        var received = input.TokensReceived > 0 ? input.TokensReceived : _counter.CountInputTokens(request, input.Model);

        // Observations on the request as sent by the client, before any shadow rewrite.
        var (declared, toolTokens, called) = policy.Enabled && policy.Tools.Enabled ? (0, 0, []) : ToolSet(request, input.Model, received, input.Anatomy);
        var prefix = policy.Enabled && policy.CacheHints.Enabled ? null : Prefix(request, input.Model, received, input.Usage, prices, input.Anatomy);

        var savings = new List<ShadowSaving>(ShadowStages.Count + 1);
        if (ShadowPolicy(policy) is { } shadow)
        {
            var result = _pipeline.Run(request, input.Model, shadow.Policy, input.Limits, received);
            foreach (var stage in result.Stages)
            {
                if (shadow.Stages.Contains(stage.Name))
                {
                    savings.Add(new ShadowSaving(stage.Name, stage.TokensSaved, Usd(stage.TokensSaved, prices.Input)));
                }
            }
        }

        if (StaleToolResultsOff(policy) && LlmRequestParser.TryParse(input.Dialect, input.Body, out var copy, out _) && copy is not null)
        {
            var result = _pipeline.Run(copy, input.Model, StaleOnly, input.Limits, received);
            var saved = result.Stages.Where(s => s.Name == OptimizationStages.Trim).Sum(s => s.TokensSaved);
            savings.Add(new ShadowSaving(InsightKinds.StaleToolResults, saved, Usd(saved, prices.Input)));
        }

        return new InsightSample
        {
            TeamId = input.TeamId,
            Model = input.Model.Name,
            At = input.At,
            CostUsd = input.CostUsd,
            InputTokens = received,
            Savings = savings,
            DeclaredTools = declared,
            ToolTokens = toolTokens,
            ToolUsd = Usd(toolTokens, prices.Input),
            CalledTools = called,
            OutputTokens = input.ObserveOutput && input.Model.Kind == ModelKind.Chat ? input.Usage.OutputTokens / Math.Max(1, input.Choices) : null,
            MaxTokens = input.SentMaxTokens,
            Choices = Math.Max(1, input.Choices),
            OutputPricePerMillion = prices.Output,
            Prefix = prefix,
        };
    }

    /// <summary>
    /// The policy the shadow runs: the team's, with the master switch and every stage of <see cref="ShadowStages"/>
    /// that is off turned on (with the team's options for it); stages that are on stay as they are. Null when nothing is off.
    /// </summary>
    public static (OptimizationPolicy Policy, HashSet<string> Stages)? ShadowPolicy(OptimizationPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var off = new HashSet<string>(StringComparer.Ordinal);
        var master = policy.Enabled;
        var shadow = policy with
        {
            Enabled = true,
            Tools = policy.Tools with { Enabled = master && policy.Tools.Enabled },
            Trim = On(master && policy.Trim.Enabled, OptimizationStages.Trim, policy.Trim, policy.Trim with { Enabled = true, StaleToolResults = null }),
            Compact = On(master && policy.Compact.Enabled, OptimizationStages.Compact, policy.Compact, policy.Compact with { Enabled = true }),
            Dedupe = On(master && policy.Dedupe.Enabled, OptimizationStages.Dedupe, policy.Dedupe, policy.Dedupe with { Enabled = true }),
            Curate = On(master && policy.Curate.Enabled, OptimizationStages.Curate, policy.Curate, policy.Curate with { Enabled = true }),
            CacheHints = policy.CacheHints with { Enabled = false }, // adds markers, saves no tokens: (d) covers it
        };
        return off.Count == 0 ? null : (shadow, off);

        T On<T>(bool isOn, string name, T current, T turnedOn)
        {
            if (isOn)
            {
                return current;
            }

            off.Add(name);
            return turnedOn;
        }
    }

    /// <summary>True when the team does not replace stale tool results.</summary>
    public static bool StaleToolResultsOff(OptimizationPolicy policy) =>
        !(policy.Enabled && policy.Trim.Enabled && policy.Trim.StaleToolResults is not null);

    /// <summary>Only <c>trim.staleToolResults</c> (defaults), every other stage off.</summary>
    private static readonly OptimizationPolicy StaleOnly = new()
    {
        Tools = new ToolsOptions { Enabled = false },
        Trim = new TrimOptions { StaleToolResults = new StaleToolResultsOptions() },
        Compact = new CompactOptions { Enabled = false },
        Dedupe = new DedupeOptions { Enabled = false },
        Curate = new CurateOptions { Enabled = false },
        CacheHints = new CacheHintOptions { Enabled = false },
        OutputCap = new OutputCapOptions { Enabled = false },
    };

    private (int Declared, int Tokens, string[] Called) ToolSet(LlmRequest request, ModelCard model, int received, TokenAnatomy? anatomy)
    {
        if (request.Body["tools"] is not JsonArray tools)
        {
            return (0, 0, []);
        }

        var declared = tools.Count(t => t is JsonObject o && ToolSelectionStage.FunctionOf(request.Dialect, o) is not null);
        var called = ToolSelectionStage.Activity(request).Called.ToArray();
        if (declared == 0)
        {
            return (0, 0, called);
        }

        if (anatomy is { } parts)
        {
            return (declared, parts.Tools, called); // the tool stage is off: every declared tool was sent
        }

        // Billed tokens of the definitions: the request counted with and without its tools (the provider's rendering).
        var withoutTools = request.Body.DeepClone().AsObject();
        withoutTools.Remove("tools");
        withoutTools.Remove("tool_choice");
        var bare = _counter.CountInputTokens(new LlmRequest(request.Dialect, withoutTools, ReadOnlyMemory<byte>.Empty), model);
        return (declared, Math.Max(0, received - bare), called);
    }

    private PrefixObservation? Prefix(LlmRequest request, ModelCard model, int received, TokenUsage usage, EffectivePrices prices, TokenAnatomy? anatomy)
    {
        // Only Anthropic needs the gateway's help: OpenAI-shaped providers cache identical prefixes by themselves.
        if (!request.Dialect.IsAnthropic() || request.Dialect == LlmDialect.AnthropicCountTokens)
        {
            return null;
        }

        var hash = new HashCode();
        hash.Add(model.Name, StringComparer.Ordinal);
        int tokens;
        if (anatomy is { } parts)
        {
            // Anthropic renders tools, then system, then messages: the static prefix is those two parts of the anatomy.
            tokens = parts.Tools + parts.System;
            hash.Add(request.Body["tools"]?.ToJsonString() ?? "", StringComparer.Ordinal);
            hash.Add(request.Body["system"]?.ToJsonString() ?? "", StringComparer.Ordinal);
        }
        else
        {
            var layout = new PromptLayout(request.Dialect, request.Body, model, received, _counter);
            var prelude = layout.PreludeSegments;
            tokens = prelude == 0 ? 0 : layout.TokensUpTo(prelude);
            for (var i = 0; i < prelude; i++)
            {
                hash.Add(layout.Segments[i], StringComparer.Ordinal);
            }
        }

        if (tokens < Math.Max(1, model.CacheMinTokens))
        {
            return null;
        }

        return new PrefixObservation(hash.ToHashCode(), tokens, usage.CachedInputTokens,
            Math.Max(0m, prices.Input - prices.CachedInput), Math.Max(0m, prices.CacheWrite5m - prices.Input));
    }

    private static decimal Usd(long tokens, decimal perMillion) => tokens * perMillion / 1_000_000m;
}
