using Microsoft.Extensions.Options;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Models;
using TokenGateway.Core.Resilience;
using TokenGateway.Providers;

namespace TokenGateway.Resilience;

/// <summary>
/// The checks on a policy's <c>resilience</c> and <c>fallbacks</c> sections that need the catalogue (known models,
/// same kind — a model of the other API is accepted, the request is translated for it —, chain length); structure and bounds are checked by <see cref="PolicyValidator"/>.
/// </summary>
internal sealed class ResiliencePolicyValidator(ModelCatalog catalog, IOptions<ResilienceOptions> resilience)
{
    /// <summary>Returns the problems of <paramref name="policy"/> written at <paramref name="scope"/>; empty when valid.</summary>
    public IReadOnlyList<PolicyError> Validate(PolicyScope scope, TeamPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var errors = new List<PolicyError>();
        if (scope == PolicyScope.Key)
        {
            // Resilience is resolved per team (default ← team); a key's copy would be silently ignored.
            if (policy.Resilience is not null)
            {
                errors.Add(new("resilience", "Set resilience on the team (or default) policy; key policies cannot override it."));
            }

            if (policy.Fallbacks is not null)
            {
                errors.Add(new("fallbacks", "Set fallbacks on the team (or default) policy; key policies cannot override them."));
            }

            return errors;
        }

        if (policy.Fallbacks is { Count: > 0 } fallbacks)
        {
            var found = new List<SettingError>();
            var maxLength = Math.Clamp(resilience.Value.MaxFallbacks, 0, ResilienceLimits.MaxFallbacks);
            FallbackChains.Validate(fallbacks, catalog, maxLength, static m => $"fallbacks.{m}", found);
            errors.AddRange(found.Select(static e => new PolicyError(e.Field, e.Message)));
        }

        return errors;
    }
}
