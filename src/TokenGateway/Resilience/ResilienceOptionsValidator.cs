using Microsoft.Extensions.Options;
using TokenGateway.Core.Resilience;

namespace TokenGateway.Resilience;

/// <summary>Validates the <c>Resilience</c> section at start (bounds and cross-field rules live in Core).</summary>
internal sealed class ResilienceOptionsValidator : IValidateOptions<ResilienceOptions>
{
    public ValidateOptionsResult Validate(string? name, ResilienceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = ResilienceValidation.Validate(options);
        return errors.Count == 0
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(errors.Select(e => $"{e.Field}: {e.Message}"));
    }
}
