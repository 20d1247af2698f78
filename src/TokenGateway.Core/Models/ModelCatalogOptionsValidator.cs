using Microsoft.Extensions.Options;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Models;

/// <summary>
/// Start-up checks of the model catalogue: every card names a tokenizer the gateway has, has sane limits, and has
/// prices unless <c>Pricing:UnpricedModelPolicy</c> charges a ceiling. A bad card fails start-up with the card's
/// configuration key instead of falling back (o200k_base for an unknown tokenizer) or refusing at request time.
/// </summary>
internal sealed class ModelCatalogOptionsValidator(IOptions<PricingOptions> pricing) : IValidateOptions<ModelCatalogOptions>
{
    public ValidateOptionsResult Validate(string? name, ModelCatalogOptions options)
    {
        var failures = new List<string>();
        var refuseUnpriced = pricing.Value.UnpricedModelPolicy == UnpricedModelPolicy.Refuse;
        foreach (var (model, card) in options.Models)
        {
            var key = $"{ModelCatalogOptions.SectionName}:{model}";
            if (!TiktokenTokenizerRegistry.IsSupported(card.Tokenizer))
            {
                failures.Add($"{key}:Tokenizer '{card.Tokenizer}' is not a known tokenizer; use one of {string.Join(", ", TiktokenTokenizerRegistry.SupportedEncodings)}.");
            }

            if (string.IsNullOrWhiteSpace(card.Provider))
            {
                failures.Add($"{key}:Provider must name a provider.");
            }

            if (card.ContextWindow < 1)
            {
                failures.Add($"{key}:ContextWindow must be at least 1 (got {card.ContextWindow}).");
            }

            if (card.MaxOutputTokens < 0)
            {
                failures.Add($"{key}:MaxOutputTokens must not be negative (got {card.MaxOutputTokens}).");
            }

            if (card.InputPrice < 0 || card.OutputPrice < 0 || card.CachedInputPrice < 0 || card.CacheWrite5mPrice < 0 || card.CacheWrite1hPrice < 0)
            {
                failures.Add($"{key}: prices must not be negative.");
            }

            if (refuseUnpriced && (card.InputPrice is null || card.OutputPrice is null))
            {
                failures.Add($"{key} has no {(card.InputPrice is null ? "InputPrice" : "OutputPrice")} while Pricing:UnpricedModelPolicy is Refuse, so every request for it would be refused: give it prices, remove it, or set Pricing:UnpricedModelPolicy to Ceiling.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
