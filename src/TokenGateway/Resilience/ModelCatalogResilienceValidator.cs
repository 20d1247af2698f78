using Microsoft.Extensions.Options;
using TokenGateway.Core.Models;
using TokenGateway.Core.Resilience;
using TokenGateway.Providers;

namespace TokenGateway.Resilience;

/// <summary>
/// Validates each model's <c>Resilience</c> overrides and <c>Fallbacks</c> at start: bounds, known models, same kind
/// (a model of the other API is accepted: the request is translated for it), no self-reference, no cycles, bounded length.
/// </summary>
internal sealed class ModelCatalogResilienceValidator(IOptions<ResilienceOptions> resilience)
    : IValidateOptions<ModelCatalogOptions>
{
    public ValidateOptionsResult Validate(string? name, ModelCatalogOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<SettingError>();
        foreach (var (model, card) in options.Models)
        {
            if (card.Resilience is { } overrides)
            {
                ResilienceValidation.Validate(overrides, $"Models:{model}:Resilience", SettingPathStyle.Configuration, errors);
            }
        }

        var chains = options.Models.Where(kv => kv.Value.Fallbacks.Count > 0)
            .ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value.Fallbacks, StringComparer.OrdinalIgnoreCase);
        if (chains.Count > 0)
        {
            var catalog = options.Build();
            var maxLength = Math.Clamp(resilience.Value.MaxFallbacks, 0, ResilienceLimits.MaxFallbacks);
            FallbackChains.Validate(chains, catalog, maxLength, m => $"Models:{m}:Fallbacks", errors);
        }

        return errors.Count == 0
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(errors.Select(e => $"{e.Field}: {e.Message}"));
    }
}
