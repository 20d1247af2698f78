using System.Globalization;
using System.Text.Json.Nodes;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.Optimization;

namespace TokenGateway.Core.Insights;

/// <summary>A team's spend and requests per model in the ledger over a window.</summary>
/// <param name="From">Window start (inclusive).</param>
/// <param name="To">Window end (exclusive).</param>
/// <param name="Models">Per canonical model: spend and requests in the window.</param>
public sealed record LedgerVolume(DateTimeOffset From, DateTimeOffset To, IReadOnlyDictionary<string, ModelVolume> Models)
{
    /// <summary>Days the window spans.</summary>
    public double Days => (To - From).TotalDays;

    /// <summary>Σ spend in the window.</summary>
    public decimal SpendUsd => Models.Values.Sum(m => m.SpendUsd);

    /// <summary>Σ requests in the window.</summary>
    public long Requests => Models.Values.Sum(m => m.Requests);

    /// <summary>30 days ÷ the window's days: what scales a window figure to a month at the same volume.</summary>
    public decimal MonthFactor => Days > 0 ? (decimal)(30.0 / Days) : 0m;

    /// <summary>The spend at this volume over 30 days.</summary>
    public decimal MonthlySpendUsd => SpendUsd * MonthFactor;
}

/// <summary>Spend and requests of one model in the window.</summary>
public readonly record struct ModelVolume(decimal SpendUsd, long Requests);

/// <summary>What the estimator needs to know about the team's current policy and the catalogue.</summary>
public sealed record InsightsPolicyView
{
    /// <summary>The team's optimization policy for a model (as it is now).</summary>
    public required Func<string, OptimizationPolicy> Optimization { get; init; }

    /// <summary>True when the team's adaptive output cap is on.</summary>
    public bool AdaptiveMaxTokens { get; init; }

    /// <summary>The team's <c>maxTokens.cap</c>; null when none.</summary>
    public int? MaxTokensCap { get; init; }

    /// <summary>The catalogue (model name → card).</summary>
    public required Func<string, ModelCard?> Models { get; init; }

    /// <summary>Token anatomy per model over the window (null when the ledger does not have it).</summary>
    public IReadOnlyList<TokenAnatomyRollup>? Anatomy { get; init; }

    /// <summary>Input price per million of a model (null when unpriced).</summary>
    public required Func<ModelCard, decimal?> InputPrice { get; init; }
}

/// <summary>One recommendation: what to change, the policy fragment that does it, and what it is worth per month.</summary>
public sealed record InsightRecommendation
{
    /// <summary>Stable id, e.g. <c>stage.compact</c>, <c>maxTokens</c>, <c>tools</c>, <c>promptCache</c>, <c>staleToolResults</c>.</summary>
    public required string Id { get; init; }

    /// <summary>One of <see cref="InsightKinds"/>.</summary>
    public required string Kind { get; init; }

    /// <summary>One line for people.</summary>
    public required string Title { get; init; }

    /// <summary>What to change, in words.</summary>
    public required string Change { get; init; }

    /// <summary>A policy fragment to merge into the team's policy (<c>PUT /admin/teams/{id}/policy</c>).</summary>
    public required JsonObject Policy { get; init; }

    /// <summary>Estimated spend saved per month at the window's volume, USD.</summary>
    public decimal EstimatedUsdPerMonth { get; init; }

    /// <summary>That estimate as a share of the team's monthly spend.</summary>
    public double ShareOfSpend { get; init; }

    /// <summary>Budget reservations no longer held per month (output cap only), USD; not spend.</summary>
    public decimal? ReservedUsdPerMonth { get; init; }

    /// <summary>Sampled requests the estimate rests on.</summary>
    public long Samples { get; init; }

    /// <summary>The numbers behind the estimate.</summary>
    public JsonObject Evidence { get; init; } = [];
}

/// <summary>
/// Turns a team's sampled observations and its ledger volume into recommendations ranked by estimated dollars per
/// month. Every estimate has the same shape: per model, what the change would have saved on the sampled requests
/// divided by what those requests cost (a share of spend), times the model's ledger spend in the window, times
/// 30 ÷ window days; summed over models. Pure: no I/O, no clock.
/// </summary>
public static class InsightsEstimator
{
    /// <summary>The output cap rule's settings: the adaptive cap's defaults (floor 256, margin 20 %, 50 answers).</summary>
    public static AdaptiveMaxTokensSettings OutputCapRule { get; } = new(AdaptiveMaxTokensSettings.DefaultFloor, AdaptiveMaxTokensSettings.DefaultMarginPercent, AdaptiveMaxTokensSettings.DefaultMinSamples);

    /// <summary>Smallest <c>maxTools</c> ever recommended.</summary>
    public const int MinRecommendedTools = 4;

    /// <summary>A <c>max_tokens</c> this many times the rule's cap (on average) is oversized.</summary>
    public const int OversizedFactor = 2;

    /// <summary>Tool-result share of spend from which <c>staleToolResults</c> is shown even without a measured saving.</summary>
    public const double ToolResultShareThreshold = 0.05;

    /// <summary>The recommendations for <paramref name="observations"/>, highest estimate first.</summary>
    /// <param name="minSamples">Sampled requests (per model for the output cap) needed before anything is recommended.</param>
    public static IReadOnlyList<InsightRecommendation> Estimate(TeamObservations? observations, LedgerVolume volume, InsightsPolicyView policy, int minSamples)
    {
        ArgumentNullException.ThrowIfNull(volume);
        ArgumentNullException.ThrowIfNull(policy);
        var list = new List<InsightRecommendation>();
        if (observations is not null && observations.Samples >= minSamples)
        {
            foreach (var stage in ShadowEvaluator.ShadowStages)
            {
                AddIfAny(list, Stage(observations, volume, policy, stage));
            }

            AddIfAny(list, Tools(observations, volume, policy));
            AddIfAny(list, PromptCache(observations, volume, policy));
        }

        AddIfAny(list, StaleToolResults(observations, volume, policy, minSamples));
        if (observations is not null)
        {
            AddIfAny(list, MaxTokens(observations, volume, policy, minSamples));
        }

        return [.. list.OrderByDescending(r => r.EstimatedUsdPerMonth).ThenByDescending(r => r.ReservedUsdPerMonth ?? 0m).ThenBy(r => r.Id, StringComparer.Ordinal)];
    }

    /// <summary>Σ over models of (sampled saving ÷ sampled cost) × the model's window spend × 30 ÷ days.</summary>
    public static decimal Monthly(IEnumerable<(string Model, decimal SampleCost, decimal SampleSaving)> perModel, LedgerVolume volume)
    {
        ArgumentNullException.ThrowIfNull(perModel);
        ArgumentNullException.ThrowIfNull(volume);
        var total = 0m;
        foreach (var (model, cost, saving) in perModel)
        {
            if (cost > 0 && saving != 0 && volume.Models.TryGetValue(model, out var v))
            {
                total += saving / cost * v.SpendUsd * volume.MonthFactor;
            }
        }

        return total;
    }

    /// <summary>(a) A content stage that is off: the tokens the shadow run saved with it on, at the input price.</summary>
    public static InsightRecommendation? Stage(TeamObservations observations, LedgerVolume volume, InsightsPolicyView policy, string stage)
    {
        ArgumentNullException.ThrowIfNull(observations);
        ArgumentNullException.ThrowIfNull(volume);
        ArgumentNullException.ThrowIfNull(policy);
        var models = observations.Models.Where(m => IsOff(policy.Optimization(m.Model), stage) && m.Savings.ContainsKey(stage)).ToArray();
        var tokens = models.Sum(m => m.Savings[stage].Tokens);
        if (tokens <= 0)
        {
            return null;
        }

        var monthly = Monthly(models.Select(m => (m.Model, m.CostUsd, m.Savings[stage].Usd)), volume);
        var masterOff = models.Any(m => !policy.Optimization(m.Model).Enabled);
        var fragment = new JsonObject { [stage] = new JsonObject { ["enabled"] = true } };
        if (masterOff)
        {
            fragment["enabled"] = true;
        }

        var samples = models.Sum(m => m.Samples);
        var input = models.Sum(m => m.InputTokens);
        return new InsightRecommendation
        {
            Id = "stage." + stage,
            Kind = InsightKinds.Stage,
            Title = $"Turn on the {stage} stage",
            Change = $"Set optimization.{stage}.enabled to true{(masterOff ? " (and optimization.enabled)" : "")}: on {samples} sampled requests it would have saved {tokens} of {input} input tokens ({Percent(tokens, input)}).",
            Policy = new JsonObject { ["optimization"] = fragment },
            EstimatedUsdPerMonth = Round(monthly),
            ShareOfSpend = Share(monthly, volume),
            Samples = samples,
            Evidence = new JsonObject
            {
                ["tokensSaved"] = tokens,
                ["inputTokens"] = input,
                ["requestsChanged"] = models.Sum(m => m.Savings[stage].Requests),
                ["sampledSavingUsd"] = Round(models.Sum(m => m.Savings[stage].Usd)),
                ["sampledCostUsd"] = Round(models.Sum(m => m.CostUsd)),
            },
        };
    }

    /// <summary>The <c>maxTools</c> recommended when <paramref name="distinctCalled"/> tools were ever called: max(4, 2 × called).</summary>
    public static int RecommendedMaxTools(int distinctCalled) => Math.Max(MinRecommendedTools, 2 * distinctCalled);

    /// <summary>
    /// (c) Tool sets much larger than the tools ever called: with M = <see cref="RecommendedMaxTools"/>, a request
    /// declaring d &gt; M tools would send M, saving (d − M) ÷ d of its tool-definition tokens (at the input price).
    /// Recommended when requests declare on average at least twice the tools called and more than M.
    /// </summary>
    public static InsightRecommendation? Tools(TeamObservations observations, LedgerVolume volume, InsightsPolicyView policy)
    {
        ArgumentNullException.ThrowIfNull(observations);
        ArgumentNullException.ThrowIfNull(volume);
        ArgumentNullException.ThrowIfNull(policy);
        var models = observations.Models.Where(m => m.DeclaredTools.Count > 0 && IsOff(policy.Optimization(m.Model), OptimizationStages.Tools)).ToArray();
        var requests = models.Sum(m => m.DeclaredTools.Values.Sum(d => d.Requests));
        if (requests == 0)
        {
            return null;
        }

        var called = observations.CalledTools.Count;
        var maxTools = RecommendedMaxTools(called);
        var meanDeclared = models.Sum(m => m.DeclaredTools.Sum(d => (double)d.Key * d.Value.Requests)) / requests;
        if (meanDeclared < 2.0 * Math.Max(1, called) || meanDeclared <= maxTools)
        {
            return null;
        }

        var perModel = models.Select(m => (m.Model, m.CostUsd, m.DeclaredTools.Sum(d => ToolSaving(d.Key, maxTools, d.Value.Usd)))).ToArray();
        var toolTokens = models.Sum(m => m.DeclaredTools.Values.Sum(d => d.Tokens));
        var savedTokens = models.Sum(m => m.DeclaredTools.Sum(d => (long)Math.Round(ToolSaving(d.Key, maxTools, d.Value.Tokens))));
        var monthly = Monthly(perModel, volume);
        if (monthly <= 0 && savedTokens <= 0)
        {
            return null;
        }

        var mean = meanDeclared.ToString("0.#", CultureInfo.InvariantCulture);
        return new InsightRecommendation
        {
            Id = "tools",
            Kind = InsightKinds.Tools,
            Title = $"Send at most {maxTools} tools per request",
            Change = $"Requests declare {mean} tools on average but the conversations called only {called} distinct tools: turn on tool selection with maxTools {maxTools} (the tools already called in a conversation are always sent).",
            Policy = new JsonObject { ["optimization"] = new JsonObject { ["tools"] = new JsonObject { ["enabled"] = true, ["maxTools"] = maxTools } } },
            EstimatedUsdPerMonth = Round(monthly),
            ShareOfSpend = Share(monthly, volume),
            Samples = requests,
            Evidence = new JsonObject
            {
                ["meanDeclaredTools"] = Math.Round(meanDeclared, 2),
                ["maxDeclaredTools"] = models.Max(m => m.DeclaredTools.Keys.Max()),
                ["distinctToolsCalled"] = called,
                ["calledTools"] = new JsonArray([.. observations.CalledTools.Take(32).Select(n => (JsonNode)n)]),
                ["toolDefinitionTokens"] = toolTokens,
                ["toolTokensSaved"] = savedTokens,
                ["sampledCostUsd"] = Round(models.Sum(m => m.CostUsd)),
            },
        };
    }

    /// <summary>The share of a request's tool tokens (or their value) that selecting <paramref name="maxTools"/> of <paramref name="declared"/> removes.</summary>
    public static decimal ToolSaving(int declared, int maxTools, decimal value) =>
        declared > maxTools ? value * (declared - maxTools) / declared : 0m;

    /// <summary>
    /// (d) A long static prefix (tools + system, at least the model's cache minimum) repeated within the cache lifetime
    /// but not read from the provider's cache: the missed tokens at (input − cache-read price), minus the extra cost of
    /// writing each new prefix (cache-write − input price). Anthropic only: it caches only at <c>cache_control</c>.
    /// </summary>
    public static InsightRecommendation? PromptCache(TeamObservations observations, LedgerVolume volume, InsightsPolicyView policy)
    {
        ArgumentNullException.ThrowIfNull(observations);
        ArgumentNullException.ThrowIfNull(volume);
        ArgumentNullException.ThrowIfNull(policy);
        var models = observations.Models.Where(m => m.PromptCache.Repeats > 0 && IsOff(policy.Optimization(m.Model), OptimizationStages.CacheHints)).ToArray();
        var perModel = models.Select(m => (m.Model, m.CostUsd, m.PromptCache.MissedUsd - m.PromptCache.WritePremiumUsd)).ToArray();
        var missed = models.Sum(m => m.PromptCache.MissedTokens);
        var monthly = Monthly(perModel, volume);
        if (missed <= 0 || monthly <= 0)
        {
            return null;
        }

        var masterOff = models.Any(m => !policy.Optimization(m.Model).Enabled);
        var fragment = new JsonObject { ["cacheHints"] = new JsonObject { ["enabled"] = true } };
        if (masterOff)
        {
            fragment["enabled"] = true;
        }

        var repeats = models.Sum(m => m.PromptCache.Repeats);
        return new InsightRecommendation
        {
            Id = "promptCache",
            Kind = InsightKinds.PromptCache,
            Title = "Let the provider cache the repeated prompt prefix",
            Change = $"{repeats} sampled requests repeated a cacheable tools + system prefix within 5 minutes and read {missed} of its tokens at the full price: turn on cache hints (cache_control breakpoints).",
            Policy = new JsonObject { ["optimization"] = fragment },
            EstimatedUsdPerMonth = Round(monthly),
            ShareOfSpend = Share(monthly, volume),
            Samples = models.Sum(m => m.PromptCache.Samples),
            Evidence = new JsonObject
            {
                ["repeats"] = repeats,
                ["writes"] = models.Sum(m => m.PromptCache.Writes),
                ["missedTokens"] = missed,
                ["meanPrefixTokens"] = models.Sum(m => m.PromptCache.Samples) is var n and > 0 ? models.Sum(m => m.PromptCache.PrefixTokens) / n : 0,
                ["missedUsd"] = Round(models.Sum(m => m.PromptCache.MissedUsd)),
                ["writePremiumUsd"] = Round(models.Sum(m => m.PromptCache.WritePremiumUsd)),
                ["sampledCostUsd"] = Round(models.Sum(m => m.CostUsd)),
            },
        };
    }

    /// <summary>
    /// (e) Spend in tool results: the share of input spend in tool results (from the ledger's token anatomy), and what
    /// <c>trim.staleToolResults</c> would have saved on the sampled requests (shadow run, at the input price).
    /// </summary>
    public static InsightRecommendation? StaleToolResults(TeamObservations? observations, LedgerVolume volume, InsightsPolicyView policy, int minSamples)
    {
        ArgumentNullException.ThrowIfNull(volume);
        ArgumentNullException.ThrowIfNull(policy);
        var models = (observations?.Models ?? []).Where(m => ShadowEvaluator.StaleToolResultsOff(policy.Optimization(m.Model))
            && m.Savings.ContainsKey(InsightKinds.StaleToolResults)).ToArray();
        var tokens = models.Sum(m => m.Savings[InsightKinds.StaleToolResults].Tokens);
        var samples = models.Sum(m => m.Samples);
        var monthly = samples >= minSamples
            ? Monthly(models.Select(m => (m.Model, m.CostUsd, m.Savings[InsightKinds.StaleToolResults].Usd)), volume)
            : 0m;

        var anatomy = (policy.Anatomy ?? []).Where(a => ShadowEvaluator.StaleToolResultsOff(policy.Optimization(a.Model))).ToArray();
        var toolResultsUsd = 0m;
        foreach (var a in anatomy)
        {
            if (policy.Models(a.Model) is { } card && policy.InputPrice(card) is { } price)
            {
                toolResultsUsd += a.ToolResults * price / 1_000_000m;
            }
        }

        var anatomyCost = anatomy.Sum(a => a.CostUsd);
        double? share = anatomyCost > 0 ? (double)(toolResultsUsd / anatomyCost) : null;
        if (!(tokens > 0 && monthly > 0) && !(share >= ToolResultShareThreshold))
        {
            return null;
        }

        var options = new StaleToolResultsOptions();
        var shareText = share is { } s ? s.ToString("P1", CultureInfo.InvariantCulture) : "an unknown share";
        return new InsightRecommendation
        {
            Id = "staleToolResults",
            Kind = InsightKinds.StaleToolResults,
            Title = "Replace stale tool results with a marker",
            Change = $"Tool results are {shareText} of the team's spend: set optimization.trim.staleToolResults (lossy: results older than the last {options.KeepRecent} tool turns become a short marker).",
            Policy = new JsonObject
            {
                ["optimization"] = new JsonObject
                {
                    ["enabled"] = true,
                    ["trim"] = new JsonObject
                    {
                        ["enabled"] = true,
                        ["staleToolResults"] = new JsonObject { ["keepRecent"] = options.KeepRecent, ["minTokens"] = options.MinTokens },
                    },
                },
            },
            EstimatedUsdPerMonth = Round(monthly),
            ShareOfSpend = Share(monthly, volume),
            Samples = samples,
            Evidence = new JsonObject
            {
                ["toolResultTokens"] = anatomy.Sum(a => a.ToolResults),
                ["toolResultsUsd"] = Round(toolResultsUsd),
                ["toolResultsShareOfSpend"] = share is { } v ? Math.Round(v, 6) : null,
                ["tokensSaved"] = tokens,
                ["sampledSavingUsd"] = Round(models.Sum(m => m.Savings[InsightKinds.StaleToolResults].Usd)),
                ["sampledCostUsd"] = Round(models.Sum(m => m.CostUsd)),
            },
        };
    }

    /// <summary>
    /// (b) Oversized <c>max_tokens</c>: per model, the adaptive cap's rule (p99 of the observed answers × (1 + 20 %),
    /// at least 256, at most the team cap or the model's maximum). Spend saved = output above that cap (those answers
    /// would be cut), at the output price; reservations freed = (forwarded max_tokens − cap) × choices at the output price.
    /// </summary>
    public static InsightRecommendation? MaxTokens(TeamObservations observations, LedgerVolume volume, InsightsPolicyView policy, int minSamples)
    {
        ArgumentNullException.ThrowIfNull(observations);
        ArgumentNullException.ThrowIfNull(volume);
        ArgumentNullException.ThrowIfNull(policy);
        if (policy.AdaptiveMaxTokens)
        {
            return null;
        }

        var evidence = new JsonObject();
        var spend = new List<(string, decimal, decimal)>();
        var reserved = 0m;
        long samples = 0;
        foreach (var m in observations.Models)
        {
            var answers = m.Answers;
            if (answers.Count < minSamples || policy.Models(m.Model) is not { } card)
            {
                continue;
            }

            var outputs = answers.Select(a => a.OutputTokens).ToArray();
            var p99 = AdaptiveOutputCaps.Percentile99(outputs);
            var ceiling = policy.MaxTokensCap ?? card.MaxOutputTokens;
            var cap = AdaptiveOutputCaps.CapFrom(p99, 0, OutputCapRule, ceiling);
            var forwarded = answers.Where(a => a.MaxTokens is not null).ToArray();
            var meanMax = forwarded.Length == 0 ? 0 : forwarded.Average(a => (double)a.MaxTokens!.Value);
            if (forwarded.Length == 0 || meanMax < (double)OversizedFactor * cap)
            {
                continue;
            }

            var price = m.OutputPricePerMillion / 1_000_000m;
            var cost = answers.Sum(a => a.CostUsd);
            var cut = answers.Sum(a => (decimal)Math.Max(0, a.OutputTokens - cap) * a.Choices * price);
            var freedPerRequest = answers.Sum(a => (decimal)Math.Max(0, (a.MaxTokens ?? 0) - cap) * a.Choices * price) / answers.Count;
            spend.Add((m.Model, cost, cut));
            if (volume.Models.TryGetValue(m.Model, out var v))
            {
                reserved += freedPerRequest * v.Requests * volume.MonthFactor;
            }

            samples += answers.Count;
            evidence[m.Model] = new JsonObject
            {
                ["answers"] = answers.Count,
                ["p99OutputTokens"] = p99,
                ["recommendedCap"] = cap,
                ["meanMaxTokens"] = Math.Round(meanMax, 1),
                ["answersAboveCap"] = answers.Count(a => a.OutputTokens > cap),
                ["reservedUsdPerRequestFreed"] = Round(freedPerRequest),
            };
        }

        if (samples == 0)
        {
            return null;
        }

        var monthly = Monthly(spend, volume);
        var caps = string.Join(", ", evidence.Select(e => $"{e.Key} ≈ {e.Value!["recommendedCap"]}"));
        return new InsightRecommendation
        {
            Id = "maxTokens",
            Kind = InsightKinds.MaxTokens,
            Title = "Cap max_tokens near what answers use",
            Change = $"Requests ask for far more output than answers use (p99 + {OutputCapRule.MarginPercent} %: {caps}): turn on the adaptive output cap, which learns that cap per model and raises it after a truncated answer.",
            Policy = new JsonObject
            {
                ["maxTokens"] = new JsonObject { ["adaptive"] = new JsonObject { ["enabled"] = true, ["marginPercent"] = OutputCapRule.MarginPercent, ["floor"] = OutputCapRule.Floor } },
            },
            EstimatedUsdPerMonth = Round(monthly),
            ShareOfSpend = Share(monthly, volume),
            ReservedUsdPerMonth = Round(reserved),
            Samples = samples,
            Evidence = new JsonObject { ["models"] = evidence },
        };
    }

    private static void AddIfAny(List<InsightRecommendation> list, InsightRecommendation? item)
    {
        if (item is not null)
        {
            list.Add(item);
        }
    }

    private static bool IsOff(OptimizationPolicy policy, string stage) => !policy.Enabled || stage switch
    {
        OptimizationStages.Tools => !policy.Tools.Enabled,
        OptimizationStages.Trim => !policy.Trim.Enabled,
        OptimizationStages.Compact => !policy.Compact.Enabled,
        OptimizationStages.Dedupe => !policy.Dedupe.Enabled,
        OptimizationStages.Curate => !policy.Curate.Enabled,
        OptimizationStages.CacheHints => !policy.CacheHints.Enabled,
        _ => false,
    };

    private static double Share(decimal monthly, LedgerVolume volume) =>
        volume.MonthlySpendUsd > 0 ? Math.Round((double)(monthly / volume.MonthlySpendUsd), 6) : 0;

    private static string Percent(long part, long whole) =>
        whole > 0 ? ((double)part / whole).ToString("P1", CultureInfo.InvariantCulture) : "0 %";

    private static decimal Round(decimal usd) => Math.Round(usd, 6);
}
