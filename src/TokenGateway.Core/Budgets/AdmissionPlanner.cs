using TokenGateway.Core.Errors;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;

namespace TokenGateway.Core.Budgets;

/// <summary>The pure half of admission: model rules, effective <c>max_tokens</c> and the worst-case reservation.</summary>
internal static class AdmissionPlanner
{
    // Decimal-to-micros conversion per price record, computed once (cards are immutable and long-lived).
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ModelPrices, Tuple<long, long>> _micros = [];

    private static (long Input, long Output) Prices(ModelPrices prices, decimal? input, decimal? output)
    {
        if (prices.Input is null || prices.Output is null)
        {
            // Ceiling prices from options: not cached against the card.
            return (UsdMicros.PricePerMillion(input ?? 0), UsdMicros.PricePerMillion(output ?? 0));
        }

        var cached = _micros.GetValue(prices, static p => Tuple.Create(UsdMicros.PricePerMillion(p.Input!.Value), UsdMicros.PricePerMillion(p.Output!.Value))); // IsPriced checked above
        return (cached.Item1, cached.Item2);
    }

    public static AdmissionPlan Plan(AdmissionRequest request, AdmissionOptions options, PricingOptions pricing, TimeSpan ttl, DateTimeOffset now)
    {
        var policy = request.Policy;
        var model = request.Model;
        if (!policy.Models.IsAllowed(model.Name, request.RequestedModel))
        {
            var shown = Metering.StoredText.Bound(request.RequestedModel) ?? model.Name; // client text: echo a bounded copy
            return AdmissionPlan.Rejected(GatewayError.PermissionDenied, $"Model '{shown}' is not allowed for this team. Ask an admin to update the team's model policy.");
        }

        // The same prices settlement charges (CostCalculator): the card's, else the Pricing ceiling when it applies.
        var ceiling = pricing.UnpricedModelPolicy == UnpricedModelPolicy.Ceiling;
        var inputPrice = model.Prices.Input ?? (ceiling ? pricing.CeilingInputPerMillion : null);
        var outputPrice = model.Prices.Output ?? (ceiling ? pricing.CeilingOutputPerMillion : null);
        var hasUsdBudget = policy.TeamBudget.UsdMicros is not null || policy.KeyBudget?.UsdMicros is not null;
        if ((inputPrice is null || outputPrice is null) && hasUsdBudget)
        {
            return AdmissionPlan.Rejected(GatewayError.ModelNotPriced, $"Model '{model.Name}' has no price, so its cost cannot be checked against the USD budget. Configure its price, or set Pricing:UnpricedModelPolicy to Ceiling.");
        }

        var choices = Math.Max(1, request.Choices);
        if (choices > options.MaxChoices)
        {
            return AdmissionPlan.Rejected(GatewayError.InvalidRequest,
                $"'n' = {choices} asks for more completions than this gateway allows in one request ({options.MaxChoices}). Send several requests, or ask the operator to raise Budgets:MaxChoices.");
        }

        var maxTokens = MaxTokensRule.Decide(request.RequestedMaxTokens, policy.DefaultMaxTokens, PolicyMerge.Min(policy.MaxTokensCap, request.AdaptiveMaxTokens), model);
        var output = maxTokens.WorstCase;

        var minimum = output;
        if (options.LowerMaxTokens && output > 0)
        {
            var byFraction = (int)Math.Ceiling(output * Math.Clamp(options.MinimumOutputFraction, 0, 1));
            minimum = Math.Min(output, Math.Max(Math.Max(1, options.MinimumOutputTokens), byFraction));
        }

        // n completions may each use the whole cap: the worst case (and the useful minimum) is per choice × n. The
        // controller turns a lowered grant back into a per-choice max_tokens (grant / n).
        output = (int)Math.Min(int.MaxValue, (long)output * choices);
        minimum = (int)Math.Min(int.MaxValue, (long)minimum * choices);

        var (inputMicrosPerMillion, outputMicrosPerMillion) = Prices(model.Prices, inputPrice, outputPrice);
        var reserve = new ReserveRequest
        {
            TeamId = policy.TeamId,
            KeyId = policy.KeyId,
            TeamBudget = new BudgetLine(BudgetPeriods.Current(policy.TeamBudget.Period, now), policy.TeamBudget),
            KeyBudget = policy.KeyBudget is { } kb ? new BudgetLine(BudgetPeriods.Current(kb.Period, now), kb) : null,
            TeamRate = policy.TeamRate,
            KeyRate = policy.KeyRate,
            InputTokens = Math.Max(0, request.InputTokens),
            InputCostMicros = UsdMicros.CostOf(Math.Max(0, request.InputTokens), inputMicrosPerMillion),
            MaxOutputTokens = output,
            MinOutputTokens = minimum,
            OutputMicrosPerMillion = outputMicrosPerMillion,
            Ttl = ttl,
        };
        return new AdmissionPlan(reserve, maxTokens.ToSend, maxTokens.CappedByPolicy, null, null) { Choices = choices };
    }
}

/// <summary>The planner's answer: a reservation to attempt, or an immediate rejection.</summary>
internal sealed record AdmissionPlan(ReserveRequest? Reserve, int? MaxTokensToSend, bool CappedByPolicy, GatewayError? Error, string? Message)
{
    /// <summary>Completions the reservation covers; its output tokens are for all of them together.</summary>
    public int Choices { get; init; } = 1;

    public static AdmissionPlan Rejected(GatewayError error, string message) => new(null, null, false, error, message);
}
